//! The trainer's event lines (`Envelope::parse_line`) on arbitrary bytes, each line read as
//! the local backend reads its events file: split on newlines, UTF-8 lossily, trimmed, blank
//! lines skipped.
//!
//! Properties, beyond never panicking:
//! - a line that is an event (serde_json reads it as an `Envelope`) parses to that event, and
//!   an event written back as JSON parses to itself;
//! - any other line becomes a `log` event at `warning` that quotes it, and the message stays
//!   short whatever the line (the quote is cut at 300 characters, and serde's complaint, which
//!   can repeat a string from the line, is cut too).
#![no_main]

use brightrun_engine::backend::{Envelope, TrainerEvent};
use libfuzzer_sys::fuzz_target;

/// The most a warning about an unreadable line may hold, in characters.
const MAX_MESSAGE: usize = 1_000;

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = Envelope::parse_line(line);
        match serde_json::from_str::<Envelope>(line) {
            Ok(event) => {
                assert_eq!(parsed, event);
                let again = serde_json::to_string(&event).expect("an event serializes");
                assert_eq!(Envelope::parse_line(&again), event, "{again}");
            }
            Err(_) => {
                assert_eq!((parsed.seq, parsed.ts), (0, 0.0));
                match &parsed.event {
                    TrainerEvent::Log { level, message } => {
                        assert_eq!(level.as_deref(), Some("warning"));
                        assert!(
                            message.starts_with("unreadable trainer output ("),
                            "{message}"
                        );
                        let n = message.chars().count();
                        assert!(
                            n <= MAX_MESSAGE,
                            "a {n}-character warning for a {}-byte line",
                            line.len()
                        );
                        let quoted: String = line.chars().take(50).collect();
                        assert!(message.contains(&quoted), "{message}");
                    }
                    other => panic!("{line} is no event, yet parsed as {other:?}"),
                }
            }
        }
    }
});
