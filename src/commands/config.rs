//! `brightrun config …`

use super::exit;
use super::output;
use crate::cli::ConfigCmd;
use anyhow::Result;
use brightrun_engine::Engine;
use serde_json::json;

pub fn run(engine: &Engine, cmd: ConfigCmd) -> Result<i32> {
    let p = engine.paths();
    let paths = json!({
        "config_file": p.config_file(),
        "secrets_file": p.secrets_file(),
        "data_dir": p.data_dir,
        "database": p.database_file(),
        "objects": p.objects_dir(),
        "logs": p.log_dir(),
        "trainer_cache": p.cache_dir,
    });
    match cmd {
        ConfigCmd::Show { json } => {
            let secrets: Vec<_> = engine
                .secrets()
                .describe()
                .into_iter()
                .map(|(name, masked, source)| json!({"name": name, "value": masked, "source": source}))
                .collect();
            if json.json {
                output::json(&json!({
                    "config": engine.config(),
                    "paths": paths,
                    "secrets": secrets,
                    "storage": engine.storage_kind(),
                    "schema_version": engine.schema_version()?,
                }))?;
            } else {
                println!("# effective configuration ({})", p.config_file().display());
                print!("{}", toml::to_string_pretty(engine.config())?);
                println!(
                    "\n# secrets (from the environment or {})",
                    p.secrets_file().display()
                );
                if secrets.is_empty() {
                    println!("# none set");
                }
                for s in &secrets {
                    println!(
                        "# {} = {} ({})",
                        s["name"].as_str().unwrap_or(""),
                        s["value"].as_str().unwrap_or(""),
                        s["source"].as_str().unwrap_or("")
                    );
                }
            }
        }
        ConfigCmd::Paths { json } => {
            if json.json {
                output::json(&paths)?;
            } else if let Some(map) = paths.as_object() {
                for (k, v) in map {
                    println!("{k:<14} {}", v.as_str().unwrap_or(""));
                }
            }
        }
    }
    Ok(exit::OK)
}
