//! Exports in the dashboard: `x` on an adapter opens the export dialog (format, dtype, a
//! quantization and an Ollama Modelfile for a GGUF, the name), whose enter asks the engine
//! for a dry run and shows its estimate to confirm, and whose yes queues the export; the
//! Models list shows each export under its adapter with its kind and check, its detail the
//! check's figures and the `ollama create` command; the Jobs tab names export jobs by what
//! they make. `x` on an export sends nothing and says why.

mod common;

use brightrun_api::domain::*;
use brightrun_api::ids::ArtifactId;
use brightrun_api::{ApiError, Reason};
use brightrun_tui::app::{Confirmed, Overlay};
use brightrun_tui::fixtures;
use brightrun_tui::{App, Effect, Level, Outcome, Tab};
use common::*;
use crossterm::event::KeyCode;

/// The export fixtures on the Models tab. Rows, newest adapter first: support-lora-2, its
/// GGUF and its merged export under it, then support-lora-7.
fn on_models() -> App {
    let mut app = App::new(fixtures::export_snapshot(), &config());
    app.set_now(fixtures::now());
    chr(&mut app, '4');
    assert_eq!(app.tab, Tab::Models);
    app
}

fn message(app: &App) -> (String, Level) {
    let m = app.message.as_ref().expect("a status message");
    (m.text.clone(), m.level)
}

/// The rows of the Models list, as `name vN`.
fn rows(app: &App) -> Vec<String> {
    app.model_list
        .rows
        .iter()
        .map(|&r| {
            let a = app.artifacts.at(r as usize);
            format!("{} v{}", a.name, a.version)
        })
        .collect()
}

/// Selects the model `id` in the list.
fn select(app: &mut App, id: ArtifactId) {
    chr(app, 'g');
    for _ in 0..10 {
        if app.selected_artifact().map(|a| a.id) == Some(id) {
            return;
        }
        chr(app, 'j');
    }
    panic!("{} is not in the list", id.short());
}

#[test]
fn exports_are_listed_under_their_adapter_with_kind_and_check() {
    let mut app = on_models();
    assert_eq!(
        rows(&app),
        [
            "support-lora-2 v2",
            "support-lora-2-v2-gguf v1",
            "support-lora-2-v2-merged v1",
            "support-lora-7 v7",
        ]
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("├ gguf  support-lora-2-v2…"), "{screen}");
    assert!(screen.contains("check ✓ passed"), "{screen}");
    // The adapter's detail lists its exports.
    assert!(
        screen.contains("exports       gguf    support-lora-2-v2-gguf v1  check ✓ passed"),
        "{screen}"
    );
    insta::assert_snapshot!("exports_models_80x24", screen);
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("├ gguf  support-lora-2-v2-gguf "),
        "{screen}"
    );
    assert!(
        screen.contains("└ merged  support-lora-2-v2-merged "),
        "{screen}"
    );
    assert!(
        screen.contains("x export"),
        "the footer has the key: {screen}"
    );
    insta::assert_snapshot!("exports_models_200x50", screen);
    // Sorted by name, Z to A, the exports still follow their adapter (in that order among
    // themselves); a filter naming a kind finds the exports of that kind alone.
    chr(&mut app, 's');
    chr(&mut app, 's');
    chr(&mut app, 'S');
    assert_eq!(
        rows(&app),
        [
            "support-lora-7 v7",
            "support-lora-2 v2",
            "support-lora-2-v2-merged v1",
            "support-lora-2-v2-gguf v1",
        ]
    );
    app.set_filter(Tab::Models, "merged".into());
    assert_eq!(rows(&app), ["support-lora-2-v2-merged v1"]);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("┃merged  support-lora-2-v2-"), "{screen}");
}

#[test]
fn an_exports_detail_has_its_kind_parent_check_and_ollama_command() {
    let mut app = on_models();
    select(&mut app, fixtures::artifact_id(12));
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 40);
    for want in [
        "kind          gguf, exported from support-lora-2 v2 (a0000002)",
        "result        ✓ passed  (llama.cpp's greedy continuation against transformers')",
        "figures       3 of 3 prompts continued like transformers for 8 tokens",
        "ollama        ollama create support-lora-2-v2-gguf -f Modelfile",
        "quantize      q4_k_m",
        "support-lora-2-v2-gguf.gguf",
    ] {
        assert!(screen.contains(want), "{want}\n{screen}");
    }
    // What an adapter has of its own (quality, training) is not repeated on its export.
    assert!(!screen.contains("Quality"), "{screen}");
    insta::assert_snapshot!("exports_gguf_detail_100x40", screen);
    // A merged export's check is the logits'.
    key(&mut app, KeyCode::Esc);
    select(&mut app, fixtures::artifact_id(13));
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("figures       max logit difference 3.10e-3, tolerance 1e-2"),
        "{screen}"
    );
    assert!(!screen.contains("ollama create"), "{screen}");
}

#[test]
fn x_on_an_export_sends_nothing_and_says_why() {
    let mut app = on_models();
    select(&mut app, fixtures::artifact_id(12));
    let fx = chr(&mut app, 'x');
    assert!(fx.is_empty(), "{fx:?}");
    assert!(app.overlay.is_none());
    let (text, level) = message(&app);
    assert_eq!(
        text,
        "support-lora-2-v2-gguf v1 is a gguf export; exports are made from adapters: export support-lora-2 v2 instead"
    );
    assert_eq!(level, Level::Info);
    // Nor is its evaluation asked for: an export is checked, its adapter evaluated.
    let fx = chr(&mut app, 'e');
    assert!(fx.is_empty(), "{fx:?}");
    assert!(app.tabs.models.evaluation.is_none());
    assert_eq!(
        message(&app).0,
        "support-lora-2-v2-gguf v1 is a gguf export: its check is in its detail; its adapter support-lora-2 v2 has one"
    );
}

/// `x` on support-lora-2: the dialog.
fn open_dialog(app: &mut App) {
    select(app, fixtures::artifact_id(2));
    assert!(chr(app, 'x').is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Export(_))));
}

/// Enter in the dialog: the dry run it asks for, and its request.
fn ask_estimate(app: &mut App) -> (u64, ExportOptions) {
    match key(app, KeyCode::Enter).as_slice() {
        [
            Effect::PlanExport {
                request,
                model,
                options,
            },
        ] => {
            assert_eq!(*model, fixtures::artifact_id(2));
            assert!(options.dry_run, "an estimate queues nothing");
            (*request, options.clone())
        }
        other => panic!("expected a dry run, got {other:?}"),
    }
}

/// What the engine's dry run answers: the job it would queue.
fn planned(options: &ExportOptions) -> Box<TrainingJob> {
    let mut j = fixtures::export_job(15, 2, options.format, JobStatus::Queued, 0);
    if let JobTask::Export(t) = &mut j.task {
        t.dtype = options.dtype.unwrap_or_default();
        t.quantize = options.quantize.clone();
        t.ollama = options.ollama;
        if let Some(n) = &options.name {
            t.name = n.clone();
        }
    }
    j.queued_at = fixtures::now();
    j.estimated_completion_at = Some(fixtures::now() + chrono::Duration::minutes(14));
    j.estimated_cost = 0.82;
    Box::new(j)
}

#[test]
fn the_form_asks_for_an_estimate_then_queues_the_options_chosen() {
    let mut app = on_models();
    open_dialog(&mut app);
    insta::assert_snapshot!("exports_dialog_80x24", render(&mut app, 80, 24));
    // format gguf (the default) → dtype bf16 → quantize q4_k_m → ollama yes → name.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    for _ in 0..11 {
        key(&mut app, KeyCode::Right);
    }
    key(&mut app, KeyCode::Down);
    chr(&mut app, ' ');
    // With the Modelfile comes its system prompt; the name is after it.
    key(&mut app, KeyCode::Down);
    typed(&mut app, "Answer as support.");
    key(&mut app, KeyCode::Down);
    typed(&mut app, "zubrowka-v2-gguf");
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("‹ q4_k_m ›") || screen.contains("q4_k_m"),
        "{screen}"
    );
    insta::assert_snapshot!("exports_dialog_filled_80x24", screen);
    let (request, options) = ask_estimate(&mut app);
    let mut want = ExportOptions::new(ExportFormat::Gguf);
    want.dtype = Some(ExportDtype::Bf16);
    want.quantize = Some("q4_k_m".into());
    want.ollama = true;
    want.system_prompt = Some("Answer as support.".into());
    want.name = Some("zubrowka-v2-gguf".into());
    want.dry_run = true;
    assert_eq!(options, want);
    // While the engine answers, the dialog says so and keys do nothing but esc.
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Asking the engine"), "{screen}");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    // The answer becomes the confirmation: what, where, about what cost and how long.
    app.apply_outcome(Outcome::ExportPlanned {
        request,
        result: Ok(planned(&options)),
    });
    let Some(Overlay::Confirm {
        title,
        lines,
        on_yes,
    }) = &app.overlay
    else {
        panic!("expected the confirmation, got {:?}", app.overlay);
    };
    assert_eq!(title, "Queue export?");
    assert_eq!(
        lines[0],
        "Export support-lora-2 v2 (mistralai/Mistral-7B-v0.1) as GGUF bf16 quantized q4_k_m, with an Ollama Modelfile, named zubrowka-v2-gguf."
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "On local (1×A100-80GB): about $0.82 and 14m00s."),
        "{lines:?}"
    );
    assert!(matches!(on_yes, Confirmed::Export { .. }));
    insta::assert_snapshot!("exports_confirm_80x24", render(&mut app, 80, 24));
    // Yes queues exactly what was estimated.
    let fx = chr(&mut app, 'y');
    let [
        Effect::ExportModel {
            model,
            options: sent,
        },
    ] = fx.as_slice()
    else {
        panic!("expected the export to be queued, got {fx:?}");
    };
    assert_eq!(*model, fixtures::artifact_id(2));
    assert_eq!(
        *sent,
        ExportOptions {
            dry_run: false,
            ..want
        }
    );
    // The queued job: said, and shown selected on the Jobs tab, named by what it makes.
    let mut job = planned(sent);
    job.id = fixtures::job_id(16);
    app.apply_outcome(Outcome::ExportQueued {
        model: *model,
        options: Box::new(sent.clone()),
        result: Ok(job),
    });
    assert_eq!(app.tab, Tab::Jobs);
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(16));
    let (text, level) = message(&app);
    assert_eq!(
        text,
        "export gguf (zubrowka-v2-gguf) queued as job b0000010 (estimated $0.82)"
    );
    assert_eq!(level, Level::Success);
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("export gguf q4_k_m of support-lora-2 v2"),
        "{screen}"
    );
    assert!(screen.contains("Export b0000010"), "{screen}");
}

#[test]
fn a_merged_export_sends_no_gguf_options() {
    let mut app = on_models();
    open_dialog(&mut app);
    // A GGUF with a quantization and a Modelfile chosen, then merged instead.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Right);
    chr(&mut app, 'g');
    for _ in 0..3 {
        key(&mut app, KeyCode::Up);
    }
    key(&mut app, KeyCode::Left);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("(gguf only)"), "{screen}");
    let (_, options) = ask_estimate(&mut app);
    let mut want = ExportOptions::new(ExportFormat::Merged);
    want.dtype = Some(ExportDtype::F16);
    want.dry_run = true;
    assert_eq!(options, want);
}

#[test]
fn a_refused_estimate_is_said_in_the_dialog_and_esc_cancels() {
    let mut app = on_models();
    open_dialog(&mut app);
    let (request, _) = ask_estimate(&mut app);
    // An answer to another request is not this dialog's.
    app.apply_outcome(Outcome::ExportPlanned {
        request: request + 100,
        result: Err(ApiError::invalid("name", "not this one")),
    });
    match &app.overlay {
        Some(Overlay::Export(d)) => assert!(d.loading()),
        other => panic!("expected the dialog, got {other:?}"),
    }
    app.apply_outcome(Outcome::ExportPlanned {
        request,
        result: Err(ApiError::unavailable("backend ray does not answer")),
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("✗ backend ray does not answer"), "{screen}");
    // Still the dialog: it can be changed and tried again, or closed.
    let fx = key(&mut app, KeyCode::Esc);
    assert!(fx.is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(message(&app).0, "cancelled");
}

#[test]
fn over_the_budget_the_engine_is_asked_again_once_confirmed() {
    let mut app = on_models();
    let mut options = ExportOptions::new(ExportFormat::GgufLora);
    options.dtype = Some(ExportDtype::F16);
    app.apply_outcome(Outcome::ExportQueued {
        model: fixtures::artifact_id(2),
        options: Box::new(options.clone()),
        result: Err(ApiError::conflict(
            Reason::OverBudget,
            "this export takes the month to $100.40 of $100.00",
        )),
    });
    let Some(Overlay::Confirm { title, .. }) = &app.overlay else {
        panic!("expected a confirmation, got {:?}", app.overlay);
    };
    assert_eq!(title, "Over budget: queue export?");
    let fx = chr(&mut app, 'y');
    assert_eq!(
        fx,
        vec![Effect::ExportModel {
            model: fixtures::artifact_id(2),
            options: ExportOptions {
                confirm_over_budget: true,
                ..options.clone()
            },
        }]
    );
    // Refused again (or for another reason): said, not asked again.
    app.apply_outcome(Outcome::ExportQueued {
        model: fixtures::artifact_id(2),
        options: Box::new(ExportOptions {
            confirm_over_budget: true,
            ..options
        }),
        result: Err(ApiError::conflict(Reason::OverBudget, "still over")),
    });
    assert!(app.overlay.is_none());
    assert_eq!(message(&app).1, Level::Error);
}

#[test]
fn export_jobs_are_named_by_what_they_make() {
    let mut app = on_models();
    chr(&mut app, '3');
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("export gguf-lora of support-lora-7 v7"),
        "{screen}"
    );
    assert!(
        screen.contains("export merged of support-lora-2 v2"),
        "{screen}"
    );
    // The newest, selected: its monitor says what it makes, and counts no epochs or steps.
    assert!(
        screen.contains("Export b000000e · export gguf-lora of support-lora-7 v7"),
        "{screen}"
    );
    assert!(
        screen.contains("running · stage training · elapsed"),
        "{screen}"
    );
    // The filter finds them by it; they are not training runs to compare.
    app.set_filter(Tab::Jobs, "export gguf".into());
    assert_eq!(app.job_list.len(), 2);
    chr(&mut app, 'g');
    chr(&mut app, ' ');
    assert!(
        message(&app)
            .0
            .ends_with("is an export, not a training run")
    );
}

#[test]
fn exports_are_not_offered_to_train_on_from() {
    let app = on_models();
    let offered: Vec<ArtifactId> = app.configure.models.iter().map(|m| m.id).collect();
    assert_eq!(
        offered,
        [fixtures::artifact_id(2), fixtures::artifact_id(7)]
    );
}
