//! `brightrun backup create|list|restore`. Creating goes through the engine (it owns the
//! store and copies it between commits). Listing and restoring read and replace files in the
//! data dir without opening the store: they are what a person reaches for when the store is
//! damaged and no engine can start.

use super::{exit, output};
use crate::cli::BackupCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, ApiError};
use brightrun_engine::paths::Paths;
use brightrun_engine::store::backup;

pub async fn run(paths: &Paths, engine: Option<&str>, cmd: BackupCmd) -> Result<i32> {
    let store = paths.database_file();
    match cmd {
        BackupCmd::Create { json } => {
            let client = crate::client::Client::connect(engine, paths.clone()).await?;
            let b = client.api.create_backup().await?;
            if json.json {
                output::json(&b)?;
            } else {
                println!(
                    "backed up the store ({}, schema {}) to {}",
                    output::bytes(b.size_bytes),
                    b.schema_version,
                    output::clean(&b.path.display().to_string())
                );
            }
        }
        BackupCmd::List { json } => {
            let all = backup::list(&store).map_err(ApiError::from)?;
            if json.json {
                output::json(&all)?;
            } else if all.is_empty() {
                println!(
                    "no backups yet in {}; `brightrun backup create` makes one",
                    output::clean(&backup::backups_dir(&store).display().to_string())
                );
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|b| {
                        vec![
                            output::clean(&b.id),
                            b.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            output::bytes(b.size_bytes),
                            if b.schema_version == 0 {
                                "?".into()
                            } else {
                                b.schema_version.to_string()
                            },
                            output::clean(&b.reason),
                        ]
                    })
                    .collect();
                output::table(&["ID", "CREATED", "SIZE", "SCHEMA", "REASON"], &rows);
            }
        }
        BackupCmd::Restore { id, json } => {
            let r = backup::restore(&store, &id).map_err(ApiError::from)?;
            if json.json {
                output::json(&r)?;
            } else {
                println!(
                    "restored {} (made {}) as {}",
                    output::clean(&r.backup.id),
                    r.backup.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    output::clean(&store.display().to_string())
                );
                if let Some(old) = &r.replaced {
                    println!(
                        "the store it replaced is kept as {}",
                        output::clean(&old.display().to_string())
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}
