//! `brightrun storage check`

use super::exit;
use super::output;
use crate::cli::StorageCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};

pub async fn run(api: &dyn EngineApi, cmd: StorageCmd) -> Result<i32> {
    match cmd {
        StorageCmd::Check {
            create_buckets,
            json,
        } => {
            let r = api.storage_check(create_buckets).await?;
            if json.json {
                output::json(&r)?;
            } else {
                println!("{} store at {}", r.kind, r.location);
                for s in &r.steps {
                    let mark = if s.ok { "ok  " } else { "FAIL" };
                    println!("  {mark}  {:<40} {}", output::fit(&s.what, 40), s.detail);
                }
                println!(
                    "{}",
                    if r.ok {
                        "the store answers and works"
                    } else {
                        "the store does not work: see FAIL above"
                    }
                );
            }
            let unreachable = r
                .steps
                .iter()
                .any(|s| s.failure == Some(brightrun_engine::storage::CheckFailure::Unreachable));
            Ok(if r.ok {
                exit::OK
            } else if unreachable {
                exit::UNAVAILABLE
            } else {
                exit::FAILED
            })
        }
    }
}
