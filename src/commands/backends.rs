//! `brightrun backends list|check`

use super::exit;
use super::output;
use crate::cli::BackendsCmd;
use anyhow::Result;
use brightrun_engine::BackendInfo;
use brightrun_engine::api::{Api, EngineApi};

pub async fn run(api: &dyn EngineApi, cmd: BackendsCmd) -> Result<i32> {
    let (list, json) = match cmd {
        BackendsCmd::List { json } => {
            let mut list = api.backends(false).await?;
            // Nothing known yet (no engine has checked): ask now rather than show blanks.
            if list.iter().any(|b| b.health.is_none()) {
                list = api.backends(true).await?;
            }
            (list, json.json)
        }
        BackendsCmd::Check { json } => (api.backends(true).await?, json.json),
    };
    if json {
        output::json(&list)?;
    } else {
        print_table(&list);
    }
    Ok(status(&list))
}

fn print_table(list: &[BackendInfo]) {
    println!(
        "{:<16} {:<7} {:<5} {:<13} WHERE / WHAT ANSWERED",
        "NAME", "KIND", "DATA", "HEALTH"
    );
    for b in list {
        let name = if b.default {
            format!("{} *", b.name)
        } else {
            b.name.clone()
        };
        let (health, detail) = match &b.health {
            Some(h) if h.reachable => ("ok".to_string(), h.detail.clone()),
            Some(h) => (
                h.failure.clone().unwrap_or_else(|| "failed".into()),
                h.detail.clone(),
            ),
            None => ("unknown".into(), b.address.clone()),
        };
        println!(
            "{:<16} {:<7} {:<5} {:<13} {}",
            output::fit(&name, 16),
            b.kind,
            b.data,
            health,
            output::clean(&detail)
        );
    }
    println!("* the default backend ([training] default_backend)");
}

/// 0 when every backend answers; 3 when one is unreachable; 1 when one refuses otherwise.
fn status(list: &[BackendInfo]) -> i32 {
    let failed: Vec<_> = list
        .iter()
        .filter_map(|b| b.health.as_ref())
        .filter(|h| !h.reachable)
        .collect();
    if failed.is_empty() {
        exit::OK
    } else if failed.iter().any(|h| {
        matches!(
            h.failure.as_deref(),
            Some("unreachable") | Some("rate_limited")
        )
    }) {
        exit::UNAVAILABLE
    } else {
        exit::FAILED
    }
}
