//! Checkpoints in the dashboard: the Jobs tab's retry dialog (the latest checkpoint, each
//! checkpoint, or from scratch, with the engine's dry-run costs), the monitor's checkpoint
//! list kept current by checkpoint events, and the Configure tab's from_model field.

mod common;

use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::JobId;
use brightrun_tui::app::Overlay;
use brightrun_tui::fixtures;
use brightrun_tui::{App, Effect, Level, Outcome, RetryAnswer, RetryFrom, Tab};
use common::*;
use crossterm::event::KeyCode;
use std::sync::Arc;

// ---- the retry dialog ---------------------------------------------------------------------

/// The fixtures' failed job, selected on the Jobs tab.
fn on_failed_job() -> App {
    let mut app = app();
    chr(&mut app, '3');
    // Newest first: jobs 1, 4, 2, then 3.
    for _ in 0..3 {
        chr(&mut app, 'j');
    }
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(3));
    app
}

/// `r`: the dialog opens and asks the engine; returns the request it waits on.
fn open_retry(app: &mut App) -> u64 {
    let fx = chr(app, 'r');
    match fx.as_slice() {
        [Effect::LoadRetryChoices { request, id }] => {
            assert_eq!(*id, app.selected_job().unwrap().id);
            *request
        }
        other => panic!("expected the retry choices to load, got {other:?}"),
    }
}

/// What a dry run of a retry of job 3 answers.
fn planned(from: Option<u64>, cost: f64) -> TrainingJob {
    let mut j = fixtures::job(9, 1, JobStatus::Queued, 0);
    j.retry_of = Some(fixtures::job_id(3));
    j.resumed_from = from.map(|step| ResumePoint {
        job_id: fixtures::job_id(3),
        step,
    });
    j.estimated_cost = cost;
    j
}

fn answer(app: &mut App, request: u64, checkpoints: Vec<Checkpoint>) {
    let latest = checkpoints.last().map(|c| c.step);
    app.apply_outcome(Outcome::RetryChoices(Box::new(RetryAnswer {
        request,
        checkpoints: Ok(checkpoints),
        latest: Ok(planned(latest, 1.62)),
        scratch: Ok(planned(None, 4.85)),
    })));
}

fn chosen(app: &App) -> Option<RetryFrom> {
    match &app.overlay {
        Some(Overlay::Retry(d)) => d.chosen().map(|c| c.from),
        other => panic!("no retry dialog: {other:?}"),
    }
}

#[test]
fn retry_offers_the_latest_each_checkpoint_and_from_scratch() {
    let mut app = on_failed_job();
    let request = open_retry(&mut app);
    // Loading: the dialog says so, and enter waits for the choices.
    insta::assert_snapshot!("retry_loading_80x24", render(&mut app, 80, 24));
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Retry(_))));

    answer(
        &mut app,
        request,
        fixtures::checkpoints(fixtures::job_id(3)),
    );
    insta::assert_snapshot!("retry_choices_80x24", render(&mut app, 80, 24));
    let screen = render(&mut app, 80, 24);
    // Each line is quoted: 80 columns and the quotes.
    for line in screen.lines() {
        assert!(line.chars().count() <= 82, "{line}");
    }
    // The latest is chosen first; j/k and the arrows move, wrapping around.
    assert_eq!(chosen(&app), Some(RetryFrom::Latest));
    chr(&mut app, 'j');
    assert_eq!(chosen(&app), Some(RetryFrom::Step(600)));
    key(&mut app, KeyCode::Down);
    assert_eq!(chosen(&app), Some(RetryFrom::Step(300)));
    chr(&mut app, 'j');
    assert_eq!(chosen(&app), Some(RetryFrom::Scratch));
    chr(&mut app, 'j');
    assert_eq!(chosen(&app), Some(RetryFrom::Latest));
    key(&mut app, KeyCode::Up);
    chr(&mut app, 'k');
    assert_eq!(chosen(&app), Some(RetryFrom::Step(300)));
    // Enter retries from that checkpoint, and says so.
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RetryJob {
            id: fixtures::job_id(3),
            from: RetryFrom::Step(300)
        }]
    );
    assert!(app.overlay.is_none());
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "retrying job b0000003 from step 300…"
    );

    // The new job is selected, as after any retry.
    let new = planned(Some(300), 3.1);
    app.apply_outcome(Outcome::JobChanged {
        what: "retried",
        result: Ok(new.clone()),
    });
    assert_eq!(app.selected_job().unwrap().id, new.id);
    assert_eq!(app.message.as_ref().unwrap().level, Level::Success);
}

#[test]
fn the_latest_is_the_default_and_esc_cancels() {
    let mut app = on_failed_job();
    let request = open_retry(&mut app);
    answer(
        &mut app,
        request,
        fixtures::checkpoints(fixtures::job_id(3)),
    );
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RetryJob {
            id: fixtures::job_id(3),
            from: RetryFrom::Latest
        }]
    );
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("latest checkpoint")
    );

    let request = open_retry(&mut app);
    answer(
        &mut app,
        request,
        fixtures::checkpoints(fixtures::job_id(3)),
    );
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(app.message.as_ref().unwrap().text, "cancelled");
    // An answer for a dialog no longer open changes nothing.
    answer(&mut app, request, Vec::new());
    assert!(app.overlay.is_none());
}

#[test]
fn a_job_without_checkpoints_only_starts_from_scratch() {
    let mut app = on_failed_job();
    let request = open_retry(&mut app);
    answer(&mut app, request, Vec::new());
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("Start from scratch (about $4.85)"),
        "{screen}"
    );
    assert!(!screen.contains("Continue from"), "{screen}");
    assert_eq!(chosen(&app), Some(RetryFrom::Scratch));
    chr(&mut app, 'j');
    assert_eq!(chosen(&app), Some(RetryFrom::Scratch));
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RetryJob {
            id: fixtures::job_id(3),
            from: RetryFrom::Scratch
        }]
    );
}

#[test]
fn an_answer_to_an_earlier_dialog_is_not_this_ones() {
    let mut app = on_failed_job();
    let first = open_retry(&mut app);
    key(&mut app, KeyCode::Esc);
    let second = open_retry(&mut app);
    assert_ne!(first, second);
    answer(&mut app, first, fixtures::checkpoints(fixtures::job_id(3)));
    match &app.overlay {
        Some(Overlay::Retry(d)) => assert!(d.loading()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_are_shown_in_the_dialog() {
    let mut app = on_failed_job();
    let request = open_retry(&mut app);
    app.apply_outcome(Outcome::RetryChoices(Box::new(RetryAnswer {
        request,
        checkpoints: Err(ApiError::unavailable(
            "the engine at /run/brightrun.sock does not answer",
        )),
        latest: Err(ApiError::unavailable(
            "the engine at /run/brightrun.sock does not answer",
        )),
        scratch: Err(ApiError::invalid(
            "dataset",
            "dataset d0000001 is deleted, not ready",
        )),
    })));
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("retry_errors_80x24", screen);
    assert!(screen.contains("does not answer"), "{screen}");
    assert!(screen.contains("d0000001 is deleted"), "{screen}");
    // A choice whose dry run failed can still be tried: the engine says why again.
    chr(&mut app, 'j');
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RetryJob {
            id: fixtures::job_id(3),
            from: RetryFrom::Scratch
        }]
    );
}

#[test]
fn the_retry_command_opens_the_same_dialog() {
    let mut app = app();
    chr(&mut app, ':');
    typed(&mut app, "retry b0000005");
    let fx = key(&mut app, KeyCode::Enter);
    assert!(
        matches!(fx.as_slice(), [Effect::LoadRetryChoices { id, .. }] if *id == fixtures::job_id(5)),
        "{fx:?}"
    );
    assert_eq!(app.tab, Tab::Jobs);
    assert!(render(&mut app, 100, 30).contains("Retry job b0000005"));
}

#[test]
fn many_checkpoints_keep_the_chosen_one_in_view() {
    let mut app = on_failed_job();
    let request = open_retry(&mut app);
    let job = fixtures::job_id(3);
    let many: Vec<Checkpoint> = (1..=30u64)
        .map(|i| fixtures::checkpoint(job, i as u128, i * 30, 2.0 - i as f64 * 0.04, i % 2 == 0))
        .collect();
    answer(&mut app, request, many);
    key(&mut app, KeyCode::End);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("› Start from scratch"), "{screen}");
    assert!(screen.contains("enter retry"), "{screen}");
    chr(&mut app, 'g');
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("› Continue from the latest"), "{screen}");
    // Tiny terminals draw it without panicking.
    for (w, h) in [(20, 5), (40, 10), (1, 1)] {
        render(&mut app, w, h);
    }
}

// ---- the monitor's checkpoints ------------------------------------------------------------

fn listed_steps(app: &App, job: JobId) -> Vec<u64> {
    app.details[&job]
        .checkpoints
        .iter()
        .map(|c| c.step)
        .collect()
}

#[test]
fn the_monitor_lists_checkpoints_and_follows_their_events() {
    let mut app = app();
    chr(&mut app, '3');
    key(&mut app, KeyCode::Enter);
    let job = fixtures::job_id(1);
    assert_eq!(listed_steps(&app, job), vec![300, 600]);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Checkpoints (2)"), "{screen}");
    assert!(screen.contains("folder only"), "{screen}");
    assert!(screen.contains("168 MB"), "{screen}");

    // A new checkpoint: listed, and said in the log.
    let new = fixtures::checkpoint(job, 3, 900, 0.7012, false);
    app.apply_event(EngineEvent::Checkpoint(Arc::new(new.clone())));
    assert_eq!(listed_steps(&app, job), vec![300, 600, 900]);
    assert!(
        app.details[&job]
            .log
            .back()
            .unwrap()
            .starts_with("[checkpoint] step 900")
    );
    let log_len = app.details[&job].log.len();
    // Stored: the same checkpoint, now with its size; no second log line.
    let mut stored = new.clone();
    stored.storage_path = "u/checkpoints/900.tar".into();
    stored.size = Some(171_000_000);
    stored.sha256 = Some("ab".repeat(32));
    app.apply_event(EngineEvent::Checkpoint(Arc::new(stored)));
    assert_eq!(listed_steps(&app, job), vec![300, 600, 900]);
    assert_eq!(app.details[&job].log.len(), log_len);
    // Retired by retention: it leaves the list.
    let mut retired = fixtures::checkpoints(job)[0].clone();
    retired.storage_path.clear();
    retired.sha256 = None;
    retired.size = None;
    app.apply_event(EngineEvent::Checkpoint(Arc::new(retired)));
    assert_eq!(listed_steps(&app, job), vec![600, 900]);
    insta::assert_snapshot!("monitor_checkpoints_80x24", render(&mut app, 80, 24));
    let wide = render(&mut app, 200, 50);
    assert!(
        wide.contains("171 MB") && !wide.contains("168 MB"),
        "{wide}"
    );
}

#[test]
fn checkpoint_events_while_the_list_loads_are_kept() {
    let mut app = app();
    chr(&mut app, '3');
    // Job 4 is not loaded yet: selecting it asks for its history.
    let fx = chr(&mut app, 'j');
    let job = fixtures::job_id(4);
    assert!(fx.contains(&Effect::LoadJobDetail(job)), "{fx:?}");
    assert!(render(&mut app, 100, 40).contains("loading…"));
    // While it loads: a new checkpoint, and the retirement of one the list will have.
    let listed = fixtures::checkpoints(job);
    let fresh = fixtures::checkpoint(job, 7, 700, 0.75, false);
    app.apply_event(EngineEvent::Checkpoint(Arc::new(fresh)));
    let mut retired = listed[0].clone();
    retired.storage_path.clear();
    retired.sha256 = None;
    app.apply_event(EngineEvent::Checkpoint(Arc::new(retired)));
    app.apply_outcome(Outcome::JobDetail {
        job_id: job,
        metrics: Ok(Vec::new()),
        log: Ok(Vec::new()),
        checkpoints: Ok(listed),
    });
    assert_eq!(listed_steps(&app, job), vec![600, 700]);
}

#[test]
fn a_checkpoint_list_that_fails_says_why() {
    let mut app = app();
    chr(&mut app, '3');
    let job = fixtures::job_id(4);
    chr(&mut app, 'j');
    app.apply_outcome(Outcome::JobDetail {
        job_id: job,
        metrics: Ok(Vec::new()),
        log: Ok(Vec::new()),
        checkpoints: Err(ApiError::unavailable("the engine is gone")),
    });
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("unavailable: the engine is gone"),
        "{screen}"
    );
    // A job with none says so.
    chr(&mut app, 'j');
    app.apply_outcome(Outcome::JobDetail {
        job_id: fixtures::job_id(2),
        metrics: Ok(Vec::new()),
        log: Ok(Vec::new()),
        checkpoints: Ok(Vec::new()),
    });
    assert!(render(&mut app, 120, 40).contains("none yet"));
}

// ---- Configure: from_model ----------------------------------------------------------------

/// A model on another base model and LoRA shape than the balanced preset's.
fn qwen_model() -> ModelArtifact {
    let mut a = fixtures::artifact(8, 2, 2, 4, 30);
    a.name = "qwen-support".into();
    a.base_model = "Qwen/Qwen2.5-0.5B".into();
    a.configuration = JsonValue(serde_json::json!({
        "hyperparameters": {"base_model": "Qwen/Qwen2.5-0.5B", "lora_rank": 8, "lora_alpha": 16,
                            "target_modules": ["q_proj", "v_proj"]}
    }));
    a
}

/// The Configure form with the Qwen model among the user's, on its from_model row.
fn configure_on_from_model() -> App {
    let mut app = app();
    app.apply_event(EngineEvent::Artifact(Arc::new(qwen_model())));
    chr(&mut app, '2');
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    assert_eq!(
        app.configure.current_row(),
        brightrun_tui::tabs::configure::FormRow::FromModel
    );
    app
}

fn form_value(app: &App, field: &str) -> String {
    let i = brightrun_api::training::ranges::FIELDS
        .iter()
        .position(|f| f.name == field)
        .unwrap();
    app.configure.values[i].clone()
}

fn estimated_draft(fx: &[Effect]) -> brightrun_tui::JobDraft {
    fx.iter()
        .find_map(|e| match e {
            Effect::Estimate { draft, .. } => Some(draft.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no estimate asked: {fx:?}"))
}

#[test]
fn from_model_sets_the_spec_and_the_base_model_follows() {
    let mut app = configure_on_from_model();
    assert_eq!(form_value(&app, "base_model"), "mistralai/Mistral-7B-v0.1");
    // → picks the newest model: the base model and LoRA shape follow it.
    let fx = chr(&mut app, 'l');
    let draft = estimated_draft(&fx);
    assert_eq!(draft.from_model, Some(fixtures::artifact_id(8)));
    assert_eq!(form_value(&app, "base_model"), "Qwen/Qwen2.5-0.5B");
    assert_eq!(form_value(&app, "lora_rank"), "8");
    assert_eq!(form_value(&app, "target_modules"), "q_proj,v_proj");
    // They are the model's, not changes to the preset: nothing for the engine to refuse.
    assert!(
        !draft
            .sets
            .iter()
            .any(|(k, _)| k == "base_model" || k == "lora_rank"),
        "{:?}",
        draft.sets
    );
    app.apply_outcome(Outcome::Estimate {
        seq: app.configure.estimate_seq,
        result: Ok(fixtures::estimate()),
    });
    insta::assert_snapshot!("configure_from_model_100x30", render(&mut app, 100, 30));

    // The confirmation names the model.
    chr(&mut app, 's');
    match &app.overlay {
        Some(Overlay::Confirm { lines, .. }) => assert!(
            lines[0].contains("from model qwen-support (base Qwen/Qwen2.5-0.5B)"),
            "{lines:?}"
        ),
        other => panic!("{other:?}"),
    }
    key(&mut app, KeyCode::Esc);

    // ← back to none: the preset's values return.
    let fx = chr(&mut app, 'h');
    assert_eq!(estimated_draft(&fx).from_model, None);
    assert_eq!(form_value(&app, "base_model"), "mistralai/Mistral-7B-v0.1");
    assert_eq!(form_value(&app, "lora_rank"), "16");
}

#[test]
fn the_from_model_picker_lists_the_models_with_their_base() {
    let mut app = configure_on_from_model();
    key(&mut app, KeyCode::Enter);
    let Some(Overlay::Pick {
        options, selected, ..
    }) = app.overlay.clone()
    else {
        panic!("no picker: {:?}", app.overlay);
    };
    assert_eq!(selected, 0);
    assert_eq!(options[0], "(none: a new adapter)");
    // Newest first, each with its base model.
    assert!(options[1].starts_with("qwen-support") && options[1].contains("Qwen/Qwen2.5-0.5B"));
    assert!(options[2].starts_with("support-lora-2") && options[2].contains("Mistral-7B"));
    assert_eq!(options.len(), 4);
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        estimated_draft(&fx).from_model,
        Some(fixtures::artifact_id(2))
    );
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("support-lora-2 (mistralai/Mistral-7B-v0.1)"),
        "{screen}"
    );
}

#[test]
fn a_base_model_other_than_the_models_is_refused_in_the_form() {
    let mut app = configure_on_from_model();
    chr(&mut app, 'l');
    // Down to base_model (under method), typed by hand.
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    key(&mut app, KeyCode::Enter);
    for _ in 0..40 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = typed(&mut app, "mistralai/Mistral-7B-v0.1");
    assert!(fx.is_empty(), "no estimate for a refused form: {fx:?}");
    key(&mut app, KeyCode::Enter);
    let err = app.configure.first_error().unwrap();
    assert!(
        err.contains("differs from model qwen-support's Qwen/Qwen2.5-0.5B"),
        "{err}"
    );
}

#[test]
fn a_deleted_model_is_no_longer_the_start() {
    let mut app = configure_on_from_model();
    chr(&mut app, 'l');
    assert_eq!(form_value(&app, "base_model"), "Qwen/Qwen2.5-0.5B");
    let mut gone = qwen_model();
    gone.deleted_at = Some(fixtures::now());
    let fx = app.apply_event(EngineEvent::Artifact(Arc::new(gone)));
    assert_eq!(app.configure.from_model, None);
    assert_eq!(form_value(&app, "base_model"), "mistralai/Mistral-7B-v0.1");
    assert_eq!(estimated_draft(&fx).from_model, None);
}

#[test]
fn with_no_models_from_model_says_so() {
    let mut snapshot = fixtures::snapshot();
    snapshot.artifacts.clear();
    let mut app = App::new(snapshot, &config());
    chr(&mut app, '2');
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("(none: no models yet)"), "{screen}");
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.overlay.is_none());
    assert!(app.message.as_ref().unwrap().text.contains("no models yet"));
}
