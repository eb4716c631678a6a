//! `brightrun config …`: the configuration of the engine this command reaches (embedded or
//! attached), as that engine sees it.

use super::exit;
use super::output;
use crate::cli::ConfigCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};
use serde_json::json;

pub async fn run(api: &dyn EngineApi, cmd: ConfigCmd) -> Result<i32> {
    let info = api.config_info().await?;
    let path = |k: &str| info.paths.get(k).cloned().unwrap_or_default();
    match cmd {
        ConfigCmd::Show { json } => {
            if json.json {
                output::json(&json!({
                    "config": info.config,
                    "paths": info.paths,
                    "secrets": info.secrets,
                    "storage": info.storage,
                    "schema_version": info.schema_version,
                    "engine": api.connection().to_string(),
                }))?;
            } else {
                if info.paths.is_empty() {
                    // The engine's paths and secrets are its owner's to see.
                    println!("# effective configuration (of the engine)");
                    print!("{}", info.config_toml);
                } else {
                    println!("# effective configuration ({})", path("config_file"));
                    print!("{}", info.config_toml);
                    println!(
                        "\n# secrets (from the environment or {})",
                        path("secrets_file")
                    );
                    if info.secrets.is_empty() {
                        println!("# none set");
                    }
                }
                for s in &info.secrets {
                    println!("# {} = {} ({})", s.name, s.value, s.source);
                }
                println!("\n# engine: {}", api.connection());
            }
        }
        ConfigCmd::Paths { json } => {
            if json.json {
                output::json(&info.paths)?;
            } else {
                for (k, v) in &info.paths {
                    println!("{k:<14} {v}");
                }
            }
        }
    }
    Ok(exit::OK)
}
