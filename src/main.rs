//! The `brightrun` binary: parses the command line, starts logging, opens the engine, and runs
//! a command or the dashboard. Errors become one clear line on stderr and an exit status.

mod cli;
mod commands;
mod logging;

use clap::Parser;
use cli::{Cli, Command};
use commands::exit;

fn main() {
    let cli = Cli::parse();
    if matches!(&cli.command, Some(c) if !matches!(c, Command::Engine)) {
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
    let code = runtime.block_on(async move {
        match run(cli, paths).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("brightrun: {}", message(&e));
                exit::USAGE
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
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
    let engine = brightrun_engine::Engine::open(paths)?;
    match cli.command {
        Some(Command::Datasets(cmd)) => commands::datasets::run(&engine, cmd).await,
        Some(Command::Config(cmd)) => commands::config::run(&engine, cmd),
        Some(Command::Estimate { run, json }) => commands::jobs::estimate(&engine, &run, json.json),
        Some(Command::Jobs(cmd)) => commands::jobs::run(&engine, cmd).await,
        Some(Command::Models(cmd)) => commands::models::run(&engine, cmd).await,
        Some(Command::Costs { period, json }) => {
            commands::costs::costs(&engine, &period, json.json)
        }
        Some(Command::Notifications { cmd, unread, json }) => {
            commands::costs::notifications(&engine, cmd, unread, json.json)
        }
        Some(Command::Engine) => {
            let tasks = engine.start();
            eprintln!(
                "engine running (store {}); Ctrl-C stops it",
                engine.paths().database_file().display()
            );
            let _ = tokio::signal::ctrl_c().await;
            engine.shutdown();
            let _ = tasks.await;
            Ok(exit::OK)
        }
        None => {
            let tasks = engine.start();
            let result = brightrun_tui::run(
                engine.clone(),
                brightrun_tui::RunOptions { theme: cli.theme },
            )
            .await;
            engine.shutdown();
            let _ = tasks.await;
            result.map(|()| exit::OK)
        }
    }
}
