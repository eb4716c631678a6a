//! Sweeps in the dashboard: the Jobs list groups a sweep's jobs under its header (name,
//! status, runs done, money, the best run starred), `W` opens the Compare view of its runs,
//! cancel on the header cancels the sweep; the Configure tab turns a field holding a list
//! into a sweep whose plan is confirmed before anything starts.

mod common;

use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::JobId;
use brightrun_tui::action::Tab;
use brightrun_tui::app::{Confirmed, Overlay};
use brightrun_tui::fixtures;
use brightrun_tui::{App, Effect, Level, Outcome};
use common::*;
use crossterm::event::KeyCode;
use std::sync::Arc;

/// The sweep fixtures on the Jobs tab. Rows, newest first: the `lr × rank` header, jobs 9,
/// 8, 7, 6, then jobs 1, 4, 2, 3, then the `warmup` header, jobs 11 and 10, then job 5.
fn on_jobs() -> App {
    let mut app = App::new(fixtures::sweep_snapshot(), &config());
    app.set_now(fixtures::now());
    chr(&mut app, '3');
    assert_eq!(app.tab, Tab::Jobs);
    app
}

/// The short id of the sweep whose header is selected.
fn header_of(app: &App) -> Option<String> {
    app.selected_sweep().map(|s| s.id.short())
}

/// Moves the selection to the row whose id (a job's or a sweep's, short) is `id`.
fn select(app: &mut App, id: &str) {
    chr(app, 'g');
    for _ in 0..20 {
        let here = app
            .selected_job()
            .map(|j| j.id.short())
            .or_else(|| header_of(app));
        if here.as_deref() == Some(id) {
            return;
        }
        chr(app, 'j');
    }
    panic!("{id} is not in the list");
}

fn message(app: &App) -> (String, Level) {
    let m = app.message.as_ref().expect("a status message");
    (m.text.clone(), m.level)
}

/// The ids the Compare view was opened with (and checks it asks for each run's metrics).
fn compared(fx: &[Effect]) -> Vec<JobId> {
    match fx.first() {
        Some(Effect::CompareRuns { ids, .. }) => {
            assert_eq!(fx.len(), ids.len() + 1, "each run's metrics, once: {fx:?}");
            ids.clone()
        }
        other => panic!("expected the comparison to be asked for, got {other:?}"),
    }
}

#[test]
fn jobs_are_grouped_under_their_sweep() {
    let mut app = on_jobs();
    // The first row is the newest sweep's header, selected.
    assert_eq!(app.selected_sweep().unwrap().id, fixtures::sweep_id(1));
    let rows: Vec<String> = app
        .job_list
        .rows
        .iter()
        .map(|&r| {
            if r & brightrun_tui::state::GROUP_ROW != 0 {
                format!(
                    "sweep {}",
                    app.sweeps
                        .at((r & !brightrun_tui::state::GROUP_ROW) as usize)
                        .name
                )
            } else {
                app.jobs.at(r as usize).id.short()
            }
        })
        .collect();
    assert_eq!(
        rows,
        [
            "sweep lr × rank",
            "b0000009",
            "b0000008",
            "b0000007",
            "b0000006",
            "b0000001",
            "b0000004",
            "b0000002",
            "b0000003",
            "sweep warmup",
            "b000000b",
            "b000000a",
            "b0000005",
        ]
    );
    let screen = render(&mut app, 80, 24);
    // Jobs are counted, not headers; the header says status, runs done, spent, the leader.
    assert!(screen.contains("┏ Jobs 11 ━"), "{screen}");
    assert!(screen.contains("▾ lr × rank"), "{screen}");
    assert!(
        screen.contains("running ☆ b0000007 2 of 4 runs   $11.26"),
        "{screen}"
    );
    // On the header, the monitor shows the sweep and the hints its keys.
    assert!(screen.contains("Sweep lr × rank · running"), "{screen}");
    assert!(
        footer(&screen).contains("W compare runs  c cancel sweep"),
        "{}",
        footer(&screen)
    );
    insta::assert_snapshot!("sweeps_jobs_header_80x24", screen);
    // A job of the sweep: its values under the header, its monitor, the sweep's key.
    chr(&mut app, 'j');
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(9));
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("├ 5e-5 · 16"), "{screen}");
    assert!(footer(&screen).contains("W compare sweep"), "{screen}");
    insta::assert_snapshot!("sweeps_jobs_member_80x24", screen);
    // Wide: the values with their names, the completed sweep's best starred.
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("├ learning_rate=5e-5 lora_rank=16"),
        "{screen}"
    );
    assert!(
        screen.contains("completed ★ b000000b 2 of 2 runs"),
        "{screen}"
    );
    assert!(
        screen.contains("└ learning_rate=1e-4 lora_rank=8"),
        "{screen}"
    );
    insta::assert_snapshot!("sweeps_jobs_200x50", screen);
}

fn footer(screen: &str) -> String {
    screen.lines().last().unwrap().to_string()
}

#[test]
fn the_selection_follows_a_header_or_a_job_when_the_list_changes() {
    let mut app = on_jobs();
    select(&mut app, "50000002");
    // A newer job arrives: the list re-sorts, the header stays selected.
    app.apply_event(EngineEvent::Job(Arc::new(fixtures::job(
        12,
        1,
        JobStatus::Queued,
        1,
    ))));
    render(&mut app, 80, 24);
    assert_eq!(app.selected_sweep().unwrap().id, fixtures::sweep_id(2));
    // Sorted by status: the groups move with their first job, the job stays selected.
    select(&mut app, "b0000008");
    for _ in 0..2 {
        chr(&mut app, 's');
    }
    render(&mut app, 80, 24);
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(8));
    // A filter naming the sweep finds its jobs.
    app.set_filter(Tab::Jobs, "warmup".into());
    assert_eq!(app.job_list.len(), 3, "the header and its two jobs");
    assert_eq!(
        app.job_list.len() - app.job_groups,
        2,
        "the title counts jobs"
    );
}

#[test]
fn a_sweep_event_groups_its_new_runs() {
    let mut app = on_jobs();
    // A new sweep whose first job is already listed (job 1) and whose second arrives later.
    let sweep = fixtures::sweep(
        3,
        "seed",
        SweepStatus::Running,
        &[("1e-4", 8, Some(1)), ("1e-4", 16, Some(13))],
        55,
    );
    app.apply_event(EngineEvent::Sweep(Arc::new(sweep.clone())));
    render(&mut app, 200, 50);
    let screen = render(&mut app, 200, 50);
    assert!(screen.contains("▾ seed · alpaca-mini"), "{screen}");
    assert!(screen.contains("0 of 2 runs"), "{screen}");
    app.apply_event(EngineEvent::Job(Arc::new(fixtures::sweep_job(
        13,
        JobStatus::Queued,
        2,
        ("1e-4", 16),
        None,
    ))));
    let screen = render(&mut app, 200, 50);
    let at = |id: &str| screen.find(id).unwrap_or_else(|| panic!("{id}: {screen}"));
    // Job 13 is the newest row, but it belongs under its sweep: the group is first.
    assert!(at("▾ seed") < at("b000000d"), "{screen}");
    assert!(at("b000000d") < at("b0000001"), "{screen}");
    assert!(at("b0000001") < at("▾ lr × rank"), "{screen}");
    // An older copy of a sweep (a replayed event) never replaces a newer one.
    let mut old = sweep;
    old.updated_at = fixtures::ago(60 * 24);
    old.name = "stale".into();
    app.apply_event(EngineEvent::Sweep(Arc::new(old)));
    assert_eq!(app.sweeps.get(fixtures::sweep_id(3)).unwrap().name, "seed");
}

#[test]
fn w_on_a_sweep_compares_its_runs() {
    let mut app = on_jobs();
    // On the header.
    let fx = chr(&mut app, 'W');
    assert!(app.tabs.jobs.compare.is_some(), "the view is open");
    assert_eq!(compared(&fx), [6, 7, 8, 9].map(fixtures::job_id));
    assert!(app.tabs.jobs.marks.is_empty(), "the marks are left alone");
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.jobs.compare.is_none());
    // On one of its jobs: the same view.
    select(&mut app, "b000000b");
    let fx = chr(&mut app, 'W');
    assert_eq!(compared(&fx), [10, 11].map(fixtures::job_id));
    key(&mut app, KeyCode::Esc);
    // A job of no sweep: nothing opens, the status bar says why.
    select(&mut app, "b0000001");
    assert!(chr(&mut app, 'W').is_empty());
    assert!(app.tabs.jobs.compare.is_none());
    assert_eq!(
        message(&app).0,
        "select a sweep or one of its jobs: W compares its runs"
    );
}

#[test]
fn a_sweep_of_more_than_six_runs_compares_the_six_lowest_losses() {
    let mut snap = fixtures::sweep_snapshot();
    // Eight runs: losses for all but runs 2 and 5.
    let losses = [
        Some(0.9),
        None,
        Some(0.7),
        Some(1.3),
        None,
        Some(0.8),
        Some(1.1),
        Some(0.95),
    ];
    let mut runs = Vec::new();
    for (k, loss) in losses.iter().enumerate() {
        let n = 20 + k as u128;
        snap.jobs.push(fixtures::sweep_job(
            n,
            JobStatus::Completed,
            30 - k as i64,
            ("1e-4", 8),
            *loss,
        ));
        runs.push(("1e-4", 8 + k as u32, Some(n)));
    }
    snap.sweeps
        .push(fixtures::sweep(4, "big", SweepStatus::Completed, &runs, 31));
    let mut app = App::new(snap, &config());
    app.set_now(fixtures::now());
    chr(&mut app, '3');
    select(&mut app, "50000004");
    let fx = chr(&mut app, 'W');
    // The two with no loss and the worst loss (run 4) are left out; the rest in run order.
    let ids = compared(&fx);
    assert_eq!(ids.len(), 6);
    assert_eq!(
        ids,
        [20, 22, 23, 25, 26, 27].map(fixtures::job_id),
        "the six lowest losses, in run order"
    );
    assert_eq!(
        message(&app),
        (
            "the 6 of 8 runs with the lowest validation loss".into(),
            Level::Info
        )
    );
}

#[test]
fn cancel_on_a_sweeps_header_cancels_the_sweep() {
    let mut app = on_jobs();
    assert!(chr(&mut app, 'c').is_empty(), "it asks first");
    let lines = match &app.overlay {
        Some(Overlay::Confirm {
            title,
            lines,
            on_yes,
        }) => {
            assert_eq!(title, "Cancel sweep?");
            assert_eq!(*on_yes, Confirmed::CancelSweep(fixtures::sweep_id(1)));
            lines.clone()
        }
        other => panic!("expected a confirmation, got {other:?}"),
    };
    assert_eq!(
        lines,
        [
            "Sweep lr × rank (2 of 4 runs done).",
            "It stops its 2 queued or running jobs.",
            "It has cost $11.26 so far; a cancelled job costs what it ran.",
        ]
    );
    insta::assert_snapshot!("sweeps_cancel_confirm_80x24", render(&mut app, 80, 24));
    let fx = chr(&mut app, 'y');
    assert_eq!(fx, vec![Effect::CancelSweep(fixtures::sweep_id(1))]);
    // The engine's answer: the sweep is cancelled (its jobs' own events follow).
    let mut cancelled = (**app.sweeps.get(fixtures::sweep_id(1)).unwrap()).clone();
    cancelled.status = SweepStatus::Cancelled;
    cancelled.updated_at = fixtures::now();
    app.apply_outcome(Outcome::SweepCancelled(Ok(Box::new(cancelled))));
    assert_eq!(
        message(&app),
        ("sweep lr × rank cancelled".into(), Level::Success)
    );
    assert!(render(&mut app, 80, 24).contains("cancelled ☆ b0000007"));
    // Cancelled already: nothing to ask.
    assert!(chr(&mut app, 'c').is_empty());
    assert!(app.overlay.is_none());
    assert_eq!(message(&app).0, "sweep lr × rank is already cancelled");
    // A refusal is said with the engine's message.
    app.apply_outcome(Outcome::SweepCancelled(Err(ApiError::unavailable(
        "the engine is not running",
    ))));
    assert_eq!(message(&app).1, Level::Error);
    assert!(message(&app).0.starts_with("could not cancel the sweep: "));
}

#[test]
fn cancel_on_a_sweeps_job_cancels_that_job() {
    let mut app = on_jobs();
    select(&mut app, "b0000008");
    chr(&mut app, 'c');
    match &app.overlay {
        Some(Overlay::Confirm { title, on_yes, .. }) => {
            assert_eq!(title, "Cancel job?");
            assert_eq!(*on_yes, Confirmed::CancelJob(fixtures::job_id(8)));
        }
        other => panic!("expected a confirmation, got {other:?}"),
    }
    assert_eq!(
        chr(&mut app, 'y'),
        vec![Effect::CancelJob(fixtures::job_id(8))]
    );
    // Marking still works on a sweep's jobs; on a header it says what to do instead.
    select(&mut app, "b0000007");
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.tabs.jobs.marks, [fixtures::job_id(7)]);
    select(&mut app, "50000001");
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.tabs.jobs.marks.len(), 1);
    assert!(
        message(&app)
            .0
            .starts_with("sweep lr × rank: select one of its jobs")
    );
}

/// The Configure tab with learning_rate `1e-4,5e-5` (the fixture app, alpaca-mini chosen).
fn configure_with_list(list: &str) -> (App, Vec<Effect>) {
    let mut app = app();
    chr(&mut app, '2');
    // Down to learning_rate (dataset, preset, from_model, method, base_model,
    // parameters_billions).
    for _ in 0..6 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = typed(&mut app, list);
    key(&mut app, KeyCode::Enter);
    estimated(&mut app);
    (app, fx)
}

/// The form's estimate asked for again and answered (the pane shows it, not what was said
/// while typing).
fn estimated(app: &mut App) {
    for fx in app.configure.changed() {
        if let Effect::Estimate { seq, .. } = fx {
            app.apply_outcome(Outcome::Estimate {
                seq,
                result: Ok(fixtures::estimate()),
            });
        }
    }
}

/// `s` on a form holding a list: the plan it asks for.
fn submit_plan(app: &mut App) -> (u64, SweepSpec) {
    match &chr(app, 's')[..] {
        [Effect::PlanSweep { request, spec }] => (*request, spec.clone()),
        other => panic!("expected a plan to be asked for, got {other:?}"),
    }
}

#[test]
fn a_list_in_learning_rate_plans_a_sweep() {
    let (mut app, fx) = configure_with_list("1e-4,5e-5");
    // While typing, the estimate is the first run's.
    match fx.last() {
        Some(Effect::Estimate { draft, .. }) => assert_eq!(
            draft.sets,
            [("learning_rate".to_string(), "1e-4".to_string())]
        ),
        other => panic!("expected an estimate, got {other:?}"),
    }
    assert!(app.configure.is_sweep());
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("sweep         2 runs of learning_rate, 2 at a time"),
        "{screen}"
    );
    let (_, spec) = submit_plan(&mut app);
    assert_eq!(
        spec.grid,
        [SweepAxis {
            key: "learning_rate".into(),
            values: vec!["1e-4".into(), "5e-5".into()],
        }]
    );
    // The swept field leaves the base job's sets; the rest is the job the tab builds.
    assert!(spec.job.sets.is_empty(), "{:?}", spec.job.sets);
    assert_eq!(spec.job.dataset, fixtures::dataset_id(2).to_string());
    assert_eq!(spec.job.preset, "balanced");
    assert_eq!(spec.max_parallel, 2);
    assert_eq!(spec.budget, None);
    assert_eq!(message(&app).0, "planning the sweep (2 runs)…");
}

#[test]
fn the_plan_is_confirmed_before_the_sweep_starts() {
    let (mut app, _) = configure_with_list("1e-4,5e-5");
    // lora_rank too (down 4 rows), then the sweep's own rows at the end of the form.
    for _ in 0..4 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    for _ in 0..2 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "8,16");
    key(&mut app, KeyCode::Enter);
    chr(&mut app, 'G');
    assert_eq!(
        app.configure.current_row(),
        brightrun_tui::app::FormRow::SweepBudget
    );
    key(&mut app, KeyCode::Enter);
    typed(&mut app, "$40");
    key(&mut app, KeyCode::Enter);
    chr(&mut app, 'k');
    key(&mut app, KeyCode::Right);
    assert_eq!(app.configure.max_parallel, "3");
    estimated(&mut app);
    let (request, spec) = submit_plan(&mut app);
    assert_eq!(spec.grid.len(), 2);
    assert_eq!(spec.grid[1].values, ["8", "16"]);
    assert_eq!((spec.max_parallel, spec.budget), (3, Some(40.0)));
    let plan = fixtures::sweep_plan(&spec);
    app.apply_outcome(Outcome::SweepPlanned {
        request,
        spec: Box::new(spec.clone()),
        result: Ok(Box::new(plan.clone())),
    });
    match &app.overlay {
        Some(Overlay::Confirm { title, on_yes, .. }) => {
            assert_eq!(title, "Start sweep?");
            assert_eq!(
                *on_yes,
                Confirmed::CreateSweep {
                    spec: Box::new(spec.clone()),
                    over_budget: false,
                }
            );
        }
        other => panic!("expected the plan's confirmation, got {other:?}"),
    }
    // The "planning…" message went with the answer.
    assert!(app.message.is_none());
    let screen = render(&mut app, 80, 24);
    for part in [
        "on alpaca-mini: 4",
        "3 at a time",
        " 1  1e-4  8",
        " 4  5e-5  16",
        "fits 20/80 GB",
        "Total about $12.07, 1h26m with 3 at a time.",
        "Sweep budget $40.00: every run fits in it.",
        "$81.20 → $93.27 of $100.00 this month (93%).",
    ] {
        assert!(screen.contains(part), "{part}: {screen}");
    }
    insta::assert_snapshot!("sweeps_plan_confirm_80x24", screen);
    assert_eq!(
        chr(&mut app, 'y'),
        vec![Effect::CreateSweep {
            spec,
            confirm_over_budget: false
        }]
    );
    // The engine's sweep: the Jobs tab shows it, its header selected once its jobs are in.
    let mut sweep = fixtures::sweep(9, &plan.name, SweepStatus::Running, &[], 0);
    sweep.runs = plan
        .runs
        .iter()
        .enumerate()
        .map(|(k, r)| SweepRun {
            sets: r.sets.clone(),
            job_id: (k < 3).then(|| fixtures::job_id(30 + k as u128)),
            skipped: None,
            estimated_cost: r.estimate.estimated_cost,
        })
        .collect();
    app.apply_outcome(Outcome::SweepCreated(Ok(Box::new(sweep))));
    assert_eq!(app.tab, Tab::Jobs);
    assert_eq!(
        message(&app),
        (
            "sweep sweep of learning_rate × lora_rank started: 4 runs, 2 at a time".into(),
            Level::Success
        )
    );
    for k in 0..3 {
        app.apply_event(EngineEvent::Job(Arc::new(fixtures::sweep_job(
            30 + k,
            JobStatus::Queued,
            0,
            ("1e-4", 8),
            None,
        ))));
    }
    render(&mut app, 80, 24);
    assert_eq!(app.selected_sweep().unwrap().id, fixtures::sweep_id(9));
}

#[test]
fn a_plan_over_the_months_budget_needs_its_own_yes() {
    let (mut app, _) = configure_with_list("1e-4,5e-5,3e-5,2e-5,1e-5,8e-5,7e-5");
    let (request, spec) = submit_plan(&mut app);
    let plan = fixtures::sweep_plan(&spec);
    assert!(plan.exceeds_monthly_budget);
    app.apply_outcome(Outcome::SweepPlanned {
        request,
        spec: Box::new(spec.clone()),
        result: Ok(Box::new(plan)),
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Over budget: start sweep?"), "{screen}");
    assert!(
        screen.contains("All its runs together take the month OVER its budget."),
        "{screen}"
    );
    insta::assert_snapshot!("sweeps_plan_over_budget_80x24", screen);
    assert_eq!(
        chr(&mut app, 'y'),
        vec![Effect::CreateSweep {
            spec,
            confirm_over_budget: true
        }]
    );
    // A refusal is said with the engine's message, by its kind.
    app.apply_outcome(Outcome::SweepCreated(Err(ApiError::conflict(
        brightrun_api::Reason::OverBudget,
        "over budget",
    ))));
    assert_eq!(
        message(&app),
        (
            "could not start the sweep: over budget".into(),
            Level::Error
        )
    );
}

#[test]
fn plans_that_cannot_start_are_said_and_stale_plans_dropped() {
    let (mut app, _) = configure_with_list("1e-4,5e-5");
    let (first, spec) = submit_plan(&mut app);
    let (second, _) = submit_plan(&mut app);
    // The answer to the first request is stale: nothing opens.
    app.apply_outcome(Outcome::SweepPlanned {
        request: first,
        spec: Box::new(spec.clone()),
        result: Ok(Box::new(fixtures::sweep_plan(&spec))),
    });
    assert!(app.overlay.is_none());
    // The engine refuses the plan: its message is said, no confirmation.
    app.apply_outcome(Outcome::SweepPlanned {
        request: second,
        spec: Box::new(spec.clone()),
        result: Err(ApiError::invalid(
            "grid",
            "run 2 (learning_rate=5e-5): unknown GPU",
        )),
    });
    assert!(app.overlay.is_none());
    let (text, level) = message(&app);
    assert_eq!(level, Level::Error);
    assert!(text.starts_with("could not plan the sweep: "), "{text}");
    // A sweep budget that covers no run: said, nothing to confirm.
    let (third, _) = submit_plan(&mut app);
    let mut plan = fixtures::sweep_plan(&SweepSpec {
        budget: Some(1.0),
        ..spec.clone()
    });
    plan.over_sweep_budget = plan.runs.len() as u32;
    app.apply_outcome(Outcome::SweepPlanned {
        request: third,
        spec: Box::new(spec),
        result: Ok(Box::new(plan)),
    });
    assert!(app.overlay.is_none());
    assert!(
        message(&app)
            .0
            .starts_with("the sweep's budget of $1.00 does not cover its first run"),
        "{:?}",
        message(&app)
    );
}

#[test]
fn lists_are_checked_value_by_value() {
    let (mut app, fx) = configure_with_list("1e-4,0.5");
    assert!(fx.iter().all(|e| !matches!(e, Effect::PlanSweep { .. })));
    let err = app.configure.first_error().expect("an error");
    assert!(
        err.contains("learning_rate") && err.contains("0.5"),
        "{err}"
    );
    // Submitting a form in error plans nothing.
    assert!(chr(&mut app, 's').is_empty());
    let (app, _) = configure_with_list("1e-4,1e-4");
    assert_eq!(
        app.configure.first_error().as_deref(),
        Some("learning_rate lists 1e-4 twice")
    );
    let (app, _) = configure_with_list("1e-4,");
    assert!(
        app.configure
            .first_error()
            .unwrap()
            .contains("give two values or more")
    );
    // Without a list the sweep's rows go, and submitting is for one job again.
    let (mut app, _) = configure_with_list("1e-4");
    assert!(!app.configure.is_sweep());
    chr(&mut app, 's');
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Confirm { title, .. }) if title == "Create job?"
    ));
}

#[test]
fn sweeps_draw_at_any_size_without_panicking() {
    for focus_detail in [false, true] {
        for (w, h) in [(20, 5), (40, 10), (1, 1), (80, 3), (80, 24), (130, 30)] {
            let mut app = on_jobs();
            if focus_detail {
                key(&mut app, KeyCode::Enter);
            }
            render(&mut app, w, h);
            chr(&mut app, 'j');
            render(&mut app, w, h);
        }
    }
    // On the header, enter gives the sweep's detail the whole tab, with its keys.
    let mut app = on_jobs();
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("┏ Sweep lr × rank"), "{screen}");
    assert!(
        footer(&screen).contains("W compare runs  c cancel sweep"),
        "{screen}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(render(&mut app, 80, 24).contains("┏ Jobs 11"));
}
