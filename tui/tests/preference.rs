//! Preference training in the dashboard: the Configure form shows the method first and only
//! its own fields, follows a preference or KTO dataset with a method that fits it while the
//! user has not chosen one, says what fits when the method does not, and always sends
//! `method=…` for a preference method (the engine resolves the presets for it); the monitor
//! of a DPO job charts its rewards and reward accuracy under the loss, a KTO job's its KL
//! (and says it has no accuracy); a preference dataset's detail has its pairs and length
//! bias; a preference model's evaluation its held-out pairs, base → adapter.

mod common;

use brightrun_api::domain::*;
use brightrun_api::training::ranges::FIELDS;
use brightrun_tui::fixtures;
use brightrun_tui::{App, Effect, Outcome, Tab};
use common::*;
use crossterm::event::KeyCode;

/// The fixture snapshot with the preference datasets, jobs and model.
fn preference_app() -> App {
    let mut app = App::new(fixtures::preference_snapshot(), &config());
    app.set_now(fixtures::now());
    app
}

fn field(name: &str) -> usize {
    FIELDS.iter().position(|f| f.name == name).unwrap()
}

/// The names of the form's field rows, in order.
fn field_rows(app: &App) -> Vec<&'static str> {
    app.configure
        .rows()
        .into_iter()
        .filter_map(|r| match r {
            brightrun_tui::tabs::configure::FormRow::Field(i) => Some(FIELDS[i].name),
            _ => None,
        })
        .collect()
}

/// The sets of the last estimate asked for in `fx`.
fn estimate_sets(fx: &[Effect]) -> Vec<(String, String)> {
    match fx.last() {
        Some(Effect::Estimate { draft, .. }) => draft.sets.clone(),
        other => panic!("expected an estimate, got {other:?}"),
    }
}

/// Answers the estimate asked for in `fx` with the fixture's.
fn answer(app: &mut App, fx: &[Effect]) {
    for f in fx {
        if let Effect::Estimate { seq, .. } = f {
            app.apply_outcome(Outcome::Estimate {
                seq: *seq,
                result: Ok(fixtures::estimate()),
            });
        }
    }
}

/// The Configure tab's selection on the method row (dataset, preset, from_model, method).
fn to_method_row(app: &mut App) {
    chr(app, 'g');
    for _ in 0..3 {
        chr(app, 'j');
    }
    assert_eq!(
        app.configure.current_row(),
        brightrun_tui::tabs::configure::FormRow::Field(field("method"))
    );
}

#[test]
fn a_preference_dataset_chooses_dpo_and_the_form_shows_its_fields_only() {
    let mut app = preference_app();
    // The newest ready dataset is helpful-pairs, of preference pairs: the form starts on it,
    // with dpo chosen (the user has not chosen a method).
    let fx = chr(&mut app, '2');
    assert_eq!(app.tab, Tab::Configure);
    assert_eq!(app.configure.dataset, Some(fixtures::dataset_id(5)));
    assert_eq!(app.configure.method(), MethodName::Dpo);
    assert!(!app.configure.method_chosen);
    let rows = field_rows(&app);
    assert_eq!(&rows[..4], ["method", "beta", "loss_type", "base_model"]);
    for other in ["lambda", "gamma", "desirable_weight", "undesirable_weight"] {
        assert!(!rows.contains(&other), "{other} is not dpo's: {rows:?}");
    }
    // The preset's values are the preference ones (lower learning rate, half the batch),
    // and the request says method=dpo, so the engine resolves the same.
    assert_eq!(app.configure.values[field("learning_rate")], "2e-5");
    assert_eq!(app.configure.values[field("batch_size")], "2");
    assert_eq!(app.configure.values[field("beta")], "0.1");
    assert_eq!(
        estimate_sets(&fx),
        [("method".to_string(), "dpo".to_string())]
    );
    answer(&mut app, &fx);
    to_method_row(&mut app);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("method"), "{screen}");
    assert!(screen.contains("beta"), "{screen}");
    assert!(screen.contains("loss_type"), "{screen}");
    assert!(!screen.contains("lambda"), "{screen}");
    insta::assert_snapshot!("preference_configure_dpo_100x30", screen);

    // A changed beta is sent after the method; the preset stays balanced (the method is
    // chosen beside it).
    chr(&mut app, 'j');
    key(&mut app, KeyCode::Enter);
    for _ in 0..5 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = typed(&mut app, "0.25");
    assert_eq!(
        estimate_sets(&fx),
        [
            ("method".to_string(), "dpo".to_string()),
            ("beta".to_string(), "0.25".to_string())
        ]
    );
    key(&mut app, KeyCode::Enter);
    answer(&mut app, &fx);
    chr(&mut app, 's');
    let lines = match &app.overlay {
        Some(brightrun_tui::app::Overlay::Confirm { lines, .. }) => lines.join("\n"),
        other => panic!("expected the confirmation, got {other:?}"),
    };
    assert!(
        lines.contains(
            "with preset custom (balanced + 1 change: beta), method dpo (beta 0.25, sigmoid)"
        ),
        "{lines}"
    );
}

#[test]
fn switching_to_kto_shows_its_fields_and_says_the_pairs_want_dpo_orpo_or_simpo() {
    let mut app = preference_app();
    let fx = chr(&mut app, '2');
    answer(&mut app, &fx);
    to_method_row(&mut app);
    // dpo → orpo → simpo → kto.
    let fx = key(&mut app, KeyCode::Right);
    assert_eq!(app.configure.method(), MethodName::Orpo);
    assert!(app.configure.method_chosen);
    assert_eq!(
        estimate_sets(&fx),
        [("method".to_string(), "orpo".to_string())]
    );
    key(&mut app, KeyCode::Right);
    assert_eq!(app.configure.values[field("beta")], "2", "SimPO's own beta");
    let fx = key(&mut app, KeyCode::Right);
    assert_eq!(app.configure.method(), MethodName::Kto);
    let rows = field_rows(&app);
    assert_eq!(
        &rows[..5],
        [
            "method",
            "beta",
            "desirable_weight",
            "undesirable_weight",
            "base_model"
        ]
    );
    assert!(!rows.contains(&"loss_type") && !rows.contains(&"gamma"));
    // KTO cannot train on pairs: no estimate is asked for, the method row says what fits.
    assert!(fx.is_empty(), "{fx:?}");
    let hint = app.configure.errors[field("method")]
        .clone()
        .expect("a hint on the method");
    assert!(
        hint.contains("helpful-pairs holds preference pairs")
            && hint.contains("choose dpo, orpo or simpo"),
        "{hint}"
    );
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("desirable_weight"), "{screen}");
    assert!(
        screen.contains("choose dpo,"),
        "the pane has it all: {screen}"
    );
    insta::assert_snapshot!("preference_configure_kto_mismatch_100x30", screen);
    // Where the form has the width, the method row says it too.
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("kto  ✗ preference pairs: use dpo/orpo/simpo"),
        "{screen}"
    );
    // The user chose the method: another dataset keeps it. The KTO dataset fits it.
    chr(&mut app, 'g');
    let fx = key(&mut app, KeyCode::Right);
    assert_eq!(app.configure.dataset, Some(fixtures::dataset_id(6)));
    assert_eq!(app.configure.method(), MethodName::Kto);
    let sets = estimate_sets(&fx);
    assert_eq!(sets, [("method".to_string(), "kto".to_string())]);
}

#[test]
fn sft_on_pairs_is_refused_with_a_hint_and_other_methods_fields_are_never_sent() {
    let mut app = preference_app();
    let fx = chr(&mut app, '2');
    answer(&mut app, &fx);
    to_method_row(&mut app);
    // dpo ← sft: the user chose sft on a dataset of pairs.
    let fx = key(&mut app, KeyCode::Left);
    assert_eq!(app.configure.method(), MethodName::Sft);
    assert!(fx.is_empty(), "{fx:?}");
    assert!(!field_rows(&app).contains(&"beta"));
    // SFT's preset values are back.
    assert_eq!(app.configure.values[field("learning_rate")], "5e-5");
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("helpful-pairs holds preference pairs"),
        "{screen}"
    );
    // On a supervised dataset, sft sends no method and no method field.
    chr(&mut app, 'g');
    let mut fx = Vec::new();
    while app.configure.dataset != Some(fixtures::dataset_id(2)) {
        fx = key(&mut app, KeyCode::Right);
    }
    assert_eq!(app.configure.method(), MethodName::Sft);
    assert!(estimate_sets(&fx).is_empty(), "{fx:?}");
}

/// Selects dataset `n` in the Datasets list.
fn select_dataset(app: &mut App, n: u128) {
    chr(app, 'g');
    for _ in 0..10 {
        if app.selected_dataset().map(|d| d.id) == Some(fixtures::dataset_id(n)) {
            return;
        }
        chr(app, 'j');
    }
    panic!("dataset {n} is not in the list");
}

#[test]
fn train_on_a_kto_dataset_chooses_kto_and_back_to_sft_on_a_chat_dataset() {
    let mut app = preference_app();
    select_dataset(&mut app, 6);
    let fx = chr(&mut app, 't');
    assert_eq!(app.tab, Tab::Configure);
    assert_eq!(app.configure.dataset, Some(fixtures::dataset_id(6)));
    assert_eq!(app.configure.method(), MethodName::Kto);
    assert_eq!(
        estimate_sets(&fx),
        [("method".to_string(), "kto".to_string())]
    );
    // Not chosen by the user: a chat dataset brings sft back, with no method sent.
    let mut fx = Vec::new();
    while app.configure.dataset != Some(fixtures::dataset_id(2)) {
        fx = key(&mut app, KeyCode::Right);
    }
    assert_eq!(app.configure.method(), MethodName::Sft);
    assert!(estimate_sets(&fx).is_empty(), "{fx:?}");
    assert!(app.configure.errors.iter().all(Option::is_none));
}

#[test]
fn a_method_field_sweeps_with_its_method() {
    let mut app = preference_app();
    let fx = chr(&mut app, '2');
    answer(&mut app, &fx);
    to_method_row(&mut app);
    chr(&mut app, 'j');
    key(&mut app, KeyCode::Enter);
    for _ in 0..5 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "0.05,0.1,0.3");
    key(&mut app, KeyCode::Enter);
    assert!(app.configure.is_sweep());
    let spec = app.configure.sweep_spec().expect("a sweep");
    assert_eq!(spec.grid.len(), 1);
    assert_eq!(spec.grid[0].key, "beta");
    assert_eq!(spec.grid[0].values, ["0.05", "0.1", "0.3"]);
    assert_eq!(spec.job.sets, [("method".to_string(), "dpo".to_string())]);
    // Another method without beta: the list is not the run's any more.
    to_method_row(&mut app);
    key(&mut app, KeyCode::Right); // orpo
    assert!(!app.configure.is_sweep());
}

/// The Jobs tab with job `n`'s history (`kto`: a KTO run's) loaded and selected.
fn monitor(n: u128, kto: bool) -> App {
    let job = fixtures::job_id(n);
    monitor_with(n, fixtures::preference_metrics(job, 400, kto))
}

/// The Jobs tab with job `n` selected and `points` its history.
fn monitor_with(n: u128, points: Vec<MetricsPoint>) -> App {
    let mut app = preference_app();
    chr(&mut app, '3');
    for _ in 0..10 {
        if app.selected_job().map(|j| j.id) == Some(fixtures::job_id(n)) {
            break;
        }
        chr(&mut app, 'j');
    }
    let job = fixtures::job_id(n);
    assert_eq!(app.selected_job().map(|j| j.id), Some(job));
    app.apply_outcome(Outcome::JobDetail {
        job_id: job,
        metrics: Ok(points),
        log: Ok(fixtures::log_lines()),
        checkpoints: Ok(Vec::new()),
    });
    app
}

#[test]
fn a_dpo_jobs_monitor_charts_rewards_and_accuracy_under_the_loss() {
    let mut app = monitor(8, false);
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("method dpo (beta 0.1, sigmoid)"),
        "{screen}"
    );
    assert!(screen.contains(" Loss "), "the loss stays: {screen}");
    assert!(
        screen.contains("Rewards ━ chosen ━ rejected ━ margin"),
        "{screen}"
    );
    assert!(screen.contains("Reward accuracy"), "{screen}");
    insta::assert_snapshot!("preference_monitor_dpo_120x40", screen);
    // Too low for a second row of charts: the latest figures in one line.
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("rewards chosen"), "{screen}");
    assert!(screen.contains("accuracy"), "{screen}");
    insta::assert_snapshot!("preference_monitor_dpo_80x24", screen);
}

#[test]
fn a_kto_jobs_monitor_charts_the_kl_and_says_there_is_no_accuracy() {
    let mut app = monitor(9, true);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("method kto (beta 0.1"), "{screen}");
    assert!(screen.contains("━ desirable ━ undesirable"), "{screen}");
    assert!(screen.contains("no reward accuracy for KTO"), "{screen}");
    assert!(!screen.contains("Reward accuracy"), "{screen}");
    insta::assert_snapshot!("preference_monitor_kto_120x40", screen);
}

#[test]
fn a_preference_job_without_figures_yet_says_so() {
    // Points of the loss alone (an older trainer, or none logged yet).
    let mut app = monitor_with(8, fixtures::metrics(fixtures::job_id(8), 50));
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("no rewards logged yet"), "{screen}");
    assert!(screen.contains("no reward accuracy logged yet"), "{screen}");
}

#[test]
fn a_preference_datasets_detail_has_its_pairs_and_length_bias() {
    let mut app = preference_app();
    assert_eq!(app.tab, Tab::Datasets);
    select_dataset(&mut app, 5);
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 40);
    assert!(screen.contains("Preference pairs"), "{screen}");
    assert!(screen.contains("p50 188  p95 506 tokens"), "{screen}");
    assert!(screen.contains("71% of pairs: a length bias"), "{screen}");
    insta::assert_snapshot!("preference_dataset_detail_100x40", screen);
    // The KTO dataset counts its labelled replies, and has no pairs to compare lengths of.
    key(&mut app, KeyCode::Esc);
    select_dataset(&mut app, 6);
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 40);
    assert!(screen.contains("KTO replies"), "{screen}");
    assert!(screen.contains("desirable"), "{screen}");
    assert!(!screen.contains("length bias"), "{screen}");
}

#[test]
fn a_preference_models_evaluation_has_its_held_out_pairs() {
    let mut app = preference_app();
    let fx = chr(&mut app, '4');
    let id = app.selected_artifact().unwrap().id;
    assert_eq!(id, fixtures::artifact_id(8));
    assert_eq!(fx, vec![Effect::LoadEvaluation(id)]);
    app.apply_outcome(Outcome::Evaluation {
        id,
        result: Ok(fixtures::preference_evaluation()),
    });
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("chosen reply preferred 54% → 81%"),
        "{screen}"
    );
    chr(&mut app, 'e');
    let screen = render(&mut app, 100, 40);
    assert!(screen.contains("54% → 81%"), "{screen}");
    assert!(screen.contains("+27 points"), "{screen}");
    assert!(screen.contains("accuracy 79%, margin +1.24"), "{screen}");
    insta::assert_snapshot!("preference_evaluation_100x40", screen);
}

#[test]
fn a_dataset_name_with_escapes_never_reaches_the_terminal_in_the_hint() {
    let mut snap = fixtures::preference_snapshot();
    snap.datasets[4].name = "pairs\u{1b}[31m-red\u{7}".into();
    let mut app = App::new(snap, &config());
    app.set_now(fixtures::now());
    let fx = chr(&mut app, '2');
    answer(&mut app, &fx);
    to_method_row(&mut app);
    key(&mut app, KeyCode::Left); // sft on pairs
    let hint = app.configure.errors[field("method")].clone().unwrap();
    assert!(
        !hint.contains('\u{1b}') && !hint.contains('\u{7}'),
        "{hint:?}"
    );
    // `render` fails on any escape character on the screen.
    render(&mut app, 100, 30);
    render(&mut app, 80, 24);
}
