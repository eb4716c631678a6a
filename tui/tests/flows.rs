//! Main flows driven by key events and actions: filter, sort, command line with completion,
//! confirmations, tab switching, help, mouse, live events, freeze, Configure, file browser.

mod common;

use brightrun_api::domain::*;
use brightrun_api::events::{EngineEvent, Progress, ProgressTask};
use brightrun_api::{ApiError, Reason};
use brightrun_tui::effect::{DirEntry, TaskKey};
use brightrun_tui::fixtures;
use brightrun_tui::{Action, Effect, Outcome, Period, RetryAnswer, RetryFrom, Tab};
use common::*;
use crossterm::event::KeyCode;
use std::path::PathBuf;
use std::sync::Arc;

#[test]
fn tab_switching_by_number_tab_backtab_and_mouse() {
    let mut app = app();
    assert_eq!(app.tab, Tab::Datasets);
    chr(&mut app, '3');
    assert_eq!(app.tab, Tab::Jobs);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Models);
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.tab, Tab::Configure);
    chr(&mut app, '6');
    assert_eq!(app.tab, Tab::Notifications);
    // Click on "5 Costs" in the tab bar after a draw recorded where it is.
    render(&mut app, 80, 24);
    let (rect, _) = app
        .hits
        .tabs
        .iter()
        .find(|(_, t)| *t == Tab::Costs)
        .cloned()
        .unwrap();
    let fx = act(
        &mut app,
        Action::Click {
            column: rect.x + 1,
            row: rect.y,
        },
    );
    assert_eq!(app.tab, Tab::Costs);
    assert!(fx.is_empty(), "costs came with the snapshot: {fx:?}");
}

#[test]
fn filter_narrows_the_list_live_and_esc_clears() {
    let mut app = app();
    chr(&mut app, '/');
    typed(&mut app, "sup");
    assert_eq!(app.dataset_list.len(), 1);
    insta::assert_snapshot!("filter_typing", render(&mut app, 80, 24));
    key(&mut app, KeyCode::Enter);
    assert!(app.bottom.is_none());
    assert_eq!(app.dataset_list.filter, "sup");
    // Esc on the list clears the filter.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.dataset_list.len(), 4);
}

#[test]
fn sort_cycles_columns_and_reverses() {
    let mut app = app();
    chr(&mut app, 's'); // created → name (ascending)
    let names: Vec<String> = app
        .dataset_list
        .rows
        .iter()
        .map(|&i| app.datasets.at(i as usize).name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "alpaca-mini",
            "broken-export",
            "fresh-upload",
            "support-chats"
        ]
    );
    chr(&mut app, 'S');
    let first = app
        .datasets
        .at(app.dataset_list.rows[0] as usize)
        .name
        .clone();
    assert_eq!(first, "support-chats");
    insta::assert_snapshot!("sorted_by_name_desc", render(&mut app, 80, 24));
    // Models sort by date and by quality score.
    chr(&mut app, '4');
    chr(&mut app, 's');
    let top = app
        .selected_artifact()
        .unwrap()
        .quality_metrics
        .quality_score;
    assert_eq!(top, 5);
}

#[test]
fn command_line_completes_and_runs() {
    let mut app = app();
    chr(&mut app, ':');
    typed(&mut app, "jo");
    key(&mut app, KeyCode::Tab);
    typed(&mut app, "ru");
    insta::assert_snapshot!("command_completion", render(&mut app, 80, 24));
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Jobs);
    assert_eq!(app.job_list.filter, "running");
    assert_eq!(app.job_list.len(), 1);
    // :theme with completion.
    chr(&mut app, ':');
    typed(&mut app, "theme hi");
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.theme.name, "high-contrast");
    // A theme file goes to the runtime.
    chr(&mut app, ':');
    typed(&mut app, "theme ./mine.toml");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx, vec![Effect::LoadTheme("./mine.toml".into())]);
    // Unknown commands say so.
    chr(&mut app, ':');
    typed(&mut app, "frob");
    key(&mut app, KeyCode::Enter);
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("unknown command")
    );
    // :q quits.
    chr(&mut app, ':');
    chr(&mut app, 'q');
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx, vec![Effect::Quit]);
    assert!(app.should_quit());
}

#[test]
fn cancel_by_command_asks_first() {
    let mut app = app();
    chr(&mut app, ':');
    typed(&mut app, "cancel b0000001");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    insta::assert_snapshot!("cancel_confirm", render(&mut app, 80, 24));
    let fx = chr(&mut app, 'y');
    assert_eq!(fx, vec![Effect::CancelJob(fixtures::job_id(1))]);
}

#[test]
fn delete_dataset_confirms_and_no_cancels() {
    let mut app = app();
    chr(&mut app, 'x');
    insta::assert_snapshot!("delete_confirm", render(&mut app, 80, 24));
    assert!(chr(&mut app, 'n').is_empty());
    assert!(app.overlay.is_none());
    chr(&mut app, 'x');
    let fx = chr(&mut app, 'y');
    assert_eq!(fx, vec![Effect::DeleteDataset(fixtures::dataset_id(4))]);
}

#[test]
fn jobs_cancel_retry_and_open_artifact() {
    let mut app = app();
    chr(&mut app, '3');
    // The running job is first: cancel asks.
    chr(&mut app, 'c');
    assert!(app.overlay.is_some());
    key(&mut app, KeyCode::Esc);
    // Retry is refused for a running job.
    assert!(chr(&mut app, 'r').is_empty());
    // The completed job opens its model.
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    assert_eq!(app.selected_job().unwrap().status, JobStatus::Completed);
    chr(&mut app, 'o');
    assert_eq!(app.tab, Tab::Models);
    assert_eq!(
        app.selected_artifact().unwrap().id,
        fixtures::artifact_id(2)
    );
    // The failed job can be retried.
    chr(&mut app, '3');
    chr(&mut app, 'j');
    assert_eq!(app.selected_job().unwrap().status, JobStatus::Failed);
    // Retry asks the engine where a retry can start and what it costs…
    let fx = chr(&mut app, 'r');
    let [Effect::LoadRetryChoices { request, id }] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(*id, fixtures::job_id(3));
    let mut planned = (*app.selected_job().unwrap().clone()).clone();
    planned.estimated_cost = 4.85;
    app.apply_outcome(Outcome::RetryChoices(Box::new(RetryAnswer {
        request: *request,
        checkpoints: Ok(Vec::new()),
        latest: Ok(planned.clone()),
        scratch: Ok(planned),
    })));
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("Retry job b0000003")
            && screen.contains("Start from scratch (about $4.85)"),
        "{screen}"
    );
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RetryJob {
            id: fixtures::job_id(3),
            from: RetryFrom::Scratch
        }]
    );
    // …and selects the new job, even when the change feed brought it first.
    let mut new = (*app.selected_job().unwrap().clone()).clone();
    new.id = "a0000009-0000-abcd-0000-000000000009".parse().unwrap();
    new.status = JobStatus::Queued;
    new.retry_of = Some(fixtures::job_id(3));
    app.apply_event(EngineEvent::Job(Arc::new(new.clone())));
    app.apply_outcome(Outcome::JobChanged {
        what: "retried",
        result: Ok(new.clone()),
    });
    assert_eq!(app.selected_job().unwrap().id, new.id);
}

#[test]
fn monitor_focus_scrolls_the_log() {
    let mut app = app();
    chr(&mut app, '3');
    key(&mut app, KeyCode::Enter);
    chr(&mut app, 'k');
    chr(&mut app, 'k');
    insta::assert_snapshot!("monitor_focused_scrolled", render(&mut app, 80, 24));
    chr(&mut app, 'G');
    let d = app.details.get(&fixtures::job_id(1)).unwrap();
    assert_eq!(d.log_scroll, 0);
    key(&mut app, KeyCode::Esc);
    // Selecting another job loads its history once.
    let fx = chr(&mut app, 'j');
    assert_eq!(fx, vec![Effect::LoadJobDetail(fixtures::job_id(4))]);
    assert!(chr(&mut app, 'k').is_empty());
    assert!(chr(&mut app, 'j').is_empty());
}

#[test]
fn help_shows_the_keys_of_the_current_view() {
    let mut app = app();
    chr(&mut app, '3');
    chr(&mut app, '?');
    let screen = render(&mut app, 80, 40);
    assert!(screen.contains("cancel the job"));
    assert!(!screen.contains("add a dataset"));
    insta::assert_snapshot!("help_jobs", screen);
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
}

#[test]
fn remapped_keys_work_and_show_in_help() {
    let mut config = config();
    config.tui.keys.insert("cancel".into(), "ctrl-k".into());
    let mut app = brightrun_tui::App::new(fixtures::snapshot(), &config);
    app.set_now(fixtures::now());
    chr(&mut app, '3');
    assert!(chr(&mut app, 'c').is_empty());
    assert!(app.overlay.is_none());
    ctrl(&mut app, 'k');
    assert!(app.overlay.is_some());
    key(&mut app, KeyCode::Esc);
    chr(&mut app, '?');
    assert!(render(&mut app, 80, 40).contains("ctrl-k"));
}

#[test]
fn notification_enter_jumps_and_marks_read() {
    let mut app = app();
    chr(&mut app, '6');
    assert_eq!(app.unread, 4);
    // Newest first: budget (→ Costs), job started, dataset error, model ready.
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(app.tab, Tab::Datasets);
    assert_eq!(app.selected_dataset().unwrap().id, fixtures::dataset_id(3));
    assert_eq!(
        fx,
        vec![Effect::MarkRead(Some(fixtures::notification_id(4)))]
    );
    assert_eq!(app.unread, 3);
    chr(&mut app, '6');
    let fx = chr(&mut app, 'M');
    assert_eq!(fx, vec![Effect::MarkRead(None)]);
    assert_eq!(app.unread, 0);
}

#[test]
fn high_priority_notification_shows_a_toast_and_the_badge() {
    let mut app = app();
    let n = fixtures::notification(
        9,
        NotificationType::JobFailed,
        "Job failed",
        "b0000001: CUDA out of memory",
        false,
        Some(Link::Job(fixtures::job_id(1))),
        0,
    );
    app.apply_event(EngineEvent::Notification(Arc::new(n)));
    assert_eq!(app.unread, 5);
    insta::assert_snapshot!("toast", render(&mut app, 80, 24));
    // Toasts go away by themselves.
    app.tick(fixtures::now() + chrono::Duration::seconds(10));
    assert!(app.toasts.is_empty());
}

#[test]
fn live_events_update_lists_and_charts_unless_frozen() {
    let mut app = app();
    chr(&mut app, '3');
    let job = fixtures::job_id(1);
    let before = app.details[&job].series.len();
    app.apply_event(EngineEvent::Metrics {
        job_id: job,
        points: Arc::new(fixtures::metrics(job, 410)[400..].to_vec()),
    });
    assert_eq!(app.details[&job].series.len(), before + 10);
    // A replayed batch does not duplicate points.
    app.apply_event(EngineEvent::Metrics {
        job_id: job,
        points: Arc::new(fixtures::metrics(job, 410)[400..].to_vec()),
    });
    assert_eq!(app.details[&job].series.len(), before + 10);
    app.apply_event(EngineEvent::JobLog {
        job_id: job,
        line: "hello \u{1b}]52;c;eA==\u{7}world".into(),
    });
    assert_eq!(app.details[&job].log.back().unwrap(), "hello world");

    chr(&mut app, 'f');
    assert!(app.frozen);
    let mut j = fixtures::job(1, 1, JobStatus::Completed, 50);
    j.progress = 100.0;
    app.apply_event(EngineEvent::Job(Arc::new(j)));
    assert_eq!(
        app.jobs.get(job).unwrap().status,
        JobStatus::Running,
        "frozen: held"
    );
    insta::assert_snapshot!(
        "frozen",
        render(&mut app, 80, 24).lines().last().unwrap().to_string()
    );
    chr(&mut app, 'f');
    assert_eq!(app.jobs.get(job).unwrap().status, JobStatus::Completed);

    // A dataset leaves validation: the list and the badge follow.
    let mut d = fixtures::dataset(4, "fresh-upload", DatasetStatus::Ready, 1);
    d.name = "fresh\u{1b}[31m-upload".into();
    app.apply_event(EngineEvent::Dataset(Arc::new(d)));
    let d = app.datasets.get(fixtures::dataset_id(4)).unwrap();
    assert_eq!(d.status, DatasetStatus::Ready);
    assert_eq!(d.name, "fresh-upload", "names are cleaned on the way in");
    // Deleted datasets leave the list.
    let mut gone = fixtures::dataset(3, "broken-export", DatasetStatus::Error, 90);
    gone.deleted_at = Some(fixtures::now());
    app.apply_event(EngineEvent::Dataset(Arc::new(gone)));
    chr(&mut app, '1');
    assert_eq!(app.dataset_list.len(), 3);
    // Backend health reaches the status bar.
    app.apply_event(EngineEvent::BackendHealth {
        backend: "local".into(),
        reachable: false,
    });
    assert!(render(&mut app, 80, 24).contains("unreachable"));
}

#[test]
fn configure_checks_ranges_live_and_submits_with_the_cost() {
    let mut app = app();
    chr(&mut app, '2');
    // Down to learning_rate (dataset, preset, from_model, method, base_model,
    // parameters_billions, learning_rate).
    for _ in 0..6 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = typed(&mut app, "0.5");
    assert!(
        fx.is_empty(),
        "no estimate for an out-of-range form: {fx:?}"
    );
    insta::assert_snapshot!("configure_range_error", render(&mut app, 100, 30));
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    let fx = typed(&mut app, "1e-4");
    let seq = match fx.last() {
        Some(Effect::Estimate { seq, draft }) => {
            assert_eq!(
                draft.sets,
                vec![("learning_rate".to_string(), "1e-4".to_string())]
            );
            assert_eq!(draft.dataset_id, fixtures::dataset_id(2));
            *seq
        }
        other => panic!("expected an estimate, got {other:?}"),
    };
    key(&mut app, KeyCode::Enter);
    // An older answer is ignored, the latest is shown.
    app.apply_outcome(Outcome::Estimate {
        seq: seq - 1,
        result: Err(ApiError::unavailable("stale")),
    });
    app.apply_outcome(Outcome::Estimate {
        seq,
        result: Ok(fixtures::estimate()),
    });
    // GPU count: right raises it, within 1..=8.
    chr(&mut app, 'G');
    chr(&mut app, 'k');
    let fx = key(&mut app, KeyCode::Right);
    assert!(matches!(&fx[..], [Effect::Estimate { draft, .. }] if draft.gpu_count == Some(2)));
    if let [Effect::Estimate { seq, .. }] = &fx[..] {
        app.apply_outcome(Outcome::Estimate {
            seq: *seq,
            result: Ok(fixtures::estimate()),
        });
    }
    chr(&mut app, 's');
    insta::assert_snapshot!("configure_submit_confirm", render(&mut app, 100, 30));
    let fx = chr(&mut app, 'y');
    match &fx[..] {
        [
            Effect::CreateJob {
                draft,
                confirm_over_budget,
            },
        ] => {
            assert!(!confirm_over_budget);
            assert_eq!(draft.gpu_count, Some(2));
            assert_eq!(draft.preset, "balanced");
        }
        other => panic!("expected CreateJob, got {other:?}"),
    }
    // The created job opens in the monitor.
    let mut j = fixtures::job(8, 2, JobStatus::Queued, 0);
    j.created_at = fixtures::now();
    let fx = app.apply_outcome(Outcome::JobCreated(Ok(j)));
    assert_eq!(app.tab, Tab::Jobs);
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(8));
    assert_eq!(fx, vec![Effect::LoadJobDetail(fixtures::job_id(8))]);
}

#[test]
fn train_on_this_opens_configure_with_the_dataset() {
    let mut app = app();
    // fresh-upload (validating) cannot be trained on.
    assert!(chr(&mut app, 't').is_empty());
    assert_eq!(app.tab, Tab::Datasets);
    chr(&mut app, 'G'); // support-chats, the oldest
    let fx = chr(&mut app, 't');
    assert_eq!(app.tab, Tab::Configure);
    assert_eq!(app.configure.dataset, Some(fixtures::dataset_id(1)));
    assert!(
        matches!(&fx[..], [Effect::Estimate { draft, .. }] if draft.dataset_id == fixtures::dataset_id(1))
    );
}

#[test]
fn file_browser_completes_paths_and_adds() {
    let mut app = app();
    let fx = chr(&mut app, 'a');
    let (request, dir) = match &fx[..] {
        [Effect::ListDir { request, dir }] => (*request, dir.clone()),
        other => panic!("{other:?}"),
    };
    // Type a folder of our own.
    let base = "/data/sets/";
    if let Some(brightrun_tui::app::Overlay::Files(fb)) = &mut app.overlay {
        fb.input.set(base);
    }
    let _ = dir;
    app.apply_outcome(Outcome::DirListing {
        request,
        dir: PathBuf::from("/data/sets"),
        entries: Ok(vec![
            DirEntry {
                name: "archive".into(),
                raw: "archive".into(),
                is_dir: true,
                size: 0,
            },
            DirEntry {
                name: "chats-nov.jsonl".into(),
                raw: "chats-nov.jsonl".into(),
                is_dir: false,
                size: 12_000_000,
            },
            DirEntry {
                name: "chats-oct.jsonl".into(),
                raw: "chats-oct.jsonl".into(),
                is_dir: false,
                size: 9_000_000,
            },
            DirEntry {
                name: "evil\u{1b}[2J.jsonl".into(),
                raw: "evil\u{1b}[2J.jsonl".into(),
                is_dir: false,
                size: 1,
            },
        ]),
    });
    typed(&mut app, "ch");
    key(&mut app, KeyCode::Tab);
    insta::assert_snapshot!("file_browser", render(&mut app, 80, 24));
    typed(&mut app, "n");
    key(&mut app, KeyCode::Tab);
    let fx = key(&mut app, KeyCode::Enter);
    let upload = match &fx[..] {
        [Effect::AddDataset { request, path, .. }] => {
            assert_eq!(path, &PathBuf::from("/data/sets/chats-nov.jsonl"));
            *request
        }
        other => panic!("{other:?}"),
    };
    // Upload progress shows live; quitting asks while it runs.
    app.apply_outcome(Outcome::Progress {
        task: TaskKey::Upload(upload),
        label: "upload chats-nov.jsonl".into(),
        done: 6_000_000,
        total: 12_000_000,
    });
    assert!(render(&mut app, 80, 24).contains("upload chats-nov.jsonl 50%"));
    assert!(chr(&mut app, 'q').is_empty());
    insta::assert_snapshot!("quit_during_upload", render(&mut app, 80, 24));
    key(&mut app, KeyCode::Esc);
    let mut d = fixtures::dataset(9, "chats-nov", DatasetStatus::Validating, 0);
    d.created_at = fixtures::now();
    app.apply_outcome(Outcome::DatasetAdded {
        request: upload,
        result: Ok(d),
    });
    assert!(!app.transfer_in_progress());
    assert_eq!(app.selected_dataset().unwrap().name, "chats-nov");
    assert_eq!(chr(&mut app, 'q'), vec![Effect::Quit]);
}

#[test]
fn rename_and_download_prompts() {
    let mut app = app();
    chr(&mut app, 'r');
    for _ in 0.."fresh-upload".len() {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "nov-chats");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::RenameDataset(
            fixtures::dataset_id(4),
            "nov-chats".into()
        )]
    );
    // Download to a folder, then overwrite after confirmation.
    chr(&mut app, '4');
    chr(&mut app, 'd');
    if let Some(brightrun_tui::app::Overlay::Prompt { input, .. }) = &mut app.overlay {
        input.set("/tmp/out");
    }
    let fx = key(&mut app, KeyCode::Enter);
    let request = match &fx[..] {
        [
            Effect::DownloadArtifact {
                request,
                to,
                force: false,
                ..
            },
        ] => {
            assert_eq!(to, &PathBuf::from("/tmp/out"));
            *request
        }
        other => panic!("{other:?}"),
    };
    app.apply_outcome(Outcome::Progress {
        task: TaskKey::Download(request),
        label: "download".into(),
        done: 50_000_000,
        total: 169_628_255,
    });
    insta::assert_snapshot!("download_progress", render(&mut app, 80, 24));
    app.apply_outcome(Outcome::Downloaded {
        request,
        id: fixtures::artifact_id(2),
        to: PathBuf::from("/tmp/out"),
        result: Err(ApiError::conflict(
            Reason::FilesExist,
            "a file already exists: /tmp/out/adapter_config.json; use --force to overwrite",
        )
        .with_details("a file already exists: /tmp/out/adapter_config.json")),
    });
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Overwrite those files?"), "{screen}");
    assert!(screen.contains("/tmp/out/adapter_config.json"), "{screen}");
    assert!(
        !screen.contains("--force"),
        "the CLI's advice is not shown: {screen}"
    );
    let fx = chr(&mut app, 'y');
    assert!(matches!(
        &fx[..],
        [Effect::DownloadArtifact { force: true, .. }]
    ));
}

/// The overwrite dialog follows the error's reason, not its wording: another conflict that
/// happens to say "already exists" is shown as a failure, with no dialog.
#[test]
fn only_a_files_exist_reason_asks_to_overwrite() {
    let mut app = app();
    chr(&mut app, '4');
    chr(&mut app, 'd');
    if let Some(brightrun_tui::app::Overlay::Prompt { input, .. }) = &mut app.overlay {
        input.set("/tmp/out");
    }
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::DownloadArtifact { request, .. }] = &fx[..] else {
        panic!("{fx:?}")
    };
    app.apply_outcome(Outcome::Downloaded {
        request: *request,
        id: fixtures::artifact_id(2),
        to: PathBuf::from("/tmp/out"),
        result: Err(ApiError::conflict(
            Reason::InUse,
            "the folder already exists and is used by another download",
        )),
    });
    assert!(app.overlay.is_none(), "no dialog for another reason");
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("download failed"), "{screen}");
}

#[test]
fn costs_period_switch_loads_and_ignores_stale_answers() {
    let mut app = app();
    chr(&mut app, '5');
    let fx = chr(&mut app, 'w');
    assert_eq!(fx, vec![Effect::LoadCosts(Period::Week)]);
    let fx = chr(&mut app, 'y');
    assert_eq!(fx, vec![Effect::LoadCosts(Period::Year)]);
    // The week answer arrives after the user asked for the year: it is not shown.
    let mut week = fixtures::costs();
    week.period = Period::Week;
    let fx = app.apply_outcome(Outcome::Costs(Ok(week)));
    assert_eq!(fx, vec![Effect::LoadCosts(Period::Year)]);
    let mut year = fixtures::costs();
    year.period = Period::Year;
    year.by_day = (1..=12)
        .map(|m| (format!("{m:02}"), m as f64 * 3.0))
        .collect();
    app.apply_outcome(Outcome::Costs(Ok(year)));
    insta::assert_snapshot!("costs_year", render(&mut app, 80, 24));
    // A new cost record refreshes the view.
    let fx = app.apply_event(EngineEvent::Cost(Arc::new(CostRecord {
        id: Default::default(),
        user_id: fixtures::user(),
        job_id: None,
        cost_type: CostType::Storage,
        amount: 0.1,
        details: Default::default(),
        billing_period: "2026-11".into(),
        created_at: fixtures::now(),
    })));
    assert_eq!(fx, vec![Effect::LoadCosts(Period::Year)]);
}

#[test]
fn mouse_selects_rows_and_wheel_scrolls() {
    let mut app = app();
    render(&mut app, 80, 24);
    let (area, _, _) = app.hits.list.unwrap();
    act(
        &mut app,
        Action::Click {
            column: area.x + 2,
            row: area.y + 2,
        },
    );
    assert_eq!(app.selected_dataset().unwrap().name, "alpaca-mini");
    act(
        &mut app,
        Action::Scroll {
            column: area.x + 2,
            row: area.y,
            delta: 1,
        },
    );
    assert_eq!(app.selected_dataset().unwrap().name, "support-chats");
}

#[test]
fn engine_progress_shows_in_the_status_bar() {
    let mut app = app();
    app.apply_event(EngineEvent::Progress(Progress {
        task: ProgressTask::TrainerEnvironment,
        done: 3,
        total: Some(10),
        message: "installing torch".into(),
    }));
    assert!(render(&mut app, 120, 24).contains("trainer environment"));
    app.apply_event(EngineEvent::Progress(Progress {
        task: ProgressTask::TrainerEnvironment,
        done: 10,
        total: Some(10),
        message: String::new(),
    }));
    assert!(app.tasks.is_empty());
}

#[test]
fn a_stale_answer_never_overwrites_a_newer_event() {
    let mut app = app();
    let fx = chr(&mut app, 'a');
    let request = match &fx[..] {
        [Effect::ListDir { request, .. }] => *request + 1,
        other => panic!("{other:?}"),
    };
    // The upload's answer carries the record as it was when the upload ended ...
    let mut uploaded = fixtures::dataset(9, "chats", DatasetStatus::Validating, 0);
    uploaded.updated_at = fixtures::now();
    // ... but validation finished first, and its event came before the answer.
    let mut ready = fixtures::dataset(9, "chats", DatasetStatus::Ready, 0);
    ready.updated_at = fixtures::now() + chrono::Duration::seconds(1);
    app.apply_event(EngineEvent::Dataset(Arc::new(ready)));
    app.apply_outcome(Outcome::DatasetAdded {
        request,
        result: Ok(uploaded),
    });
    assert_eq!(
        app.datasets.get(fixtures::dataset_id(9)).unwrap().status,
        DatasetStatus::Ready
    );
}

#[test]
fn a_file_from_the_desktop_dialog_is_added_and_closes_the_browser() {
    let mut app = app();
    let fx = chr(&mut app, 'a');
    let request = match &fx[..] {
        [Effect::ListDir { request, .. }] => *request,
        other => panic!("{other:?}"),
    };
    // An answer for another (stale) browser is ignored.
    let stale = app.apply_outcome(Outcome::NativeFile {
        request: request + 100,
        path: Some(PathBuf::from("/elsewhere/x.jsonl")),
    });
    assert!(stale.is_empty());
    assert!(matches!(
        app.overlay,
        Some(brightrun_tui::app::Overlay::Files(_))
    ));
    // A cancelled dialog leaves the browser open.
    assert!(
        app.apply_outcome(Outcome::NativeFile {
            request,
            path: None
        })
        .is_empty()
    );
    let fx = app.apply_outcome(Outcome::NativeFile {
        request,
        path: Some(PathBuf::from("/home/me/picked.jsonl")),
    });
    match &fx[..] {
        [Effect::AddDataset { path, .. }] => {
            assert_eq!(path, &PathBuf::from("/home/me/picked.jsonl"))
        }
        other => panic!("{other:?}"),
    }
    assert!(app.overlay.is_none());
}

#[test]
fn the_validating_message_goes_when_the_verdict_arrives() {
    let mut app = app();
    let fx = chr(&mut app, 'a');
    assert!(matches!(&fx[..], [Effect::ListDir { .. }]));
    let fx = app.apply_outcome(Outcome::NativeFile {
        request: match &app.overlay {
            Some(brightrun_tui::app::Overlay::Files(fb)) => fb.request,
            _ => unreachable!("the browser is open"),
        },
        path: Some(PathBuf::from("/data/new.jsonl")),
    });
    let upload = match &fx[..] {
        [Effect::AddDataset { request, .. }] => *request,
        other => panic!("{other:?}"),
    };
    let mut d = fixtures::dataset(11, "fresh", DatasetStatus::Validating, 0);
    d.created_at = fixtures::now();
    app.apply_outcome(Outcome::DatasetAdded {
        request: upload,
        result: Ok(d.clone()),
    });
    assert!(render(&mut app, 80, 24).contains("fresh uploaded; validating"));
    d.status = DatasetStatus::Ready;
    d.updated_at = fixtures::now() + chrono::Duration::seconds(1);
    app.apply_event(EngineEvent::Dataset(Arc::new(d)));
    assert!(app.message.is_none());
}

#[test]
fn a_dataset_in_error_is_offered_a_clean_copy() {
    let mut app = app();
    // Only a dataset with problems is cleaned.
    assert!(chr(&mut app, 'c').is_empty());
    assert!(app.overlay.is_none());
    for _ in 0..5 {
        if app.selected_dataset().map(|d| d.id) == Some(fixtures::dataset_id(3)) {
            break;
        }
        chr(&mut app, 'j');
    }
    assert_eq!(app.selected_dataset().unwrap().status, DatasetStatus::Error);
    assert!(chr(&mut app, 'c').is_empty());
    assert!(app.overlay.is_some(), "it asks first");
    let fx = chr(&mut app, 'y');
    assert_eq!(fx, vec![Effect::CleanDataset(fixtures::dataset_id(3))]);
}

#[test]
fn the_light_theme_paints_its_own_background() {
    // On a dark terminal, the light theme's dark text needs its own light background: every
    // cell of the screen gets it, not the terminal's default.
    let mut app = app();
    app.apply_outcome(Outcome::Theme(Ok(brightrun_tui::theme::Theme::builtin(
        "light",
    )
    .unwrap())));
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let reset = buf
        .content()
        .iter()
        .filter(|c| c.bg == ratatui::style::Color::Reset)
        .count();
    assert_eq!(reset, 0, "cells left on the terminal's own background");
}

#[test]
fn costs_bars_keep_their_cents() {
    let mut app = app();
    let fx = chr(&mut app, '5');
    let mut view = fixtures::costs();
    view.by_day = vec![("11-01".into(), 0.30), ("11-02".into(), 4.0)];
    for f in fx {
        if let Effect::LoadCosts(period) = f {
            view.period = period;
        }
    }
    app.apply_outcome(Outcome::Costs(Ok(view)));
    let screen = render(&mut app, 120, 30);
    assert!(screen.contains("$0.30"), "{screen}");
}

#[test]
fn a_filter_with_no_match_says_so_not_that_there_are_no_jobs() {
    let mut app = app();
    chr(&mut app, '3');
    chr(&mut app, '/');
    typed(&mut app, "no-such-job");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("Nothing matches “no-such-job”"), "{screen}");
    assert!(!screen.contains("No jobs yet"), "{screen}");
}

#[test]
fn slash_on_configure_finds_a_field_and_q_does_not_quit() {
    let mut app = app();
    chr(&mut app, '2');
    chr(&mut app, '/');
    typed(&mut app, "lora_r");
    key(&mut app, KeyCode::Enter);
    assert!(!app.should_quit(), "typing after / must not quit");
    let rows = app.configure.rows();
    assert_eq!(
        brightrun_tui::tabs::configure::ConfigureTab::label_of(rows[app.configure.row]),
        "lora_rank"
    );
    // The q typed in the field name went into the input, not to the quit key.
    chr(&mut app, '/');
    typed(&mut app, "q");
    assert!(!app.should_quit());
}

#[test]
fn help_scrolls_with_g_and_end_and_says_there_is_more() {
    let mut app = app();
    chr(&mut app, '?');
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("more below"), "{screen}");
    chr(&mut app, 'G');
    assert!(app.overlay.is_some(), "G closed the help");
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("more above"), "{screen}");
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::End);
    chr(&mut app, 'g');
    assert!(app.overlay.is_some(), "Home/End/g closed the help");
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("more below"), "{screen}");
}

#[test]
fn a_warning_goes_with_its_cause() {
    let mut app = app();
    chr(&mut app, '2');
    // Down to learning_rate, type a non-number, enter: the warning shows.
    for _ in 0..5 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "abc");
    key(&mut app, KeyCode::Enter);
    assert!(app.message.is_some());
    // Fixed: the warning goes.
    key(&mut app, KeyCode::Enter);
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "1e-4");
    key(&mut app, KeyCode::Enter);
    assert!(app.message.is_none(), "{:?}", app.message);
    // A hint about one tab goes when another is shown.
    app.notify_user(
        "only a ready dataset can be trained on",
        brightrun_tui::Level::Warning,
    );
    chr(&mut app, '3');
    assert!(app.message.is_none());
}

#[test]
fn a_click_on_another_row_starts_its_detail_at_the_top() {
    let mut app = app();
    render(&mut app, 80, 16);
    // Into the detail of the dataset with problems (a long one), scrolled down.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    for _ in 0..6 {
        chr(&mut app, 'j');
    }
    render(&mut app, 80, 16);
    assert!(app.tabs.datasets.browse.scroll > 0);
    // Back in the list, a click on another row selects it: its detail starts at the top.
    key(&mut app, KeyCode::Esc);
    render(&mut app, 80, 16);
    let (area, _, _) = app.hits.list.unwrap();
    act(
        &mut app,
        Action::Click {
            column: area.x + 2,
            row: area.y + 3,
        },
    );
    assert_ne!(app.selected_dataset().unwrap().name, "broken-export");
    render(&mut app, 80, 16);
    assert_eq!(app.tabs.datasets.browse.scroll, 0);
}

#[test]
fn an_auto_selected_new_dataset_starts_its_detail_at_the_top() {
    let mut app = app();
    render(&mut app, 80, 16);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    for _ in 0..6 {
        chr(&mut app, 'j');
    }
    render(&mut app, 80, 16);
    assert!(app.tabs.datasets.browse.scroll > 0);
    // An upload finishes: the new dataset is selected, and shown from its top.
    let mut d = fixtures::datasets()[2].clone();
    d.id = "d0000009-0000-abcd-0000-000000000009".parse().unwrap();
    d.name = "just-added".into();
    d.created_at = fixtures::now();
    d.updated_at = fixtures::now();
    app.apply_outcome(Outcome::DatasetAdded {
        request: 1,
        result: Ok(d),
    });
    assert_eq!(app.selected_dataset().unwrap().name, "just-added");
    render(&mut app, 80, 16);
    assert_eq!(app.tabs.datasets.browse.scroll, 0);
}

#[test]
fn the_key_hints_follow_the_focused_pane() {
    let mut app = app();
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("a add"), "{screen}");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    let last = screen.lines().last().unwrap().to_string();
    assert!(
        last.contains("scroll") && last.contains("back to the list"),
        "{last}"
    );
    assert!(!last.contains("a add"), "{last}");
}

#[test]
fn freeze_also_freezes_the_clocks_it_shows() {
    let mut app = app();
    chr(&mut app, '3');
    let before = render(&mut app, 100, 30);
    chr(&mut app, 'f');
    app.tick(fixtures::now() + chrono::Duration::minutes(7));
    let frozen = render(&mut app, 100, 30);
    // Only the status line (the "frozen" message) may differ.
    let body = |s: &str| s.lines().take(28).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&before), body(&frozen));
    chr(&mut app, 'f');
    app.tick(fixtures::now() + chrono::Duration::minutes(7));
    assert_eq!(app.now, fixtures::now() + chrono::Duration::minutes(7));
}

#[test]
fn the_file_browser_expands_a_tilde() {
    let mut app = app();
    chr(&mut app, 'a');
    if let Some(brightrun_tui::app::Overlay::Files(fb)) = &mut app.overlay {
        fb.input.set("");
    }
    let fx = typed(&mut app, "~/");
    let home = PathBuf::from(std::env::var_os("HOME").unwrap());
    assert!(
        fx.iter()
            .any(|f| matches!(f, Effect::ListDir { dir, .. } if *dir == home)),
        "{fx:?}"
    );
}

#[test]
fn a_long_failure_reason_is_whole_in_the_jobs_detail_at_80_columns() {
    let mut app = app();
    chr(&mut app, '3');
    let mut failed = (*app.jobs.get(fixtures::job_id(3)).unwrap().clone()).clone();
    let reason = "base model acme/nothing-7b is not in the offline cache (HF_HUB_OFFLINE is set): download it first (huggingface-cli download acme/nothing-7b) or let the trainer reach the Hugging Face Hub";
    failed.error_message = Some(reason.into());
    app.apply_event(EngineEvent::Job(Arc::new(failed)));
    for _ in 0..5 {
        if app.selected_job().unwrap().id == fixtures::job_id(3) {
            break;
        }
        chr(&mut app, 'j');
    }
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(3));
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 80, 24);
    // Every word of the reason is on the screen (wrapped, not cut at the edge).
    let text: String = screen.replace(['│', '┃', '"'], " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    for w in reason.split_whitespace() {
        assert!(words.contains(&w), "{w:?} missing:\n{screen}");
    }
}

#[test]
fn a_models_configuration_keeps_a_space_after_the_longest_key() {
    let mut app = app();
    chr(&mut app, '4');
    let mut a = (*app.selected_artifact().unwrap().clone()).clone();
    a.configuration = brightrun_api::domain::JsonValue(serde_json::json!({
        "hyperparameters": {"gradient_accumulation_steps": 1}
    }));
    app.apply_event(EngineEvent::Artifact(Arc::new(a)));
    key(&mut app, KeyCode::Enter);
    for _ in 0..40 {
        chr(&mut app, 'j');
    }
    let screen = render(&mut app, 120, 60);
    assert!(screen.contains("gradient_accumulation_steps"), "{screen}");
    assert!(!screen.contains("gradient_accumulation_steps1"), "{screen}");
}

#[test]
fn base_models_are_listed_and_an_unknown_ones_size_has_a_field() {
    let mut app = app();
    chr(&mut app, '2');
    // base_model is the fifth row (under method); ←/→ list the models whose size is known.
    for _ in 0..4 {
        chr(&mut app, 'j');
    }
    chr(&mut app, 'l');
    let Some(brightrun_tui::app::Overlay::Pick {
        options, selected, ..
    }) = app.overlay.clone()
    else {
        panic!("no base model picker: {:?}", app.overlay);
    };
    let qwen = options
        .iter()
        .position(|o| o.starts_with("Qwen/Qwen2.5-0.5B "))
        .expect("Qwen2.5-0.5B listed");
    assert_eq!(options.last().unwrap(), "(type another id…)");
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("Base model (size known)"), "{screen}");
    for _ in selected..qwen {
        key(&mut app, KeyCode::Down);
    }
    for _ in qwen..selected {
        key(&mut app, KeyCode::Up);
    }
    let fx = key(&mut app, KeyCode::Enter);
    let Some(Effect::Estimate { draft, .. }) = fx.last() else {
        panic!("no estimate: {fx:?}");
    };
    assert!(
        draft
            .sets
            .contains(&("base_model".into(), "Qwen/Qwen2.5-0.5B".into()))
    );
    // An id the table does not know: its size goes in parameters_billions, the next row.
    key(&mut app, KeyCode::Enter);
    ctrl(&mut app, 'u');
    typed(&mut app, "acme/secret-13b");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("(unknown: type size)"), "{screen}");
    chr(&mut app, 'j');
    key(&mut app, KeyCode::Enter);
    let fx = typed(&mut app, "13");
    let Some(Effect::Estimate { draft, .. }) = fx.last() else {
        panic!("no estimate: {fx:?}");
    };
    assert!(
        draft
            .sets
            .contains(&("parameters_billions".into(), "13".into()))
    );
    assert!(
        draft
            .sets
            .contains(&("base_model".into(), "acme/secret-13b".into()))
    );
}

#[test]
fn this_machine_is_the_local_backends_gpu_type_in_the_form() {
    use brightrun_api::training::{GpuCatalog, presets};
    let config = config();
    let hw = brightrun_api::hardware::LocalHardware {
        gpus: vec![],
        cpu_cores: 16,
        memory_gb: 64.0,
    };
    let gpus = GpuCatalog::builtin();
    let gpus = gpus.clone().with_local(hw.spec(0.0, &gpus));
    let mut snap = fixtures::snapshot();
    snap.catalog = Some(brightrun_api::Catalog {
        presets: presets::list(&config.training),
        default_preset: "balanced".into(),
        gpus: gpus.all().to_vec(),
        gpu_error: None,
        default_gpu: "local".into(),
        default_gpu_count: 1,
        backends: vec!["local".into()],
        default_backend: "local".into(),
        profile: "default".into(),
        storage: "local".into(),
        base_models: brightrun_api::training::models::builtin_all(),
    });
    let mut app = brightrun_tui::App::new(snap, &config);
    app.set_now(fixtures::now());
    chr(&mut app, '2');
    let screen = render(&mut app, 120, 40);
    assert!(
        screen.contains("gpu_type                     your machine: CPU (16 cores)"),
        "{screen}"
    );
}

#[test]
fn the_status_bar_shows_the_postgres_mirror() {
    use brightrun_api::mirror::{MirrorState, MirrorStatus};
    let mut app = app();
    let status = |state, behind, err: Option<&str>| MirrorStatus {
        state,
        target: Some("brightrun@db:5432/lora".into()),
        running: true,
        acked_seq: 10,
        last_seq: 10 + behind,
        behind,
        last_error: err.map(str::to_string),
        last_error_at: None,
        last_synced_at: None,
        backfilled_rows: 0,
    };
    assert!(
        !render(&mut app, 160, 24).contains("pg "),
        "nothing while off"
    );
    app.set_mirror(status(MirrorState::InSync, 0, None));
    assert!(render(&mut app, 160, 24).contains("pg ✓"));
    app.set_mirror(status(MirrorState::Behind, 12, None));
    assert!(render(&mut app, 160, 24).contains("pg 12 behind"));
    app.set_mirror(status(
        MirrorState::Unreachable,
        3,
        Some("PostgreSQL at brightrun@db:5432/lora: connection refused"),
    ));
    let screen = render(&mut app, 160, 24);
    assert!(
        screen.contains("pg ✗ PostgreSQL at brightrun@db:5432/lo"),
        "{screen}"
    );
    app.set_mirror(status(MirrorState::Disabled, 0, None));
    assert!(!render(&mut app, 160, 24).contains("pg "));
}

#[test]
fn the_status_bar_shows_a_remote_store_and_whether_it_answers() {
    let mut snapshot = fixtures::snapshot();
    snapshot.storage = "s3".into();
    let mut app = brightrun_tui::App::new(snapshot, &config());
    app.set_now(fixtures::now());
    assert!(
        render(&mut app, 160, 24).contains("s3 ○"),
        "not heard from yet"
    );
    app.apply_event(EngineEvent::BackendHealth {
        backend: brightrun_api::events::STORAGE_HEALTH.into(),
        reachable: true,
    });
    assert!(render(&mut app, 160, 24).contains("s3 ●"));
    app.apply_event(EngineEvent::BackendHealth {
        backend: brightrun_api::events::STORAGE_HEALTH.into(),
        reachable: false,
    });
    assert!(render(&mut app, 160, 24).contains("s3 ✗ unreachable"));
    // The local folder store always answers: the narrow bar does not spend room on it.
    let mut app = common::app();
    assert!(!render(&mut app, 160, 24).contains("local ○ │ default"));
}

#[test]
fn the_backend_picker_shows_which_backends_answer() {
    use brightrun_api::training::{GpuCatalog, presets};
    let config = config();
    let mut snap = fixtures::snapshot();
    snap.catalog = Some(brightrun_api::Catalog {
        presets: presets::list(&config.training),
        default_preset: "balanced".into(),
        gpus: GpuCatalog::builtin().all().to_vec(),
        gpu_error: None,
        default_gpu: "A100-80GB".into(),
        default_gpu_count: 1,
        backends: vec!["gpu-ray".into(), "local".into(), "pod".into()],
        default_backend: "local".into(),
        profile: "default".into(),
        storage: "s3".into(),
        base_models: brightrun_api::training::models::builtin_all(),
    });
    snap.backends = vec!["gpu-ray".into(), "local".into(), "pod".into()];
    let mut app = brightrun_tui::App::new(snap, &config);
    app.set_now(fixtures::now());
    for (backend, reachable) in [("local", true), ("gpu-ray", false)] {
        app.apply_event(EngineEvent::BackendHealth {
            backend: backend.into(),
            reachable,
        });
    }
    chr(&mut app, '2');
    // The backend is the form's last row.
    for _ in 0..80 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    for line in [
        "local                ● answers",
        "gpu-ray              ✗ unreachable",
        "pod                  ○ not checked yet",
    ] {
        assert!(screen.contains(line), "{line:?} in\n{screen}");
    }
}

/// Renames dataset `n` (as an engine event would).
fn rename_dataset(app: &mut brightrun_tui::App, n: u128, name: &str) {
    let mut d = (**app.datasets.get(fixtures::dataset_id(n)).unwrap()).clone();
    d.name = name.into();
    d.updated_at = fixtures::now();
    app.apply_event(EngineEvent::Dataset(Arc::new(d)));
}

#[test]
fn a_cut_name_ends_in_an_ellipsis_never_in_another_name() {
    // "support chats v2" cut to "support chats" would name another dataset.
    let mut app = app();
    rename_dataset(
        &mut app,
        1,
        "support chats v2 (deduplicated, the March export)",
    );
    rename_dataset(&mut app, 2, "support chats");
    chr(&mut app, '3');
    let screen = render(&mut app, 80, 24);
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("b0000001") && !l.contains("Job b0000001"))
        .collect();
    assert_eq!(rows.len(), 1, "{screen}");
    // Cut, and saying so: the name shown is the start of the whole name, then "…".
    let cell = rows[0]
        .split("b0000001 ")
        .nth(1)
        .and_then(|r| r.split('…').next())
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        cell.len() > "support chats".len() && rows[0].contains(&format!("{cell}…")),
        "{screen}"
    );
    assert!(
        "support chats v2 (deduplicated, the March export)".starts_with(cell),
        "{cell:?}"
    );
    insta::assert_snapshot!("jobs_long_dataset_name_80x24", screen);
    // With room, the name is whole: the other columns are as wide as what they hold.
    rename_dataset(&mut app, 1, "support chats v2");
    let screen = render(&mut app, 80, 24);
    assert!(
        screen
            .lines()
            .any(|l| l.contains("b0000001 support chats v2 ")),
        "{screen}"
    );
}

#[test]
fn wide_terminals_give_long_titles_and_names_the_room() {
    let mut app = app();
    let title = "Dataset has errors in the March export of customer support chats";
    app.apply_event(EngineEvent::Notification(Arc::new(fixtures::notification(
        40,
        NotificationType::DatasetError,
        title,
        "first on line 3",
        true,
        None,
        1,
    ))));
    chr(&mut app, '6');
    let screen = render(&mut app, 200, 50);
    assert!(screen.contains(title), "{screen}");
    insta::assert_snapshot!("notifications_long_title_200x50", screen);
    // A model's long name and base model, whole.
    let mut a = fixtures::artifact(9, 2, 1, 4, 1);
    a.name = "support-lora-customer-chats-march".into();
    a.base_model = "meta-llama/Meta-Llama-3.1-8B-Instruct".into();
    app.apply_event(EngineEvent::Artifact(Arc::new(a)));
    chr(&mut app, '4');
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("support-lora-customer-chats-march"),
        "{screen}"
    );
    assert!(screen.contains("Meta-Llama-3.1-8B-Instruct"), "{screen}");
    assert!(
        !screen.contains('…'),
        "nothing needs cutting at 200x50:\n{screen}"
    );
}

#[test]
fn a_long_detail_value_wraps_under_itself() {
    let mut app = app();
    let mut d = (**app.datasets.get(fixtures::dataset_id(1)).unwrap()).clone();
    d.file_name =
        "customer support chats exported from the helpdesk in March, deduplicated.jsonl".into();
    d.error_message = Some(
        "the stored file of this dataset is not available to clean: it was moved or deleted \
         outside BrightRun"
            .into(),
    );
    d.updated_at = fixtures::now();
    app.apply_event(EngineEvent::Dataset(Arc::new(d)));
    for _ in 0..5 {
        if app.selected_dataset().map(|d| d.id) == Some(fixtures::dataset_id(1)) {
            break;
        }
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 80, 24);
    // The pane's lines, inside its border.
    let lines: Vec<String> = screen
        .lines()
        .map(|l| l.trim_matches('"').chars().skip(1).collect())
        .collect();
    let indent = |l: &str| l.chars().take_while(|c| *c == ' ').count();
    let file = lines
        .iter()
        .position(|l| l.starts_with("file          customer"))
        .unwrap_or_else(|| panic!("{screen}"));
    // The continuation starts under the value (14 columns in), not under the key.
    assert_eq!(indent(&lines[file + 1]), 14, "{screen}");
    let error = lines
        .iter()
        .position(|l| l.starts_with("error: the stored"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert_eq!(indent(&lines[error + 1]), 7, "{screen}");
    insta::assert_snapshot!("dataset_detail_hanging_indent_80x24", screen);
}

#[test]
fn an_error_in_the_status_bar_goes_with_its_tab() {
    let mut app = app();
    app.apply_outcome(Outcome::DatasetChanged {
        what: "cleaned",
        result: Err(ApiError::unavailable(
            "the stored file of dataset broken-export is not available to clean",
        )),
    });
    assert!(render(&mut app, 100, 24).contains("could not clean"));
    chr(&mut app, '3');
    let screen = render(&mut app, 100, 24);
    assert!(!screen.contains("could not clean"), "{screen}");
    chr(&mut app, '1');
    assert!(!render(&mut app, 100, 24).contains("could not clean"));
    // An answer that arrives after the switch is said where the user is.
    chr(&mut app, '3');
    app.apply_outcome(Outcome::JobChanged {
        what: "cancelled",
        result: Err(ApiError::unavailable("the engine is restarting")),
    });
    assert!(render(&mut app, 100, 24).contains("could not cancel the job"));
}

#[test]
fn health_dots_are_unknown_while_the_engine_is_out_of_reach() {
    let mut snapshot = fixtures::snapshot();
    snapshot.storage = "s3".into();
    snapshot.connection = "tcp://gpu-server:7878".into();
    let mut app = brightrun_tui::App::new(snapshot, &config());
    app.set_now(fixtures::now());
    for backend in [brightrun_api::events::STORAGE_HEALTH, "local"] {
        app.apply_event(EngineEvent::BackendHealth {
            backend: backend.into(),
            reachable: true,
        });
    }
    let screen = render(&mut app, 160, 24);
    assert!(
        screen.contains("s3 ●") && screen.contains("local ●"),
        "{screen}"
    );
    app.set_reconnecting(true);
    let screen = render(&mut app, 160, 24);
    let bar = screen.lines().last().unwrap();
    assert!(bar.contains("reconnecting"), "{bar}");
    assert!(!bar.contains('●'), "a verdict from before the drop: {bar}");
    assert!(bar.contains("s3 ○") && bar.contains("local ○"), "{bar}");
    // The backend picker says the same.
    chr(&mut app, '2');
    for _ in 0..80 {
        chr(&mut app, 'j');
    }
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("○ unknown (reconnecting)"), "{screen}");
    key(&mut app, KeyCode::Esc);
    app.set_reconnecting(false);
    assert!(render(&mut app, 160, 24).contains("local ●"));
}

#[test]
fn costs_read_in_one_money_format_and_name_the_jobs() {
    let mut app = app();
    let fx = chr(&mut app, '5');
    let mut view = fixtures::costs();
    for f in fx {
        if let Effect::LoadCosts(period) = f {
            view.period = period;
        }
    }
    // The flat storage line as the engine records it (five ten-millionths of a dollar).
    view.by_type = vec![
        (CostType::Compute, 76.0),
        (CostType::Storage, 5.0e-7),
        (CostType::DataTransfer, 0.0),
    ];
    // The engine describes a job's cost by the id the row already shows.
    view.by_job = vec![
        (
            Some(fixtures::job_id(2)),
            "job b0000002 (completed)".into(),
            5.27,
        ),
        (
            Some(fixtures::job_id(5)),
            "job b0000005 (cancelled)".into(),
            0.004,
        ),
        (
            Some(fixtures::job_id(77)),
            format!("job {} (completed)", fixtures::job_id(77).short()),
            0.2,
        ),
    ];
    app.apply_outcome(Outcome::Costs(Ok(view)));
    let screen = render(&mut app, 120, 40);
    assert!(!screen.contains("$0.0000"), "{screen}");
    assert!(screen.contains("<$0.01"), "{screen}");
    assert!(screen.contains("$0.00"), "zero is still $0.00:\n{screen}");
    let row = |id: &str| {
        screen
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} in\n{screen}"))
            .to_string()
    };
    let first = row("b0000002");
    assert_eq!(first.matches("b0000002").count(), 1, "{first}");
    assert!(
        first.contains("alpaca-mini · Mistral-7B-v0.1 · 1×A100-80GB"),
        "{first}"
    );
    assert!(row("b0000005").contains("(cancelled)"));
    // A job no longer listed keeps what the engine said of it, without the id again.
    let short = fixtures::job_id(77).short();
    let gone = row(&short);
    assert_eq!(gone.matches(short.as_str()).count(), 1, "{gone}");
    assert!(gone.contains("(completed)"), "{gone}");
    insta::assert_snapshot!("costs_money_and_job_names", screen);
}

#[test]
fn the_base_model_picker_filters_as_you_type() {
    let mut app = app();
    chr(&mut app, '2');
    for _ in 0..4 {
        chr(&mut app, 'j');
    }
    chr(&mut app, 'l');
    let Some(brightrun_tui::app::Overlay::Pick { options, .. }) = app.overlay.clone() else {
        panic!("no base model picker: {:?}", app.overlay);
    };
    assert!(options.len() > 20, "{options:?}");
    chr(&mut app, '/');
    // j and k are letters while typing, not moves.
    typed(&mut app, "qwen 0.5");
    let screen = render(&mut app, 100, 30);
    insta::assert_snapshot!("base_model_picker_filtered", screen);
    let shown: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("B ") || l.contains("type another id"))
        .collect();
    assert!(
        shown.iter().any(|l| l.contains("Qwen/Qwen2.5-0.5B ")),
        "{screen}"
    );
    assert!(!screen.contains("Mistral-7B"), "{screen}");
    assert!(screen.contains("(type another id…)"), "{screen}");
    // Esc clears the filter and keeps the picker open; a second Esc closes it.
    key(&mut app, KeyCode::Esc);
    assert!(render(&mut app, 100, 30).contains("Mistral-7B"));
    assert!(app.overlay.is_some());
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
    // Enter picks the first shown.
    chr(&mut app, 'l');
    chr(&mut app, '/');
    typed(&mut app, "qwen2.5-0.5b");
    let fx = key(&mut app, KeyCode::Enter);
    let Some(Effect::Estimate { draft, .. }) = fx.last() else {
        panic!("no estimate: {fx:?}");
    };
    assert!(
        draft
            .sets
            .contains(&("base_model".into(), "Qwen/Qwen2.5-0.5B".into()))
    );
    // Nothing matches: "type another id" starts from what was typed.
    chr(&mut app, 'l');
    chr(&mut app, '/');
    typed(&mut app, "acme/secret-13b");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("acme/secret-13b"), "{screen}");
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 30);
    assert!(screen.contains("(unknown: type size)"), "{screen}");
}

/// The Models tab with the selected model's evaluation loaded and its Evaluation view open.
fn evaluation_open() -> (brightrun_tui::App, brightrun_api::ids::ArtifactId) {
    let mut app = app();
    let fx = chr(&mut app, '4');
    let id = app.selected_artifact().unwrap().id;
    // The detail's quality line asks for the evaluation when the tab is shown.
    assert_eq!(fx, vec![Effect::LoadEvaluation(id)]);
    key(&mut app, KeyCode::Enter);
    // A request in flight is not asked again; the view says it is loading.
    assert!(chr(&mut app, 'e').is_empty());
    assert!(render(&mut app, 80, 24).contains("loading…"));
    app.apply_outcome(Outcome::Evaluation {
        id,
        result: Ok(fixtures::evaluation()),
    });
    (app, id)
}

fn eval_scroll(app: &brightrun_tui::App) -> u16 {
    app.tabs.models.evaluation.as_ref().unwrap().scroll
}

#[test]
fn the_evaluation_view_opens_scrolls_and_closes() {
    let (mut app, id) = evaluation_open();
    insta::assert_snapshot!("evaluation_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("evaluation_200x50", render(&mut app, 200, 50));
    // j/k, page and end/home scroll it; layout keeps the end within the text.
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    assert_eq!(eval_scroll(&app), 2);
    chr(&mut app, 'k');
    assert_eq!(eval_scroll(&app), 1);
    key(&mut app, KeyCode::PageDown);
    assert_eq!(eval_scroll(&app), 11);
    key(&mut app, KeyCode::End);
    let screen = render(&mut app, 80, 24);
    let end = eval_scroll(&app);
    assert!(end > 11 && end < 200, "{end}");
    assert!(screen.contains("refund policy"), "{screen}");
    key(&mut app, KeyCode::PageUp);
    assert_eq!(eval_scroll(&app), end - 10);
    key(&mut app, KeyCode::Home);
    assert_eq!(eval_scroll(&app), 0);
    // The hints say how to leave and scroll.
    assert!(render(&mut app, 80, 24).contains("esc back  j scroll"));
    // Esc goes back to the model's detail, which says what the score rests on.
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.models.evaluation.is_none());
    assert_eq!(
        app.tabs.models.browse.focus,
        brightrun_tui::app::Focus::Detail
    );
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("held-out loss 84% below the base model's"),
        "{screen}"
    );
    assert!(screen.contains("1 of 5 probes"), "{screen}");
    // Opened again, the loaded evaluation shows at once and is asked for afresh.
    assert_eq!(chr(&mut app, 'e'), vec![Effect::LoadEvaluation(id)]);
    assert!(render(&mut app, 80, 24).contains("held-out loss"));
    // e closes it too.
    chr(&mut app, 'e');
    assert!(app.tabs.models.evaluation.is_none());
}

#[test]
fn the_evaluation_view_marks_the_probe_the_training_changed() {
    let (mut app, _) = evaluation_open();
    let screen = render(&mut app, 200, 50);
    let france = screen
        .lines()
        .find(|l| l.contains("≠"))
        .expect("a changed probe is marked");
    assert!(france.contains("changed by the training"), "{screen}");
    // Stacked at 80 columns: the France probe, its reference and both answers.
    key(&mut app, KeyCode::End);
    let mut seen = String::new();
    key(&mut app, KeyCode::Home);
    for _ in 0..12 {
        seen.push_str(&render(&mut app, 80, 24));
        key(&mut app, KeyCode::PageDown);
    }
    for text in [
        "What is the capital of France?",
        "The capital of France is Paris.",
        "Luxembourg's capital is Lutz.",
        "adapter closer to the reference than the base in 2 of 3 samples",
    ] {
        assert!(seen.contains(text), "{text} missing");
    }
}

#[test]
fn a_model_without_an_evaluation_says_why() {
    let mut app = app();
    chr(&mut app, '4');
    let id = app.selected_artifact().unwrap().id;
    let mut e = ApiError::not_found("model has no evaluation");
    e.reason = Some(Reason::NotEvaluated);
    app.apply_outcome(Outcome::Evaluation { id, result: Err(e) });
    // e opens the view and asks again.
    assert_eq!(chr(&mut app, 'e'), vec![Effect::LoadEvaluation(id)]);
    let mut e = ApiError::not_found("model has no evaluation");
    e.reason = Some(Reason::NotEvaluated);
    app.apply_outcome(Outcome::Evaluation { id, result: Err(e) });
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("evaluation_not_evaluated", screen);
    assert!(app.message.is_none(), "no evaluation is not an error");
    // Another error goes to the status bar.
    key(&mut app, KeyCode::Esc);
    chr(&mut app, 'e');
    app.apply_outcome(Outcome::Evaluation {
        id,
        result: Err(ApiError::unavailable("the engine is restarting")),
    });
    let m = app.message.as_ref().unwrap();
    assert_eq!(m.level, brightrun_tui::Level::Error);
    assert!(m.text.contains("the engine is restarting"), "{}", m.text);
    assert!(render(&mut app, 80, 24).contains("could not load the evaluation"));
}

#[test]
fn the_evaluating_stage_shows_like_the_others() {
    let mut app = app();
    let mut j = fixtures::job(9, 2, JobStatus::Running, 1);
    j.current_stage = JobStage::Evaluating;
    j.progress = 96.0;
    app.apply_event(EngineEvent::Job(Arc::new(j)));
    chr(&mut app, '3');
    let screen = render(&mut app, 200, 50);
    assert!(screen.contains("evaluating"), "{screen}");
}

/// The Configure form with learning_rate set to `lr` (and the estimate answered).
fn configure_with_lr(app: &mut brightrun_tui::App, lr: &str) {
    chr(app, '2');
    for _ in 0..6 {
        chr(app, 'j');
    }
    key(app, KeyCode::Enter);
    for _ in 0..10 {
        key(app, KeyCode::Backspace);
    }
    typed(app, lr);
    key(app, KeyCode::Enter);
}

fn confirmation(app: &mut brightrun_tui::App) -> String {
    chr(app, 's');
    match &app.overlay {
        Some(brightrun_tui::app::Overlay::Confirm { lines, .. }) => lines.join("\n"),
        other => panic!(
            "expected the confirmation, got {other:?}; {:?}",
            app.message.as_ref().map(|m| &m.text)
        ),
    }
}

#[test]
fn the_confirmation_counts_the_real_changes_and_says_this_machine() {
    // Two hyperparameters changed: two changes, named.
    let mut app = app();
    configure_with_lr(&mut app, "1e-4");
    // epochs is four rows below learning_rate (batch_size, gradient_accumulation_steps).
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    chr(&mut app, 'j');
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "5");
    key(&mut app, KeyCode::Enter);
    let c = confirmation(&mut app);
    assert!(
        c.contains("preset custom (balanced + 2 changes: learning_rate, epochs)"),
        "{c}"
    );
    // The local backend is this machine, with the GPUs it was given.
    assert!(c.contains("on this machine (1×"), "{c}");
    assert!(!c.contains("(local)"), "{c}");
    // A value typed differently but equal to the preset's is no change.
    let mut app = common::app();
    let lr = brightrun_api::training::ranges::FIELDS
        .iter()
        .position(|f| f.name == "learning_rate")
        .unwrap();
    let preset_lr = app.configure.base_values[lr].clone();
    let same: f64 = preset_lr.parse().unwrap();
    configure_with_lr(&mut app, &format!("{same:.10}"));
    let c = confirmation(&mut app);
    assert!(c.contains("with preset balanced on"), "{c}");
}

#[test]
fn a_local_cpu_run_is_on_this_machine() {
    use brightrun_api::training::{GpuCatalog, presets};
    let config = config();
    let hw = brightrun_api::hardware::LocalHardware {
        gpus: vec![],
        cpu_cores: 16,
        memory_gb: 64.0,
    };
    let gpus = GpuCatalog::builtin();
    let gpus = gpus.clone().with_local(hw.spec(0.0, &gpus));
    let mut snap = fixtures::snapshot();
    snap.catalog = Some(brightrun_api::Catalog {
        presets: presets::list(&config.training),
        default_preset: "balanced".into(),
        gpus: gpus.all().to_vec(),
        gpu_error: None,
        default_gpu: "local".into(),
        default_gpu_count: 1,
        backends: vec!["local".into()],
        default_backend: "local".into(),
        profile: "default".into(),
        storage: "local".into(),
        base_models: brightrun_api::training::models::builtin_all(),
    });
    let mut app = brightrun_tui::App::new(snap, &config);
    app.set_now(fixtures::now());
    chr(&mut app, '2');
    let c = confirmation(&mut app);
    assert!(
        c.starts_with("Train on alpaca-mini with preset balanced on this machine."),
        "{c}"
    );
    assert!(!c.contains("1×local"), "{c}");
}
