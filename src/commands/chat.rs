//! `brightrun models chat`: the playground on the command line.
//!
//! Everything the model says is cleaned of terminal escapes before it is printed
//! (`text::clean`), on the terminal and off it; `--json` prints it escaped instead.

use super::exit;
use super::output;
use anyhow::Result;
use brightrun_engine::api::{ApiError, EngineApi};
use brightrun_engine::chat::{ChatEvent, ChatMessage, ChatRequest, ChatRole};
use futures::StreamExt;
use std::io::{IsTerminal, Write};

pub struct Options {
    pub model: String,
    pub base: bool,
    pub system: Option<String>,
    pub max_new_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub json: bool,
}

/// One reply, as `--json` prints it.
#[derive(Debug, Default, serde::Serialize)]
struct Reply {
    model: String,
    base: bool,
    reply: String,
    tokens: u64,
    seconds: f64,
    first_token_seconds: Option<f64>,
    /// Where the worker answered: `cpu` or `cuda`.
    device: String,
    /// Seconds the engine spent loading the model for this reply (0: it was loaded).
    load_seconds: f64,
    /// The engine's note, when it has one: chat runs on the engine's CPU (no GPU there), and
    /// the command that judges the model on a cluster instead.
    note: Option<String>,
}

/// Where a reply's text goes as it comes.
enum Echo {
    /// Printed, cleaned, as it streams.
    Stream,
    /// Kept for the JSON document.
    Quiet,
}

/// `--prompt`: one reply, then exit.
pub async fn once(api: &dyn EngineApi, options: Options, prompt: String) -> Result<i32> {
    let mut messages = opening(&options);
    messages.push(ChatMessage::new(ChatRole::User, prompt));
    let echo = if options.json {
        Echo::Quiet
    } else {
        Echo::Stream
    };
    let mut noted = false;
    let reply = turn(
        api,
        &options,
        options.base,
        messages,
        &echo,
        false,
        &mut noted,
    )
    .await?;
    if options.json {
        output::json(&reply)?;
    }
    Ok(exit::OK)
}

/// A conversation: prompts from the terminal (or, off a terminal, one per line of stdin),
/// history kept for the session.
pub async fn conversation(api: &dyn EngineApi, options: Options) -> Result<i32> {
    let interactive = std::io::stdin().is_terminal();
    let mut history = opening(&options);
    let mut base = options.base;
    if interactive {
        eprintln!(
            "chatting with model {} ({}), answered on the engine's machine; /base switches between adapter and base, /quit or Ctrl-D ends",
            output::clean(&options.model),
            which(base)
        );
    }
    let mut failed = false;
    // The engine's note (chat runs on its CPU) is shown once, before the first reply.
    let mut noted = false;
    loop {
        if interactive {
            eprint!("{}> ", if base { "base" } else { "" });
            let _ = std::io::stderr().flush();
        }
        let Some(line) = read_line(interactive).await? else {
            if interactive {
                eprintln!();
            }
            break;
        };
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match line.trim() {
            "/quit" | "/exit" => break,
            "/base" => {
                base = !base;
                if interactive {
                    eprintln!("now answering: {}", which(base));
                }
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage::new(ChatRole::User, line));
        let echo = if options.json {
            Echo::Quiet
        } else {
            Echo::Stream
        };
        match turn(
            api,
            &options,
            base,
            history.clone(),
            &echo,
            interactive,
            &mut noted,
        )
        .await
        {
            Ok(reply) => {
                if options.json {
                    // One compact document per reply: JSON lines.
                    let text = serde_json::to_string(&reply)?;
                    println!("{}", output::escape_json_controls(&text));
                }
                history.push(ChatMessage::new(ChatRole::Assistant, reply.reply));
            }
            Err(e) => {
                history.pop();
                failed = true;
                eprintln!("error: {}", output::clean(&format!("{e:#}")));
                if !interactive {
                    return Err(e);
                }
            }
        }
    }
    Ok(if failed && !interactive {
        exit::FAILED
    } else {
        exit::OK
    })
}

fn which(base: bool) -> &'static str {
    if base {
        "the base model"
    } else {
        "the adapter"
    }
}

fn opening(options: &Options) -> Vec<ChatMessage> {
    options
        .system
        .iter()
        .map(|s| ChatMessage::new(ChatRole::System, s.clone()))
        .collect()
}

/// One line of stdin, `None` at its end (read off the async workers); on a terminal Ctrl-C
/// ends the conversation too (once a reply was interrupted, SIGINT no longer ends the
/// program by itself).
async fn read_line(interactive: bool) -> Result<Option<String>> {
    let read = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .map(|n| (n > 0).then_some(s))
    });
    tokio::select! {
        line = read => Ok(line??),
        _ = tokio::signal::ctrl_c(), if interactive => Ok(None),
    }
}

/// Sends one turn and follows its reply. When `interruptible`, Ctrl-C ends the reply (what
/// came so far is kept) instead of the program. The engine's note goes to stderr before the
/// reply's text unless `noted` (then set); `--json` carries it in every reply instead.
async fn turn(
    api: &dyn EngineApi,
    options: &Options,
    base: bool,
    messages: Vec<ChatMessage>,
    echo: &Echo,
    interruptible: bool,
    noted: &mut bool,
) -> Result<Reply> {
    let request = ChatRequest {
        model: options.model.clone(),
        messages,
        base,
        max_new_tokens: options.max_new_tokens,
        temperature: options.temperature,
    };
    let mut stream = api.chat(request).await?;
    let mut reply = Reply {
        model: options.model.clone(),
        base,
        ..Reply::default()
    };
    let mut stdout = std::io::stdout();
    let mut ends_with_newline = true;
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = tokio::signal::ctrl_c(), if interruptible => {
                if matches!(echo, Echo::Stream) {
                    println!();
                }
                eprintln!("(interrupted)");
                return Ok(reply);
            }
        };
        let Some(event) = event else {
            return Err(
                ApiError::unavailable("the engine ended the reply before it was done").into(),
            );
        };
        match event {
            ChatEvent::Started {
                model,
                device,
                load_seconds,
                note,
                ..
            } => {
                reply.model = model;
                reply.device = device;
                reply.load_seconds = load_seconds;
                if let (Echo::Stream, Some(note)) = (echo, &note)
                    && !*noted
                {
                    eprintln!("note: {}", output::clean(note));
                    *noted = true;
                }
                reply.note = note;
            }
            ChatEvent::Delta { text } => {
                if let Echo::Stream = echo {
                    let shown = brightrun_engine::text::clean(&text);
                    if !shown.is_empty() {
                        ends_with_newline = shown.ends_with('\n');
                    }
                    let _ = stdout.write_all(shown.as_bytes());
                    let _ = stdout.flush();
                }
                reply.reply.push_str(&text);
            }
            ChatEvent::Done {
                tokens,
                seconds,
                first_token_seconds,
            } => {
                if let Echo::Stream = echo
                    && !ends_with_newline
                {
                    println!();
                }
                reply.tokens = tokens;
                reply.seconds = seconds;
                reply.first_token_seconds = first_token_seconds;
                return Ok(reply);
            }
            ChatEvent::Error { error } => {
                if let Echo::Stream = echo
                    && !ends_with_newline
                {
                    println!();
                }
                return Err(error.into());
            }
        }
    }
}
