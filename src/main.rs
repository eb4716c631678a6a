//! The `brightrun` binary: parses the command line, starts logging, opens the engine, and runs
//! a command or the dashboard. Errors become one clear line on stderr and an exit status.

// Every line the binary writes to a terminal goes through the engine's one sanitiser: messages
// echo arguments, file names, server replies and other processes' command lines, any of which
// may carry escape sequences (an OSC 52 clipboard write, a title change). These shadow the
// standard macros for the whole crate, so no output path can forget.
macro_rules! println {
    () => { ::std::println!() };
    ($($t:tt)*) => { ::std::println!("{}", ::brightrun_engine::text::clean(&format!($($t)*))) };
}
macro_rules! eprintln {
    () => { ::std::eprintln!() };
    ($($t:tt)*) => { ::std::eprintln!("{}", ::brightrun_engine::text::clean(&format!($($t)*))) };
}
macro_rules! print {
    ($($t:tt)*) => { ::std::print!("{}", ::brightrun_engine::text::clean(&format!($($t)*))) };
}
macro_rules! eprint {
    ($($t:tt)*) => { ::std::eprint!("{}", ::brightrun_engine::text::clean(&format!($($t)*))) };
}

mod cli;
mod client;
mod commands;
mod logging;

use clap::Parser;
use cli::{Cli, Command};
use commands::exit;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap echoes the offending argument: it goes through the sanitiser like every line.
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            std::process::exit(e.exit_code());
        }
    };
    if matches!(&cli.command, Some(c) if !matches!(c, Command::Serve { .. })) {
        // A one-shot command piped into `head` should end quietly when the pipe closes, as
        // other command-line tools do, not panic on the failed write.
        #[cfg(unix)]
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let paths = brightrun_engine::paths::Paths::from_env();
    let _guard = logging::init(&paths.log_dir());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brightrun: cannot start the runtime: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    // With --json a script reads stdout: a failure gives it one document too.
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let code = runtime.block_on(async move {
        match run(cli, paths).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("brightrun: {}", message(&e));
                if json {
                    println!("{}", error_document(&e));
                }
                exit_status(&e)
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}

/// The JSON document a failed `--json` command prints on stdout: the seed's `{error,
/// details}` with the engine API's error `code` (and the request `field` at fault).
fn error_document(e: &anyhow::Error) -> serde_json::Value {
    use brightrun_engine::api::{ApiError, FromEngineError};
    let api = e
        .chain()
        .find_map(|c| c.downcast_ref::<ApiError>().cloned())
        .or_else(|| {
            e.chain()
                .find_map(|c| c.downcast_ref::<brightrun_engine::EngineError>())
                .map(ApiError::from_ref)
        });
    let code = api
        .as_ref()
        .map(|a| serde_json::to_value(a.code).unwrap_or_default())
        .unwrap_or_else(|| serde_json::json!("invalid"));
    let mut doc = serde_json::json!({
        "error": message(e),
        "code": code,
        "exit_status": exit_status(e),
    });
    if let Some(a) = api {
        if let Some(f) = a.field {
            doc["field"] = f.into();
        }
        if let Some(d) = a.details {
            doc["details"] = d.into();
        }
        if let Some(r) = a.reason {
            doc["reason"] = r.as_str().into();
        }
    }
    doc
}

/// The exit status an error's code calls for; errors without one are usage or I/O problems.
fn exit_status(e: &anyhow::Error) -> i32 {
    use brightrun_engine::api::{ApiError, ErrorCode, FromEngineError};
    let code = e
        .chain()
        .find_map(|c| c.downcast_ref::<ApiError>().map(|a| a.code))
        .or_else(|| {
            e.chain()
                .find_map(|c| c.downcast_ref::<brightrun_engine::EngineError>())
                .map(|err| ApiError::from_ref(err).code)
        });
    match code {
        Some(ErrorCode::Unavailable) => exit::UNAVAILABLE,
        Some(ErrorCode::Internal) => exit::INTERNAL,
        _ => exit::USAGE,
    }
}

/// The error chain on one line, without repeating causes already in the message.
fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

async fn run(cli: Cli, paths: brightrun_engine::paths::Paths) -> anyhow::Result<i32> {
    // The daemon owns the store itself: it must not attach to (or embed) another engine.
    if let Some(Command::Serve { listen, socket }) = cli.command {
        return commands::serve::run(paths, listen, socket).await;
    }
    // Listing and restoring backups must work when the store cannot be opened: no engine.
    if let Some(Command::Backup(cmd)) = cli.command {
        return commands::backup::run(&paths, cli.engine.as_deref(), cmd).await;
    }
    // A store that cannot open is the doctor's first finding, not a failure to run it.
    if let Some(Command::Doctor { repair, json }) = cli.command {
        return match client::Client::connect(cli.engine.as_deref(), paths.clone()).await {
            Ok(client) => commands::doctor::run(client.api.as_ref(), repair, json.json).await,
            Err(e) => {
                tracing::error!("{e:#}");
                commands::doctor::cannot_open(&message(&e), json.json)
            }
        };
    }
    let command = cli.command;
    // The dashboard and `jobs watch` follow an engine: one named by --engine that is not up
    // yet (or restarting) is waited for.
    let follows = matches!(
        command,
        None | Some(Command::Jobs(cli::JobsCmd::Watch { .. }))
            | Some(Command::Models(cli::ModelsCmd::Eval { detach: false, .. }))
            | Some(Command::Models(cli::ModelsCmd::Export {
                detach: false,
                json: cli::JsonFlag { json: false },
                ..
            }))
    );
    let client = if follows {
        client::Client::connect_or_wait(cli.engine.as_deref(), paths.clone()).await?
    } else {
        client::Client::connect(cli.engine.as_deref(), paths.clone()).await?
    };
    let api = client.api.as_ref();
    let result = match command {
        Some(Command::Datasets(cmd)) => commands::datasets::run(api, cmd).await,
        Some(Command::Config(cmd)) => commands::config::run(api, cmd).await,
        Some(Command::Estimate { run, json }) => {
            commands::jobs::estimate(api, &run, json.json).await
        }
        Some(Command::Jobs(cmd)) => commands::jobs::run(&client, cmd).await,
        Some(Command::Models(cmd)) => commands::models::run(&client, cmd).await,
        Some(Command::Costs { period, json }) => {
            commands::costs::costs(api, &period, json.json).await
        }
        Some(Command::Notifications { cmd, unread, json }) => {
            commands::costs::notifications(api, cmd, unread, json.json).await
        }
        Some(Command::Tokens(cmd)) => commands::tokens::run(api, cmd).await,
        Some(Command::Storage(cmd)) => commands::storage::run(api, cmd).await,
        Some(Command::Mirror(cmd)) => commands::mirror::run(api, cmd).await,
        Some(Command::Sweeps(cmd)) => commands::sweeps::run(api, cmd).await,
        Some(Command::Webhooks(cmd)) => commands::webhooks::run(api, cmd).await,
        Some(Command::Tracking(cmd)) => commands::webhooks::tracking(api, cmd).await,
        Some(Command::Backends(cmd)) => commands::backends::run(api, cmd).await,
        Some(Command::Backup(_)) => unreachable!("handled before attaching"),
        Some(Command::Doctor { .. }) => unreachable!("handled before attaching"),
        Some(Command::Serve { listen, socket }) => {
            commands::serve::run(paths, listen, socket).await
        }
        None => {
            let running = client.run_engine().await;
            let tui_config = brightrun_engine::config::Config::load(&paths)
                .map(|c| c.tui)
                .unwrap_or_default();
            let result = brightrun_tui::run(
                client.api.clone(),
                tui_config,
                brightrun_tui::RunOptions { theme: cli.theme },
            )
            .await;
            if result.is_ok() {
                commands::jobs::say_what_keeps_running(client.api.as_ref()).await;
            }
            if let Some(r) = running {
                r.stop().await;
            }
            result.map(|()| exit::OK)
        }
    };
    // What an embedded engine still does for the command (a cancel's stop) is seen through.
    client.finish().await;
    result
}
