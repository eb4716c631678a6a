//! The dashboard's Chat view end to end (issue 24's playground): a tiny model trained through
//! the real binary, then the real dashboard in tmux (120x40) with its embedded engine and the
//! real trainer's `serve` worker. The Chat view opens on the model, a message is sent, the
//! reply streams into the pane and ends; the base model's answer then shows beside it. The
//! replies are checked against `models chat`'s (greedy decoding: the same words).

mod common;

use common::tmux::Tmux;
use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::time::Duration;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Whitespace runs as one space.
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The conversation panel's text (between its side borders), one column of it when
/// `column` is given (0: the adapter's, 1: the base's, split at ` │ `), as one squeezed line.
fn panel_text(screen: &str, column: Option<usize>) -> String {
    let mut out = Vec::new();
    for line in screen.lines() {
        let Some(inner) = line.strip_prefix('│').and_then(|l| l.strip_suffix('│')) else {
            continue;
        };
        match column {
            None => out.push(inner.to_string()),
            Some(c) => {
                if let Some(part) = inner.split(" │ ").nth(c) {
                    out.push(part.to_string());
                }
            }
        }
    }
    squeeze(&out.join(" "))
}

/// The first `n` words of a reply as the dashboard shows it: cleaned, squeezed.
fn opening(reply: &Value, n: usize) -> String {
    let text = brightrun_engine::text::clean(reply["reply"].as_str().expect("a reply"));
    squeeze(&text)
        .split(' ')
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_chat_view_streams_a_reply_and_shows_the_base_beside_it() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);
    let job = home.tiny_job(&dataset, &["epochs=1"]);
    let done = home.json(&["jobs", "watch", &job[..8], "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let model = done["artifact_id"].as_str().unwrap().to_string();
    // What the adapter and the base say to `hi` (greedy: the dashboard gets the same).
    let adapter = home.json(&["models", "chat", &model, "--prompt", "hi", "--json"], 0);
    let base = home.json(
        &[
            "models", "chat", &model, "--prompt", "hi", "--base", "--json",
        ],
        0,
    );
    let tokens = adapter["tokens"].as_u64().unwrap();
    let base_tokens = base["tokens"].as_u64().unwrap();

    let work = home.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let python = trainer_python();
    let mut term = Tmux::start(
        &work,
        WIDTH,
        HEIGHT,
        &[
            ("BRIGHTRUN_HOME", home.path().as_os_str()),
            ("BRIGHTRUN_TRAINER_PYTHON", python.as_os_str()),
            ("HF_HUB_OFFLINE", OsStr::new("1")),
            ("TRANSFORMERS_OFFLINE", OsStr::new("1")),
            ("TOKENIZERS_PARALLELISM", OsStr::new("false")),
        ],
        &assert_cmd::cargo::cargo_bin("brightrun"),
    );
    let log_dir = home.path().join("data/playground");
    term.on_failure(move || {
        std::fs::read_dir(&log_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    });

    // ---- the Models tab, the model's Chat view -------------------------------------------------
    term.wait_for_all("the dashboard", secs(60), &["BrightRun", "4 Models"]);
    term.keys(&["4"]);
    term.wait_for_all("the Models tab", secs(20), &["Models 1", "c chat"]);
    term.keys(&["c"]);
    term.wait_for_all(
        "the Chat view",
        secs(20),
        &[
            "Chat · ",
            "on base brightrun/tiny-random-llama",
            "Message (enter sends, alt-enter new line)",
        ],
    );

    // ---- a message; the reply streams in and ends ----------------------------------------------
    term.type_text("hi");
    term.wait_for_all("the message typed", secs(20), &["┃hi"]);
    term.keys(&["Enter"]);
    let done_line = format!("adapter · {tokens} tokens in");
    let mut streaming_seen = false;
    let screen = term.wait_for("the adapter's reply", secs(180), |s| {
        streaming_seen |= s.contains("answering on ") || s.contains("waiting for the model");
        if s.contains("adapter · failed") {
            term.fail("the reply failed", s);
        }
        s.contains(&done_line)
    });
    assert!(
        streaming_seen,
        "the reply's progress was shown before it ended"
    );
    let want = opening(&adapter, 6);
    assert!(
        panel_text(&screen, None).contains(&want),
        "the adapter's reply `{want}` is on screen: {screen}"
    );
    assert!(screen.contains("enter send"), "{screen}");

    // ---- the base model's answer beside it -----------------------------------------------------
    term.keys(&["C-t"]);
    let base_line = format!("│ base · {base_tokens} tokens in");
    let screen = term.wait_for("the base's reply beside the adapter's", secs(180), |s| {
        if s.contains("base · failed") {
            term.fail("the base's reply failed", s);
        }
        s.lines()
            .any(|l| l.contains("│adapter · ") && l.contains(&base_line))
    });
    assert!(screen.contains("adapter + base"), "{screen}");
    let want = opening(&base, 4);
    assert!(
        panel_text(&screen, Some(1)).contains(&want),
        "the base's reply `{want}` is in the right column: {screen}"
    );

    // ---- back, quit: the conversation was the dashboard's own -----------------------------------
    term.keys(&["Escape"]);
    term.wait_for_all("the model list", secs(20), &["Models 1", "c chat"]);
    term.keys(&["q"]);
    let screen = term.wait_for_exit(secs(60));
    assert!(screen.contains("[exited 0]"), "{screen}");
}
