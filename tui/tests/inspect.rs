//! The Datasets tab's Inspect view: an example token by token with a base model chosen with
//! Configure's picker, the keys that move between examples, lines and models, the exact
//! counts, loading and errors; in every theme, trained and masked tokens look apart.

mod common;

use brightrun_api::domain::*;
use brightrun_api::{ApiError, InspectAt};
use brightrun_tui::app::{Overlay, PickTarget, PromptKind};
use brightrun_tui::fixtures;
use brightrun_tui::theme::{BUILTIN, Theme};
use brightrun_tui::{App, Effect, Level, Outcome};
use common::*;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Modifier, Style};
use std::collections::BTreeMap;

const MODEL: &str = "mistralai/Mistral-7B-v0.1";

/// What the view asked the engine for an example.
#[derive(Debug, PartialEq)]
struct Asked {
    request: u64,
    model: String,
    at: InspectAt,
    max_seq_length: Option<u32>,
}

fn asked_example(fx: &[Effect]) -> Asked {
    match fx {
        [
            Effect::InspectExample {
                request,
                dataset,
                model,
                at,
                max_seq_length,
            },
        ] => {
            assert_eq!(*dataset, fixtures::dataset_id(1));
            Asked {
                request: *request,
                model: model.clone(),
                at: *at,
                max_seq_length: *max_seq_length,
            }
        }
        other => panic!("expected an example to be asked for, got {other:?}"),
    }
}

/// The fixture app with support-chats (ready, the oldest: the last row) selected.
fn on_support_chats() -> App {
    let mut app = app();
    chr(&mut app, 'G');
    assert_eq!(
        app.selected_dataset().unwrap().id,
        fixtures::dataset_id(1),
        "support-chats is selected"
    );
    app
}

/// `i`, then enter on the picker's default: the view opens and asks for the first example.
fn open(app: &mut App) -> Asked {
    assert!(chr(app, 'i').is_empty());
    match &app.overlay {
        Some(Overlay::Pick {
            target,
            options,
            selected,
            ..
        }) => {
            assert_eq!(*target, PickTarget::InspectModel(fixtures::dataset_id(1)));
            // The Configure form's base model is chosen.
            assert!(
                options[*selected].starts_with(MODEL),
                "{}",
                options[*selected]
            );
        }
        other => panic!("expected the base-model picker, got {other:?}"),
    }
    let asked = asked_example(&key(app, KeyCode::Enter));
    assert!(app.overlay.is_none());
    assert!(app.tabs.datasets.inspect.is_some());
    asked
}

fn answer(app: &mut App, request: u64, x: ExampleInspection) {
    app.apply_outcome(Outcome::InspectExample {
        request,
        result: Ok(Box::new(x)),
    });
}

/// The view open on support-chats' first example.
fn shown() -> (App, Asked) {
    let mut app = on_support_chats();
    let asked = open(&mut app);
    assert_eq!(
        asked,
        Asked {
            request: asked.request,
            model: MODEL.into(),
            at: InspectAt::First,
            max_seq_length: Some(2048),
        }
    );
    answer(
        &mut app,
        asked.request,
        fixtures::example_inspection(MODEL, 0, 2048, false),
    );
    (app, asked)
}

/// The cells whose text is `word` on the screen, by their first cell's style.
fn style_of(app: &mut App, w: u16, h: u16, word: &str) -> Style {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer();
    let chars: Vec<char> = word.chars().collect();
    for y in 0..h {
        for x in 0..w.saturating_sub(chars.len() as u16) {
            if chars
                .iter()
                .enumerate()
                .all(|(i, c)| buf[(x + i as u16, y)].symbol() == c.to_string())
            {
                let c = &buf[(x, y)];
                return Style::new().fg(c.fg).add_modifier(c.modifier);
            }
        }
    }
    panic!("`{word}` is not on the screen");
}

#[test]
fn the_example_in_every_theme() {
    for (name, _) in BUILTIN {
        let (mut app, _) = shown();
        app.set_theme(Theme::builtin(name).unwrap());
        for (w, h) in [(80, 24), (200, 50)] {
            insta::assert_snapshot!(
                format!("inspect_{name}_{w}x{h}"),
                render_styled(&mut app, w, h)
            );
            // Whatever the colours, a trained token is bold and underlined, a masked one dim.
            let trained = style_of(&mut app, w, h, "tracking");
            let masked = style_of(&mut app, w, h, "arrived");
            assert!(
                trained
                    .add_modifier
                    .contains(Modifier::BOLD | Modifier::UNDERLINED),
                "{name}: {trained:?}"
            );
            assert!(masked.add_modifier.contains(Modifier::DIM), "{name}");
            assert_ne!(trained.add_modifier, masked.add_modifier, "{name}");
        }
    }
}

#[test]
fn the_view_says_position_tokens_specials_and_summary() {
    let (mut app, _) = shown();
    let screen = render(&mut app, 120, 40);
    for want in [
        "Inspect support-chats · example 0 of 1,237 (line 1) · mistralai/Mistral-7B-v0.1",
        "⟨<s>⟩[INST] You are a helpful support agent.↵",
        "My order:→#1234 has not arrived.",
        "Sorry to hear that!",
        "⟨</s>⟩",
        "trained (",
        "not truncated",
        // The warning, with its code.
        "⚠ the chat template has no {% generation %} markers",
        "(no_generation_markers)",
        "tokenizer: chat template · no generation markers · bos <s> · eos </s>",
    ] {
        assert!(screen.contains(want), "`{want}` missing:\n{screen}");
    }
    // Nothing from the list shows under the view.
    assert!(!screen.contains("alpaca-mini"), "{screen}");
    // The hints are the view's, within 80 columns.
    let screen = render(&mut app, 80, 24);
    let footer = screen.lines().last().unwrap();
    for want in ["n next", "/ line", "m model", "s counts"] {
        assert!(footer.contains(want), "`{want}` missing: {footer}");
    }
}

#[test]
fn a_truncated_example_shows_the_cut() {
    let mut app = on_support_chats();
    let asked = open(&mut app);
    answer(
        &mut app,
        asked.request,
        fixtures::example_inspection(MODEL, 0, 64, true),
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("truncated at 64:"), "{screen}");
    assert!(screen.contains("tokens lost"), "{screen}");
    // To the end: the cut is a rule across the view, what follows is not trained.
    chr(&mut app, 'G');
    insta::assert_snapshot!("inspect_truncated_80x24", render(&mut app, 80, 24));
    let screen = render(&mut app, 80, 24);
    let rule = screen
        .lines()
        .find(|l| l.contains("✂ cut at max_seq_length 64: what follows is not trained"))
        .unwrap_or_else(|| panic!("no cut:\n{screen}"));
    assert!(rule.contains("──────"), "{rule}");
    assert_eq!(
        style_of(&mut app, 80, 24, "Saturday").add_modifier,
        Modifier::DIM,
        "past the cut nothing is trained"
    );
    // g goes back up; j/k scroll by a row, PgDn/PgUp by a page (the rows shown, but one).
    let scroll = |app: &App| app.tabs.datasets.inspect.as_ref().unwrap().scroll;
    chr(&mut app, 'g');
    assert_eq!(scroll(&app), 0);
    render(&mut app, 80, 14);
    chr(&mut app, 'j');
    assert_eq!(scroll(&app), 1);
    key(&mut app, KeyCode::PageDown);
    render(&mut app, 80, 14);
    assert_eq!(scroll(&app), 1 + 9);
    chr(&mut app, 'k');
    key(&mut app, KeyCode::PageUp);
    render(&mut app, 80, 14);
    assert_eq!(scroll(&app), 0);
    // G goes as far as the text goes, no further.
    chr(&mut app, 'G');
    render(&mut app, 80, 14);
    let end = scroll(&app);
    chr(&mut app, 'j');
    render(&mut app, 80, 14);
    assert_eq!(scroll(&app), end);
}

#[test]
fn loading_says_what_is_happening_and_an_earlier_answer_is_ignored() {
    let mut app = on_support_chats();
    let first = open(&mut app);
    insta::assert_snapshot!("inspect_loading_80x24", render(&mut app, 80, 24));
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("rendering the first example of support-chats with"),
        "{screen}"
    );
    // n asks for the next before the first came: the first's answer is dropped.
    let second = asked_example(&chr(&mut app, 'n'));
    assert_eq!(second.at, InspectAt::Index(1));
    assert_ne!(second.request, first.request);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("rendering example 1 with"), "{screen}");
    answer(
        &mut app,
        first.request,
        fixtures::example_inspection(MODEL, 0, 2048, false),
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("rendering example 1 with"), "{screen}");
    answer(
        &mut app,
        second.request,
        fixtures::example_inspection(MODEL, 1, 2048, false),
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("example 1 of 1,237 (line 2)"), "{screen}");
}

#[test]
fn an_error_is_shown_in_the_view() {
    let mut app = on_support_chats();
    let asked = open(&mut app);
    app.apply_outcome(Outcome::InspectExample {
        request: asked.request,
        result: Err(ApiError::unavailable(
            "mistralai/Mistral-7B-v0.1 is not in the Hugging Face cache and the engine is \
             offline: download it first (huggingface-cli download mistralai/Mistral-7B-v0.1)",
        )
        .with_details("OSError: We couldn't connect to 'https://huggingface.co'\n\u{1b}[31mretry\u{1b}[0m later")),
    });
    insta::assert_snapshot!("inspect_error_80x24", render(&mut app, 80, 24));
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("could not render the example:"), "{screen}");
    assert!(
        screen.contains("  mistralai/Mistral-7B-v0.1 is not in the Hugging Face cache"),
        "{screen}"
    );
    assert!(screen.contains("OSError: We couldn't connect"), "{screen}");
    // The view stays usable: another example is asked for.
    let next = asked_example(&chr(&mut app, 'n'));
    assert_eq!(next.at, InspectAt::Index(1));
}

#[test]
fn next_previous_and_a_line() {
    let (mut app, _) = shown();
    // At the first example, p says so.
    assert!(chr(&mut app, 'p').is_empty());
    assert_eq!(
        app.message.as_ref().unwrap().text,
        "this is the first example"
    );
    let next = asked_example(&chr(&mut app, 'n'));
    assert_eq!((next.at, next.model.as_str()), (InspectAt::Index(1), MODEL));
    answer(
        &mut app,
        next.request,
        fixtures::example_inspection(MODEL, 1, 2048, false),
    );
    let previous = asked_example(&chr(&mut app, 'p'));
    assert_eq!(previous.at, InspectAt::Index(0));
    answer(
        &mut app,
        previous.request,
        fixtures::example_inspection(MODEL, 0, 2048, false),
    );

    // `/` asks for a line; something else is said in the prompt, which stays.
    assert!(chr(&mut app, '/').is_empty());
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Prompt {
            kind: PromptKind::InspectLine(_),
            ..
        })
    ));
    insta::assert_snapshot!("inspect_line_prompt_80x24", render(&mut app, 80, 24));
    typed(&mut app, "abc");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    match &app.overlay {
        Some(Overlay::Prompt {
            kind: PromptKind::InspectLine(_),
            hint: Some(hint),
            ..
        }) => assert!(hint.contains("`abc` is not a line number"), "{hint}"),
        other => panic!("the prompt should stay: {other:?}"),
    }
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "942");
    let line = asked_example(&key(&mut app, KeyCode::Enter));
    assert_eq!(line.at, InspectAt::Line(942));
    // The answer says which example that is: n goes on from it.
    answer(
        &mut app,
        line.request,
        fixtures::example_inspection(MODEL, 918, 2048, false),
    );
    assert_eq!(asked_example(&chr(&mut app, 'n')).at, InspectAt::Index(919));
    // #N is an example's number; one past the end is refused before asking.
    chr(&mut app, '/');
    typed(&mut app, "#5000");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.message.as_ref().unwrap().level, Level::Warning);
    chr(&mut app, '/');
    typed(&mut app, "#7");
    assert_eq!(
        asked_example(&key(&mut app, KeyCode::Enter)).at,
        InspectAt::Index(7)
    );
}

#[test]
fn m_changes_the_model_with_configures_picker() {
    let (mut app, _) = shown();
    let next = asked_example(&chr(&mut app, 'n'));
    answer(
        &mut app,
        next.request,
        fixtures::example_inspection(MODEL, 1, 2048, false),
    );
    assert!(chr(&mut app, 'm').is_empty());
    let (options, selected) = match &app.overlay {
        Some(Overlay::Pick {
            options,
            selected,
            target: PickTarget::InspectModel(_),
            ..
        }) => (options.clone(), *selected),
        other => panic!("expected the picker, got {other:?}"),
    };
    assert!(options[selected].starts_with(MODEL));
    assert_eq!(options.last().unwrap(), "(type another id…)");
    insta::assert_snapshot!("inspect_model_picker_80x24", render(&mut app, 80, 24));
    // The same list as Configure's base_model picker.
    assert_eq!(options.len(), app.configure.base_models.len() + 1);
    // Filter to another model and take it: the same example, with it.
    chr(&mut app, '/');
    typed(&mut app, "qwen2.5-0.5b");
    let asked = asked_example(&key(&mut app, KeyCode::Enter));
    assert_eq!(
        (asked.model.as_str(), asked.at),
        ("Qwen/Qwen2.5-0.5B", InspectAt::Index(1))
    );
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("rendering example 1 with Qwen/Qwen2.5-0.5B…"),
        "{screen}"
    );

    // "type another id…" asks for it, from what the filter held.
    chr(&mut app, 'm');
    chr(&mut app, '/');
    typed(&mut app, "my-org/");
    key(&mut app, KeyCode::Down);
    while !matches!(
        &app.overlay,
        Some(Overlay::Pick { options, selected, .. }) if options[*selected] == "(type another id…)"
    ) {
        key(&mut app, KeyCode::Down);
    }
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(
        &app.overlay,
        Some(Overlay::Prompt {
            kind: PromptKind::InspectModel(_),
            ..
        })
    ));
    typed(&mut app, "support-7b");
    let asked = asked_example(&key(&mut app, KeyCode::Enter));
    assert_eq!(asked.model, "my-org/support-7b");
}

#[test]
fn s_shows_the_exact_counts_and_the_detail_keeps_them() {
    let (mut app, _) = shown();
    let sort = (app.dataset_list.sort_col, app.dataset_list.sort_desc);
    let fx = chr(&mut app, 's');
    let request = match fx.as_slice() {
        [
            Effect::InspectStats {
                request,
                dataset,
                model,
                max_seq_length,
            },
        ] => {
            assert_eq!(
                (*dataset, model.as_str(), *max_seq_length),
                (fixtures::dataset_id(1), MODEL, Some(2048))
            );
            *request
        }
        other => panic!("expected the counts to be asked for, got {other:?}"),
    };
    // `s` did not sort the list underneath.
    assert_eq!(
        (app.dataset_list.sort_col, app.dataset_list.sort_desc),
        sort
    );
    insta::assert_snapshot!("inspect_stats_loading_80x24", render(&mut app, 80, 24));
    app.apply_outcome(Outcome::InspectStats {
        request,
        dataset: fixtures::dataset_id(1),
        result: Ok(Box::new(fixtures::dataset_inspection(MODEL, 2048))),
    });
    insta::assert_snapshot!("inspect_stats_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("inspect_stats_200x50", render(&mut app, 200, 50));
    let screen = render(&mut app, 200, 50);
    for want in [
        "Exact counts (s hides)",
        "509,844",
        "201,220 (39%)",
        "2 examples, 1,004 tokens lost",
        "93% of packed rows filled",
        "3 records have no assistant turn",
    ] {
        assert!(screen.contains(want), "`{want}` missing:\n{screen}");
    }
    // s hides them and shows them again without asking: they are known.
    chr(&mut app, 's');
    assert!(!render(&mut app, 200, 50).contains("Exact counts"));
    assert!(chr(&mut app, 's').is_empty());
    assert!(render(&mut app, 200, 50).contains("509,844"));

    // Back in the list, the dataset's detail shows them; drawing asks nothing.
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.datasets.inspect.is_none());
    key(&mut app, KeyCode::Enter);
    let screen = render(&mut app, 100, 40);
    assert!(
        screen.contains("Exact counts  with mistralai/Mistral-7B-v0.1, max_seq_length 2,048"),
        "{screen}"
    );
    insta::assert_snapshot!("dataset_detail_exact_counts_100x40", screen);
}

#[test]
fn counts_that_come_after_the_view_moved_on_are_kept_but_not_shown() {
    let (mut app, _) = shown();
    let fx = chr(&mut app, 's');
    let Some(Effect::InspectStats { request, .. }) = fx.first().cloned() else {
        panic!("{fx:?}")
    };
    // Another model meanwhile: the counts panel waits for that model's.
    chr(&mut app, 'm');
    chr(&mut app, '/');
    typed(&mut app, "qwen2.5-0.5b");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(fx.len(), 2, "{fx:?}");
    app.apply_outcome(Outcome::InspectStats {
        request,
        dataset: fixtures::dataset_id(1),
        result: Ok(Box::new(fixtures::dataset_inspection(MODEL, 2048))),
    });
    let screen = render(&mut app, 200, 50);
    assert!(
        screen.contains("counting every example of support-chats"),
        "{screen}"
    );
    assert!(screen.contains("Qwen/Qwen2.5-0.5B…"), "{screen}");
    assert!(!screen.contains("509,844"), "{screen}");
    // An error for it shows in the panel.
    let Some(Effect::InspectStats { request, .. }) = fx.last().cloned() else {
        panic!("{fx:?}")
    };
    app.apply_outcome(Outcome::InspectStats {
        request,
        dataset: fixtures::dataset_id(1),
        result: Err(ApiError::unavailable(
            "the trainer's environment is being built",
        )),
    });
    let screen = render(&mut app, 200, 50);
    assert!(screen.contains("could not count:"), "{screen}");
    assert!(
        screen.contains("the trainer's environment is being"),
        "{screen}"
    );
    // The first model's counts were kept for the detail.
    key(&mut app, KeyCode::Esc);
    assert_eq!(
        app.tabs.datasets.counts[&fixtures::dataset_id(1)][0].base_model,
        MODEL
    );
}

#[test]
fn esc_goes_back_and_the_lists_keys_do_nothing_under_the_view() {
    let (mut app, _) = shown();
    let sort = app.dataset_list.sort_desc;
    assert!(chr(&mut app, 'S').is_empty());
    assert!(chr(&mut app, 'x').is_empty());
    assert!(app.overlay.is_none(), "no delete under the view");
    assert_eq!(app.dataset_list.sort_desc, sort);
    // Other tabs and back: the view is kept.
    chr(&mut app, '3');
    chr(&mut app, '1');
    assert!(app.tabs.datasets.inspect.is_some());
    // ? lists the view's keys.
    chr(&mut app, '?');
    let screen = render(&mut app, 100, 40);
    assert!(screen.contains("Inspect view"), "{screen}");
    assert!(screen.contains("next example"), "{screen}");
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.datasets.inspect.is_none());
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("alpaca-mini"), "{screen}");
    // The list's hints offer `i` within 80 columns.
    assert!(
        screen.lines().last().unwrap().contains("i inspect"),
        "{screen}"
    );
}

#[test]
fn only_a_ready_dataset_is_inspected() {
    let mut app = app();
    // The newest is still validating.
    assert_eq!(
        app.selected_dataset().unwrap().status,
        DatasetStatus::Validating
    );
    assert!(chr(&mut app, 'i').is_empty());
    assert!(app.overlay.is_none());
    let m = app.message.as_ref().unwrap();
    assert_eq!(m.level, Level::Warning);
    assert!(
        m.text.contains("once it is validated and ready"),
        "{}",
        m.text
    );
}

#[test]
fn the_view_fits_tiny_terminals_without_panicking() {
    let (mut app, _) = shown();
    chr(&mut app, 's');
    for (w, h) in [(20, 5), (40, 10), (1, 1), (80, 3), (121, 8)] {
        render(&mut app, w, h);
    }
    let mut app = on_support_chats();
    let asked = open(&mut app);
    answer(
        &mut app,
        asked.request,
        fixtures::example_inspection(MODEL, 0, 64, true),
    );
    chr(&mut app, 'G');
    for (w, h) in [(20, 5), (3, 3), (1, 1)] {
        render(&mut app, w, h);
    }
}

#[test]
fn remapped_keys_show_in_the_hints() {
    let mut config = config();
    let mut keys = BTreeMap::new();
    keys.insert("inspect_next".to_string(), "ctrl-n".to_string());
    config.tui.keys = keys;
    let mut app = App::new(fixtures::snapshot(), &config);
    app.set_now(fixtures::now());
    chr(&mut app, 'G');
    open(&mut app);
    let screen = render(&mut app, 100, 24);
    assert!(
        screen.lines().last().unwrap().contains("ctrl-n next"),
        "{screen}"
    );
    assert!(chr(&mut app, 'n').is_empty(), "n no longer moves");
}

#[test]
fn drawing_the_view_reads_only() {
    let (mut app, _) = shown();
    chr(&mut app, 's');
    for (w, h) in [(80, 24), (200, 50), (20, 5)] {
        let area = ratatui::layout::Rect::new(0, 0, w, h);
        app.layout(area);
        let once = |app: &App| {
            let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
            t.draw(|f| app.render(f)).unwrap();
            t.backend().to_string()
        };
        let first = once(&app);
        assert_eq!(first, once(&app), "{w}x{h}");
        assert_eq!(first, render(&mut app, w, h), "{w}x{h}");
    }
}
