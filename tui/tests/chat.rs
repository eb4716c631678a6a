//! The Models tab's Chat view, driven headless through the app: keys in, effects out, the
//! engine's chat events applied as outcomes, the screen rendered and compared.

mod common;

use brightrun_api::chat::{ChatEvent, ChatMessage, ChatRole};
use brightrun_api::ids::ArtifactId;
use brightrun_api::{ApiError, Reason};
use brightrun_tui::tabs::chat::ReplyState;
use brightrun_tui::{Action, App, Effect, Outcome};
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The Models tab with the first model's Chat view open.
fn chat_open() -> (App, ArtifactId) {
    let mut app = app();
    chr(&mut app, '4');
    let id = app.selected_artifact().unwrap().id;
    assert!(chr(&mut app, 'c').is_empty(), "opening asks nothing yet");
    assert_eq!(app.tabs.models.chat, Some(id));
    (app, id)
}

/// Types `text` and presses enter; returns the chat request sent.
fn send(app: &mut App, text: &str) -> (u64, Vec<ChatMessage>, bool) {
    typed(app, text);
    match key(app, KeyCode::Enter).as_slice() {
        [
            Effect::Chat {
                request,
                messages,
                base,
                ..
            },
        ] => (*request, messages.clone(), *base),
        other => panic!("a chat request expected, got {other:?}"),
    }
}

fn event(app: &mut App, request: u64, event: ChatEvent) -> Vec<Effect> {
    app.apply_outcome(Outcome::Chat { request, event })
}

fn started(app: &mut App, request: u64) {
    event(
        app,
        request,
        ChatEvent::Started {
            model: "m".into(),
            base_model: "b".into(),
            device: "cpu".into(),
            load_seconds: 1.25,
            note: None,
        },
    );
}

fn stream(app: &mut App, request: u64, words: &[&str]) {
    for w in words {
        event(
            app,
            request,
            ChatEvent::Delta {
                text: w.to_string(),
            },
        );
    }
}

fn done(app: &mut App, request: u64, tokens: u64) -> Vec<Effect> {
    event(
        app,
        request,
        ChatEvent::Done {
            tokens,
            seconds: 0.42,
            first_token_seconds: Some(0.08),
        },
    )
}

fn with(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
    app.handle_key(KeyEvent::new(code, mods))
}

/// A finished turn and a second one streaming.
fn conversation(app: &mut App) -> u64 {
    let (r1, messages, base) = send(app, "What is the capital of Zubrowka?");
    assert!(!base);
    assert_eq!(
        messages,
        vec![ChatMessage::new(
            ChatRole::User,
            "What is the capital of Zubrowka?"
        )]
    );
    started(app, r1);
    stream(
        app,
        r1,
        &["Lutz", " is", " the", " capital", " of", " Zubrowka."],
    );
    done(app, r1, 7);
    let (r2, messages, _) = send(app, "And its river?");
    assert_eq!(messages.len(), 3, "the whole conversation is sent");
    assert_eq!(
        messages[1],
        ChatMessage::new(ChatRole::Assistant, "Lutz is the capital of Zubrowka.")
    );
    started(app, r2);
    stream(app, r2, &["The", " Lutz", " river", " runs", " through"]);
    r2
}

#[test]
fn a_reply_streams_into_the_conversation() {
    let (mut app, id) = chat_open();
    insta::assert_snapshot!("chat_empty_80x24", render(&mut app, 80, 24));
    let r2 = conversation(&mut app);
    insta::assert_snapshot!("chat_streaming_80x24", render(&mut app, 80, 24));
    // Each delta is drawn as it comes.
    stream(&mut app, r2, &[" the", " old", " town."]);
    assert!(app.needs_redraw());
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("The Lutz river runs through the old town.▌"),
        "{screen}"
    );
    done(&mut app, r2, 9);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("9 tokens in 0.42s"), "{screen}");
    assert!(screen.contains("enter send"), "the hints say how: {screen}");
    insta::assert_snapshot!("chat_done_120x32", render(&mut app, 120, 32));
    let session = &app.tabs.models.chats[&id];
    assert_eq!(session.turns.len(), 2);
    assert!(matches!(
        session.turns[1].adapter.state,
        ReplyState::Done { tokens: 9, .. }
    ));
}

#[test]
fn letters_type_into_the_message_and_esc_keeps_the_conversation() {
    let (mut app, id) = chat_open();
    // Keys bound elsewhere (q quits, 1 shows a tab, ? helps, j moves) type here.
    typed(&mut app, "q1?j: ok");
    assert!(!app.should_quit());
    assert_eq!(app.tab, brightrun_tui::Tab::Models);
    assert!(app.overlay.is_none());
    // alt-enter and ctrl-j start a new line; enter sends both lines.
    with(&mut app, KeyCode::Enter, KeyModifiers::ALT);
    typed(&mut app, "two");
    ctrl(&mut app, 'j');
    typed(&mut app, "three");
    assert_eq!(app.tabs.models.chats[&id].draft(), "q1?j: ok\ntwo\nthree");
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("q1?j: ok"), "{screen}");
    let (r, messages, _) = {
        match key(&mut app, KeyCode::Enter).as_slice() {
            [
                Effect::Chat {
                    request, messages, ..
                },
            ] => (*request, messages.clone(), ()),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(messages[0].content, "q1?j: ok\ntwo\nthree");
    done(&mut app, r, 0);
    // Pasted text keeps its newlines, loses its escapes.
    act(&mut app, Action::Paste("pasted\n\u{1b}[31mline".into()));
    assert_eq!(app.tabs.models.chats[&id].draft(), "pasted\nline");
    // Esc goes back to the list; the conversation and the draft are kept.
    key(&mut app, KeyCode::Esc);
    assert!(app.tabs.models.chat.is_none());
    let screen = render(&mut app, 120, 24);
    assert!(
        screen.contains("c chat"),
        "the list's hints offer it: {screen}"
    );
    chr(&mut app, 'c');
    let session = &app.tabs.models.chats[&id];
    assert_eq!(session.turns.len(), 1);
    assert_eq!(session.draft(), "pasted\nline");
    // Tab still goes to the next tab; the view is open again on coming back.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, brightrun_tui::Tab::Costs);
    chr(&mut app, '4');
    assert_eq!(app.tabs.models.chat, Some(id));
}

#[test]
fn the_base_model_answers_beside_the_adapter() {
    let (mut app, id) = chat_open();
    let (r1, _, _) = send(&mut app, "Which city is the capital of Zubrowka?");
    stream(&mut app, r1, &["Lutz", " is", " the", " capital."]);
    // ctrl-t while the adapter answers: the base is asked once it has ended.
    assert!(ctrl(&mut app, 't').is_empty());
    let fx = done(&mut app, r1, 4);
    let (r_base, messages) = match fx.as_slice() {
        [
            Effect::Chat {
                request,
                model,
                messages,
                base: true,
            },
        ] => {
            assert_eq!(*model, id);
            (*request, messages.clone())
        }
        other => panic!("the base's request expected: {other:?}"),
    };
    assert_eq!(
        messages,
        vec![ChatMessage::new(
            ChatRole::User,
            "Which city is the capital of Zubrowka?"
        )]
    );
    started(&mut app, r_base);
    stream(
        &mut app,
        r_base,
        &[
            "I'm",
            " not",
            " aware",
            " of",
            " a",
            " country",
            " called",
            " Zubrowka.",
        ],
    );
    done(&mut app, r_base, 9);
    let wide = render(&mut app, 120, 32);
    insta::assert_snapshot!("chat_beside_120x32", wide);
    let row = wide
        .lines()
        .find(|l| l.contains("adapter ·"))
        .expect("the adapter's label");
    assert!(row.contains("│ base ·"), "side by side: {wide}");
    let narrow = render(&mut app, 80, 24);
    insta::assert_snapshot!("chat_beside_80x24", narrow);
    assert!(
        narrow.lines().any(|l| l.contains("│adapter ·"))
            && narrow.lines().any(|l| l.contains("│base ·")),
        "stacked, each labelled: {narrow}"
    );
    // The next turn asks both, the base after the adapter, with the adapter's conversation.
    let (r3, _, _) = send(&mut app, "Thanks");
    let fx = done(&mut app, r3, 1);
    match fx.as_slice() {
        [
            Effect::Chat {
                messages,
                base: true,
                ..
            },
        ] => assert_eq!(
            messages[1],
            ChatMessage::new(ChatRole::Assistant, "Lutz is the capital.")
        ),
        other => panic!("{other:?}"),
    }
    // ctrl-t again: the base's reply in progress stops, the adapter answers alone.
    let fx = ctrl(&mut app, 't');
    assert!(matches!(fx.as_slice(), [Effect::StopChat(_)]), "{fx:?}");
    assert!(!app.tabs.models.chats[&id].beside);
}

#[test]
fn a_reply_in_progress_stops_and_the_conversation_clears() {
    let (mut app, id) = chat_open();
    let (r1, _, _) = send(&mut app, "Tell me a story");
    stream(&mut app, r1, &["Once", " upon"]);
    // A second message waits: the reply is still coming.
    typed(&mut app, "more");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(
        app.message
            .as_ref()
            .unwrap()
            .text
            .contains("ctrl-c stops it")
    );
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("ctrl-c stop"), "{screen}");
    // ctrl-c stops it (not quits): the stream is dropped, what came is kept.
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::StopChat(r1)]);
    assert!(!app.should_quit());
    stream(&mut app, r1, &[" a time"]);
    let session = &app.tabs.models.chats[&id];
    assert_eq!(session.turns[0].adapter.text, "Once upon");
    assert_eq!(session.turns[0].adapter.state, ReplyState::Stopped);
    // Again with nothing coming: says so, and still does not quit.
    assert!(ctrl(&mut app, 'c').is_empty());
    assert!(!app.should_quit());
    // ctrl-l asks first; yes forgets the conversation, keeps the draft.
    // (enter sends "more", still in the box since it was refused)
    let (r2, _, _) = send(&mut app, "");
    stream(&mut app, r2, &["The"]);
    typed(&mut app, "draft");
    assert!(ctrl(&mut app, 'l').is_empty());
    let screen = render(&mut app, 80, 24);
    assert!(
        screen.contains("Clear the conversation?") && screen.contains("2 turns"),
        "{screen}"
    );
    assert_eq!(chr(&mut app, 'y'), vec![Effect::StopChat(r2)]);
    let session = &app.tabs.models.chats[&id];
    assert!(session.turns.is_empty());
    assert_eq!(session.draft(), "draft");
}

#[test]
fn errors_are_said_in_the_view_which_stays_usable() {
    let (mut app, id) = chat_open();
    let (r1, _, _) = send(&mut app, "hi");
    let mut e = ApiError::unavailable(
        "the chat worker ended while loading the model (exit status 1); the next chat starts a fresh one",
    );
    e.reason = Some(Reason::WorkerFailed);
    e.details = Some(
        "OSError: mistralai/Mistral-7B-v0.1 is not a local folder\n\u{1b}[31mred\u{1b}[0m".into(),
    );
    event(&mut app, r1, ChatEvent::Error { error: e });
    let screen = render(&mut app, 80, 24);
    insta::assert_snapshot!("chat_error_80x24", screen);
    assert!(
        screen.contains("adapter · failed: the model's chat worker"),
        "{screen}"
    );
    // The message is back in the box: enter sends it again.
    assert_eq!(app.tabs.models.chats[&id].draft(), "hi");
    let (r2, messages, _) = match key(&mut app, KeyCode::Enter).as_slice() {
        [
            Effect::Chat {
                request, messages, ..
            },
        ] => (*request, messages.clone(), ()),
        other => panic!("{other:?}"),
    };
    assert_eq!(messages.len(), 1, "the failed turn is not history");
    // A refusal reads by its code and field.
    event(
        &mut app,
        r2,
        ChatEvent::Error {
            error: ApiError::invalid("messages", "1001 messages; a chat holds at most 1000"),
        },
    );
    let screen = render(&mut app, 100, 30);
    assert!(
        screen.contains("failed: the engine refused the request"),
        "{screen}"
    );
    assert!(
        screen.contains("too long for one request: ctrl-l clears it"),
        "{screen}"
    );
    // A reply failing while the view is not shown is said in the status bar.
    let (r3, _, _) = send(&mut app, "again");
    key(&mut app, KeyCode::Esc);
    event(
        &mut app,
        r3,
        ChatEvent::Error {
            error: ApiError::not_found("no model 0123abcd"),
        },
    );
    let m = app.message.as_ref().unwrap();
    assert_eq!(m.level, brightrun_tui::Level::Error);
    assert!(m.text.contains("chat with support-lora-2 v2"), "{}", m.text);
}

#[test]
fn model_output_is_cleaned_on_screen() {
    let (mut app, _) = chat_open();
    let (r1, _, _) = send(&mut app, "hi");
    stream(
        &mut app,
        r1,
        &[
            "safe\u{1b}]52;c;cHduZWQ=\u{7}",
            " text\u{1b}[2J\u{9b}31m",
            "\u{202e}end",
        ],
    );
    done(&mut app, r1, 3);
    // render() fails on any escape reaching the screen.
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("safe text"), "{screen}");
}

#[test]
fn help_in_the_chat_view_lists_its_keys() {
    let (mut app, _) = chat_open();
    with(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    let screen = render(&mut app, 100, 40);
    for text in [
        "Chat view",
        "enter",
        "alt-enter ctrl-j",
        "ctrl-t",
        "ctrl-c",
        "ctrl-l",
    ] {
        assert!(screen.contains(text), "{text}: {screen}");
    }
    key(&mut app, KeyCode::Esc);
    assert!(app.overlay.is_none());
    assert!(app.tabs.models.chat.is_some(), "esc closed the help only");
}

#[test]
fn the_conversation_scrolls_and_follows_the_reply() {
    let (mut app, id) = chat_open();
    for i in 0..6 {
        let (r, _, _) = send(&mut app, &format!("question {i}"));
        stream(&mut app, r, &["a line of reply that goes on"; 6]);
        done(&mut app, r, 30);
    }
    render(&mut app, 80, 24);
    let bottom = app.tabs.models.chats[&id].scroll;
    assert!(bottom > 0 && app.tabs.models.chats[&id].follow);
    key(&mut app, KeyCode::PageUp);
    render(&mut app, 80, 24);
    let up = app.tabs.models.chats[&id].scroll;
    assert!(up < bottom && !app.tabs.models.chats[&id].follow);
    // A new reply does not move what is being read.
    let (r, _, _) = send(&mut app, "more");
    key(&mut app, KeyCode::PageUp);
    stream(&mut app, r, &["new words"; 20]);
    render(&mut app, 80, 24);
    let reading = app.tabs.models.chats[&id].scroll;
    stream(&mut app, r, &["new words"; 20]);
    render(&mut app, 80, 24);
    assert_eq!(app.tabs.models.chats[&id].scroll, reading);
    // Paging down to the end follows it again.
    for _ in 0..20 {
        key(&mut app, KeyCode::PageDown);
        render(&mut app, 80, 24);
    }
    assert!(app.tabs.models.chats[&id].follow);
    let screen = render(&mut app, 80, 24);
    assert!(screen.contains("new words▌"), "{screen}");
}
