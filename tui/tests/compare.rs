//! The Jobs tab's marks and its Compare view: space marks (up to six training runs, the count
//! in the title), `C` opens the view of the marked runs, their losses overlaid in one chart
//! (a colour per run in every theme, validation dotted), the x axis switched with `x`, the
//! engine's comparison under it; loading, errors, stale answers, live points.

mod common;

use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::JobId;
use brightrun_tui::action::Tab;
use brightrun_tui::app::Overlay;
use brightrun_tui::fixtures;
use brightrun_tui::tabs::jobs_compare::{Metrics, XAxis, YMetric};
use brightrun_tui::theme::{BUILTIN, Theme};
use brightrun_tui::{App, Effect, Level, Outcome};
use common::*;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use std::sync::Arc;

/// The fixture app on the Jobs tab (rows: jobs 1, 4, 2, 3, 5, newest first), job 1 selected.
fn on_jobs() -> App {
    let mut app = app();
    chr(&mut app, '3');
    assert_eq!(app.tab, Tab::Jobs);
    assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(1));
    app
}

/// Selects job `n` in the list.
fn select(app: &mut App, n: u128) {
    chr(app, 'g');
    for _ in 0..10 {
        if app.selected_job().unwrap().id == fixtures::job_id(n) {
            return;
        }
        chr(app, 'j');
    }
    panic!("job {n} is not in the list");
}

fn mark(app: &mut App, n: u128) -> Vec<Effect> {
    select(app, n);
    key(app, KeyCode::Char(' '))
}

fn message(app: &App) -> (String, Level) {
    let m = app.message.as_ref().expect("a status message");
    (m.text.clone(), m.level)
}

/// Jobs 1, 2 and 3 marked.
fn marked() -> App {
    let mut app = on_jobs();
    for n in [1, 2, 3] {
        assert!(mark(&mut app, n).is_empty());
    }
    assert_eq!(
        app.tabs.jobs.marks,
        [1, 2, 3].map(fixtures::job_id).to_vec()
    );
    app
}

/// `C`: the view opens and asks for the comparison and each run's metrics, once.
fn open(app: &mut App) -> u64 {
    let fx = chr(app, 'C');
    assert!(app.tabs.jobs.compare.is_some(), "the view is open");
    let ids = [1, 2, 3].map(fixtures::job_id).to_vec();
    let request = match fx.first() {
        Some(Effect::CompareRuns {
            request,
            ids: asked,
        }) => {
            assert_eq!(*asked, ids);
            *request
        }
        other => panic!("expected the comparison to be asked for, got {other:?}"),
    };
    let metrics: Vec<JobId> = fx[1..]
        .iter()
        .map(|e| match e {
            Effect::LoadRunMetrics { request: r, id } => {
                assert_eq!(*r, request);
                *id
            }
            other => panic!("expected metrics to be asked for, got {other:?}"),
        })
        .collect();
    assert_eq!(metrics, ids, "each run's metrics, once");
    request
}

fn answer_comparison(app: &mut App, request: u64, c: RunComparison) {
    app.apply_outcome(Outcome::RunsCompared {
        request,
        result: Ok(Box::new(c)),
    });
}

fn answer_metrics(app: &mut App, request: u64, n: u128) {
    app.apply_outcome(Outcome::RunMetrics {
        request,
        id: fixtures::job_id(n),
        result: Ok(fixtures::compared_metrics(n)),
    });
}

/// The view of jobs 1, 2 and 3 with every answer in.
fn shown() -> App {
    let mut app = marked();
    let request = open(&mut app);
    answer_comparison(&mut app, request, fixtures::comparison());
    for n in [1, 2, 3] {
        answer_metrics(&mut app, request, n);
    }
    app
}

fn view(app: &App) -> &brightrun_tui::tabs::jobs_compare::CompareView {
    app.tabs.jobs.compare.as_ref().expect("the Compare view")
}

fn footer(screen: &str) -> String {
    screen.lines().last().unwrap().to_string()
}

#[test]
fn space_marks_and_unmarks_and_the_title_counts() {
    let mut app = on_jobs();
    let screen = render(&mut app, 80, 24);
    // Nothing marked: no mark column, the hints offer marking within 80 columns.
    assert!(screen.contains("┏ Jobs 5 ━"), "{screen}");
    assert!(
        footer(&screen).contains("space mark"),
        "{}",
        footer(&screen)
    );
    mark(&mut app, 1);
    assert_eq!(
        message(&app),
        (
            "job b0000001 marked (1 of 6): mark another".into(),
            Level::Info
        )
    );
    mark(&mut app, 2);
    assert_eq!(message(&app).0, "job b0000002 marked (2 of 6): C compares");
    mark(&mut app, 3);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Jobs 5 · 3 marked"), "{screen}");
    insta::assert_snapshot!("compare_marked_80x24", screen);
    // Marked rows carry a ✓, the others none.
    for line in screen.lines() {
        let marked = ["b0000001", "b0000002", "b0000003"]
            .iter()
            .any(|id| line.contains(id));
        // The list's rows (the monitor's title names a job too).
        if line.starts_with("\"┃") && line.contains("b0000") {
            assert_eq!(line.contains('✓'), marked, "{line}");
        }
    }
    // Compare comes first in the hints once jobs are marked (once the message has gone);
    // they fit 80 columns.
    app.message = None;
    let hints = footer(&render(&mut app, 80, 24));
    assert!(hints.contains("C compare"), "{hints}");
    assert!(hints.contains("space mark"), "{hints}");
    // Space again unmarks.
    mark(&mut app, 2);
    assert_eq!(message(&app).0, "job b0000002 unmarked (2 marked)");
    assert_eq!(app.tabs.jobs.marks, [1, 3].map(fixtures::job_id).to_vec());
    assert!(render(&mut app, 80, 24).contains("Jobs 5 · 2 marked"));
    // All unmarked: the column and the count go.
    mark(&mut app, 1);
    mark(&mut app, 3);
    let screen = render(&mut app, 80, 24);
    assert!(
        !screen.contains("marked ━") && !screen.contains('✓'),
        "{screen}"
    );
}

#[test]
fn at_most_six_are_marked_and_evaluations_never() {
    let mut app = on_jobs();
    // Two more training jobs and an evaluation job.
    for n in [6, 7] {
        app.apply_event(EngineEvent::Job(Arc::new(fixtures::job(
            n,
            1,
            JobStatus::Completed,
            60 * 60 + n as i64,
        ))));
    }
    let mut eval = fixtures::job(8, 1, JobStatus::Completed, 60 * 70);
    eval.task = JobTask::Evaluation(Box::new(EvaluationTask {
        models: vec![fixtures::artifact_id(1), fixtures::artifact_id(2)],
        prompts: None,
        max_new_tokens: 256,
    }));
    app.apply_event(EngineEvent::Job(Arc::new(eval)));
    mark(&mut app, 8);
    assert_eq!(
        message(&app),
        (
            "b0000008 is an evaluation, not a training run".into(),
            Level::Warning
        )
    );
    assert!(app.tabs.jobs.marks.is_empty());
    for n in 1..=6 {
        mark(&mut app, n);
    }
    assert_eq!(app.tabs.jobs.marks.len(), 6);
    mark(&mut app, 7);
    assert_eq!(
        message(&app),
        (
            "at most 6 jobs are compared: unmark one (space)".into(),
            Level::Warning
        )
    );
    assert_eq!(app.tabs.jobs.marks.len(), 6, "the seventh is refused");
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Jobs 8 · 6 marked"), "{screen}");
    insta::assert_snapshot!("compare_mark_limit_80x24", screen);
}

#[test]
fn compare_needs_two_marks() {
    let mut app = on_jobs();
    assert!(chr(&mut app, 'C').is_empty());
    assert!(app.tabs.jobs.compare.is_none());
    assert_eq!(
        message(&app).0,
        "mark 2 to 6 jobs (space) to compare; 0 marked"
    );
    mark(&mut app, 1);
    assert!(chr(&mut app, 'C').is_empty());
    assert!(app.tabs.jobs.compare.is_none());
    assert!(message(&app).0.ends_with("; 1 marked"));
}

#[test]
fn loading_says_what_it_waits_for() {
    let mut app = marked();
    open(&mut app);
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_loading_80x24", screen);
    assert!(screen.contains("loading metrics…"), "{screen}");
    assert!(screen.contains("comparing 3 runs"), "{screen}");
    assert!(
        screen.contains("b0000001 support-chats loading…"),
        "{screen}"
    );
}

#[test]
fn the_view_at_80x24_and_200x50() {
    let mut app = shown();
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_80x24", screen);
    // Drawing again draws the same (the chart comes from the layout's cache).
    assert_eq!(screen, render(&mut app, 80, 24));
    // The legend names each run (and its dataset: they differ), the best starred.
    for want in [
        "Compare 3 runs · loss by step (x → tokens seen)",
        "b0000001 support-chats",
        "b0000002 ★ alpaca-mini",
        "━ training  • validation",
        "★ b0000002 best by lowest validation loss",
    ] {
        assert!(screen.contains(want), "`{want}` missing:\n{screen}");
    }
    // At 80 columns the runs are the table's columns; the header stays as it scrolls.
    assert!(screen.contains("★ b0000002"), "{screen}");
    let hints = footer(&screen);
    for want in ["x x axis", "j scroll", "esc back"] {
        assert!(hints.contains(want), "`{want}` missing: {hints}");
    }
    let screen = render(&mut app, 200, 50);
    insta::assert_snapshot!("compare_200x50", screen);
    // At 200 columns every line fits: the runs are rows, the best starred.
    let header = screen
        .lines()
        .find(|l| l.contains("│run "))
        .unwrap_or_else(|| panic!("no runs-as-rows header:\n{screen}"));
    for want in [
        "status",
        "dataset",
        "learning_rate",
        "lora_rank",
        "cost",
        "duration",
    ] {
        assert!(header.contains(want), "`{want}` missing: {header}");
    }
    assert!(
        screen.lines().any(|l| l.contains("│★ b0000002  completed")),
        "{screen}"
    );
    assert!(screen.contains("best val ★"), "{screen}");
    assert!(screen.contains("14/20"), "{screen}");
}

#[test]
fn the_table_scrolls_under_its_header() {
    let mut app = shown();
    let first = render(&mut app, 80, 24);
    assert!(first.contains("status"), "{first}");
    for _ in 0..3 {
        chr(&mut app, 'j');
    }
    let screen = render(&mut app, 80, 24);
    assert_eq!(view(&app).scroll, 3);
    assert!(!screen.contains("│status"), "{screen}");
    assert!(screen.contains("★ b0000002"), "the header stays:\n{screen}");
    // As far as the lines go, no further.
    chr(&mut app, 'G');
    render(&mut app, 80, 24);
    let end = view(&app).scroll;
    chr(&mut app, 'j');
    render(&mut app, 80, 24);
    assert_eq!(view(&app).scroll, end);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("duration"), "{screen}");
    chr(&mut app, 'g');
    assert_eq!(view(&app).scroll, 0);
}

#[test]
fn x_switches_between_step_tokens_and_elapsed_time() {
    let mut app = shown();
    // The tick labels: the line under the x axis.
    let ticks = |screen: &str| {
        let lines: Vec<&str> = screen.lines().collect();
        let axis = lines.iter().position(|l| l.contains("└────")).unwrap();
        lines[axis + 1].to_string()
    };
    let step = render(&mut app, 80, 24);
    assert!(step.contains("loss by step"), "{step}");
    assert!(ticks(&step).contains(" 451 "), "{}", ticks(&step));
    assert_eq!(view(&app).axis, XAxis::Step);
    chr(&mut app, 'x');
    assert_eq!(view(&app).axis, XAxis::Tokens);
    let tokens = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_tokens_80x24", tokens);
    assert!(
        tokens.contains("loss by tokens seen (x → elapsed)"),
        "{tokens}"
    );
    // Job 2 saw ~2,400 tokens/s for 900 steps of 4 s: about 8.6M tokens.
    assert!(ticks(&tokens).ends_with("8.6M┃\""), "{}", ticks(&tokens));
    chr(&mut app, 'x');
    assert_eq!(view(&app).axis, XAxis::Time);
    let time = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_elapsed_80x24", time);
    assert!(time.contains("loss by elapsed (x → step)"), "{time}");
    // Job 2's last point is 60 s after its start plus 900 steps of 4 s: 1h01m.
    assert!(ticks(&time).ends_with("1h01m┃\""), "{}", ticks(&time));
    chr(&mut app, 'x');
    assert_eq!(view(&app).axis, XAxis::Step);
    assert_ne!(ticks(&step), ticks(&time));
}

#[test]
fn every_theme_gives_each_run_its_own_colour() {
    for (name, _) in BUILTIN {
        let mut app = shown();
        let theme = Theme::builtin(name).unwrap();
        app.set_theme(theme.clone());
        insta::assert_snapshot!(
            format!("compare_{name}_80x24"),
            render_styled(&mut app, 80, 24)
        );
        // Each run's id in the legend is drawn in its own colour, none the background's.
        let colors: Vec<Color> = ["b0000001", "b0000002", "b0000003"]
            .iter()
            .map(|id| fg_of(&mut app, 80, 24, &format!("• {id}")))
            .collect();
        assert_eq!(colors, theme.run_colors()[..3].to_vec(), "{name}");
        for c in &colors {
            assert_ne!(*c, theme.background, "{name}");
        }
        // And the chart draws in each of them.
        let drawn = chart_colors(&mut app, 80, 24);
        for c in &colors {
            assert!(drawn.contains(c), "{name}: {c:?} not drawn in the chart");
        }
    }
}

/// The colour of the first cell of `text` on the screen (after its `• `).
fn fg_of(app: &mut App, w: u16, h: u16, text: &str) -> Color {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let chars: Vec<char> = text.chars().collect();
    for y in 0..h {
        for x in 0..w.saturating_sub(chars.len() as u16) {
            if chars
                .iter()
                .enumerate()
                .all(|(i, c)| buf[(x + i as u16, y)].symbol() == c.to_string())
            {
                return buf[(x + 2, y)].fg;
            }
        }
    }
    panic!("`{text}` is not on the screen");
}

/// The colours of the braille and dot cells on the screen.
fn chart_colors(app: &mut App, w: u16, h: u16) -> Vec<Color> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let c = &buf[(x, y)];
            let ch = c.symbol().chars().next().unwrap_or(' ');
            if ('\u{2801}'..='\u{28ff}').contains(&ch) && !out.contains(&c.fg) {
                out.push(c.fg);
            }
        }
    }
    out
}

#[test]
fn errors_are_shown_with_the_engines_message() {
    let mut app = marked();
    let request = open(&mut app);
    app.apply_outcome(Outcome::RunsCompared {
        request,
        result: Err(ApiError::invalid(
            "ids",
            "job b0000003 is an evaluation, not a training run (`jobs show` shows its comparison)",
        )),
    });
    answer_metrics(&mut app, request, 1);
    answer_metrics(&mut app, request, 2);
    app.apply_outcome(Outcome::RunMetrics {
        request,
        id: fixtures::job_id(3),
        result: Err(ApiError::unavailable("the engine is restarting")),
    });
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_error_80x24", screen);
    assert!(screen.contains("could not compare the runs:"), "{screen}");
    assert!(screen.contains("job b0000003 is an evaluation"), "{screen}");
    assert!(
        screen.contains("✗ metrics: the engine is restarting"),
        "{screen}"
    );
    // The runs that loaded are still drawn.
    assert!(!screen.contains("loading metrics…"), "{screen}");
    // Every run's metrics failing says why in the chart.
    let mut app = marked();
    let request = open(&mut app);
    for n in [1, 2, 3] {
        app.apply_outcome(Outcome::RunMetrics {
            request,
            id: fixtures::job_id(n),
            result: Err(ApiError::unavailable("the engine is restarting")),
        });
    }
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("metrics unavailable: the engine is restarting"),
        "{screen}"
    );
}

#[test]
fn stale_answers_are_dropped() {
    let mut app = marked();
    let first = open(&mut app);
    // Esc leaves the view, the marks stay; C opens it again with a new request.
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.jobs.compare.is_none());
    assert_eq!(app.tabs.jobs.marks.len(), 3);
    assert!(render(&mut app, 80, 24).contains("Jobs 5 · 3 marked"));
    let second = open(&mut app);
    assert_ne!(first, second);
    // The first view's answers change nothing.
    answer_comparison(&mut app, first, fixtures::comparison());
    answer_metrics(&mut app, first, 1);
    assert!(view(&app).comparison.ready().is_none());
    assert_eq!(view(&app).runs[0].metrics, Metrics::Loading);
    // Nor does an answer for a run the view does not hold.
    app.apply_outcome(Outcome::RunMetrics {
        request: second,
        id: fixtures::job_id(5),
        result: Ok(fixtures::compared_metrics(1)),
    });
    assert!(view(&app).runs.iter().all(|r| r.points.points().is_empty()));
    // The second view's answers are shown; a repeated one is ignored.
    answer_comparison(&mut app, second, fixtures::comparison());
    answer_metrics(&mut app, second, 1);
    assert!(view(&app).comparison.ready().is_some());
    assert_eq!(view(&app).runs[0].metrics, Metrics::Ready);
    assert_eq!(view(&app).runs[0].points.points().len(), 405);
    app.apply_outcome(Outcome::RunMetrics {
        request: second,
        id: fixtures::job_id(1),
        result: Ok(Vec::new()),
    });
    assert_eq!(view(&app).runs[0].points.points().len(), 405);
}

#[test]
fn live_points_extend_a_running_run_without_asking_again() {
    let mut app = marked();
    let request = open(&mut app);
    let job = fixtures::job_id(1);
    let start = fixtures::compared_metrics(1)
        .last()
        .map(|p| p.timestamp)
        .unwrap();
    let more = |from: u64, n: u64| -> Vec<MetricsPoint> {
        fixtures::run_metrics(job, from + n, start, 6.0, 1800.0, 0.6)
            .into_iter()
            .skip(from as usize)
            .collect()
    };
    // A point that comes while the stored ones load is kept over them.
    let fx = app.apply_event(EngineEvent::Metrics {
        job_id: job,
        points: Arc::new(more(405, 1)),
    });
    assert!(fx.is_empty(), "no engine call: {fx:?}");
    answer_metrics(&mut app, request, 1);
    assert_eq!(view(&app).runs[0].points.points().len(), 406);
    let fx = app.apply_event(EngineEvent::Metrics {
        job_id: job,
        points: Arc::new(more(406, 4)),
    });
    assert!(fx.is_empty(), "no engine call: {fx:?}");
    assert_eq!(view(&app).runs[0].points.points().len(), 410);
    assert_eq!(view(&app).runs[0].points.points().last().unwrap().step, 410);
    // Drawing asks nothing either.
    render(&mut app, 80, 24);
    render(&mut app, 200, 50);
}

#[test]
fn esc_leaves_and_the_view_survives_other_tabs() {
    let mut app = shown();
    chr(&mut app, 'x');
    // Another tab and back: the view is as it was.
    chr(&mut app, '1');
    assert_eq!(app.tab, Tab::Datasets);
    chr(&mut app, '3');
    assert_eq!(view(&app).axis, XAxis::Tokens);
    // The list's keys do nothing under the view; `c` does not cancel.
    assert!(chr(&mut app, 'c').is_empty());
    assert!(app.overlay.is_none());
    assert!(key(&mut app, KeyCode::Char(' ')).is_empty());
    assert_eq!(app.tabs.jobs.marks.len(), 3);
    // ctrl-r asks again: everything, the comparison and each run's curves.
    let fx = ctrl(&mut app, 'r');
    assert_eq!(fx.first(), Some(&Effect::Reload));
    assert!(matches!(fx.get(1), Some(Effect::CompareRuns { .. })));
    assert_eq!(fx.len(), 2 + 3);
    assert_eq!(view(&app).axis, XAxis::Tokens, "the axis stays");
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.jobs.compare.is_none());
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("Jobs 5 · 3 marked"), "{screen}");
}

#[test]
fn help_lists_the_keys() {
    let mut app = on_jobs();
    chr(&mut app, '?');
    let screen = render(&mut app, 100, 50);
    assert!(
        screen.contains("mark / unmark the job for the Compare view (up to 6)"),
        "{screen}"
    );
    assert!(screen.contains("compare the marked jobs"), "{screen}");
    key(&mut app, KeyCode::Esc);
    let mut app = shown();
    chr(&mut app, '?');
    assert!(matches!(app.overlay, Some(Overlay::Help { .. })));
    let screen = render(&mut app, 100, 50);
    insta::assert_snapshot!("compare_help", screen);
    for want in [
        "Compare view (the marked runs side by side)",
        "x axis: step, tokens seen, elapsed time",
        "back to the list; the marks stay",
    ] {
        assert!(screen.contains(want), "`{want}` missing:\n{screen}");
    }
}

#[test]
fn six_runs_fit_80x24() {
    let mut app = on_jobs();
    for n in [6, 7] {
        app.apply_event(EngineEvent::Job(Arc::new(fixtures::job(
            n,
            2,
            JobStatus::Completed,
            60 * 60 + n as i64,
        ))));
    }
    for n in [1, 2, 3, 5, 6, 7] {
        mark(&mut app, n);
    }
    let fx = chr(&mut app, 'C');
    let Some(Effect::CompareRuns { request, ids }) = fx.first() else {
        panic!("expected the comparison to be asked for, got {fx:?}");
    };
    assert_eq!(ids.len(), 6);
    let request = *request;
    // The fixture comparison, with three more runs like its second.
    let mut c = fixtures::comparison();
    for n in [5, 6, 7] {
        let mut r = c.runs[1].clone();
        r.id = fixtures::job_id(n);
        r.evaluation = None;
        c.runs.push(r);
    }
    answer_comparison(&mut app, request, c);
    for (k, n) in [1u128, 2, 3, 5, 6, 7].into_iter().enumerate() {
        let job = fixtures::job_id(n);
        let start = fixtures::now() - chrono::Duration::hours(2);
        app.apply_outcome(Outcome::RunMetrics {
            request,
            id: job,
            result: Ok(fixtures::run_metrics(
                job,
                300 + 100 * k as u64,
                start,
                4.0 + k as f64,
                2000.0,
                0.3 + 0.1 * k as f64,
            )),
        });
    }
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("compare_six_runs_80x24", screen);
    // Every run is in the legend, with the key.
    for n in [1, 2, 3, 5, 6, 7] {
        assert!(
            screen.contains(&format!("━• b000000{n}")),
            "run {n} missing:\n{screen}"
        );
    }
    assert!(screen.contains("━ training  • validation"), "{screen}");
    // Each in its own colour.
    let colors: Vec<Color> = [1, 2, 3, 5, 6, 7]
        .iter()
        .map(|n| fg_of(&mut app, 80, 24, &format!("• b000000{n}")))
        .collect();
    let theme = Theme::default();
    assert_eq!(colors, theme.run_colors().to_vec());
}

#[test]
fn tiny_terminals_draw_without_panicking() {
    for mut app in [shown(), {
        let mut a = marked();
        open(&mut a);
        a
    }] {
        for (w, h) in [(20, 5), (30, 8), (40, 10), (60, 15), (80, 12)] {
            let screen = render(&mut app, w, h);
            assert_eq!(screen, render(&mut app, w, h), "{w}x{h}");
        }
        chr(&mut app, 'x');
        chr(&mut app, 'x');
        render(&mut app, 24, 6);
    }
}

#[test]
fn opened_from_the_monitor_back_goes_to_the_monitor() {
    let mut app = marked();
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        app.tabs.jobs.browse.focus,
        brightrun_tui::app::Focus::Detail
    );
    open(&mut app);
    let hints = footer(&render(&mut app, 80, 24));
    assert!(hints.contains("x x axis"), "{hints}");
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.jobs.compare.is_none());
    assert_eq!(
        app.tabs.jobs.browse.focus,
        brightrun_tui::app::Focus::Detail
    );
}

/// `y` switches the chart between the loss and, when a run trained on preferences, its reward
/// margin and reward accuracy; SFT runs alone keep the loss, and the title offers nothing more.
#[test]
fn y_charts_the_rewards_of_preference_runs_and_only_then() {
    let mut app = shown();
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("loss by step"), "{screen}");
    assert!(!screen.contains("reward margin"), "{screen}");
    chr(&mut app, 'y');
    assert_eq!(view(&app).metric, YMetric::Loss, "no rewards to show");

    // Run 2 trained with DPO: its points carry rewards.
    let mut app = marked();
    let request = open(&mut app);
    answer_comparison(&mut app, request, fixtures::comparison());
    for n in [1, 3] {
        answer_metrics(&mut app, request, n);
    }
    let mut points = fixtures::compared_metrics(2);
    for (i, p) in points.iter_mut().enumerate() {
        p.preference = Some(PreferenceMetrics {
            reward_margin: Some(0.05 * i as f64),
            reward_accuracy: Some((0.5 + 0.02 * i as f64).min(1.0)),
            ..PreferenceMetrics::default()
        });
    }
    app.apply_outcome(Outcome::RunMetrics {
        request,
        id: fixtures::job_id(2),
        result: Ok(points),
    });
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("(y → reward margin)"), "{screen}");
    chr(&mut app, 'y');
    assert_eq!(view(&app).metric, YMetric::RewardMargin);
    let screen = render(&mut app, 120, 40);
    assert!(screen.contains("reward margin by step"), "{screen}");
    assert!(
        !screen.contains("• validation"),
        "no validation dots: {screen}"
    );
    insta::assert_snapshot!("compare_reward_margin_120x40", screen);
    chr(&mut app, 'y');
    assert_eq!(view(&app).metric, YMetric::RewardAccuracy);
    assert!(render(&mut app, 120, 40).contains("reward accuracy by step"));
    // The third press returns to the loss.
    chr(&mut app, 'y');
    assert_eq!(view(&app).metric, YMetric::Loss);
}
