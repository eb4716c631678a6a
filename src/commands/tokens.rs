//! `brightrun tokens …`: bearer tokens for clients that attach over TCP. Only the engine's
//! owner may manage them (embedded, or on the daemon's Unix socket).

use super::exit;
use super::output::{self, fit};
use crate::cli::TokensCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};

pub async fn run(api: &dyn EngineApi, cmd: TokensCmd) -> Result<i32> {
    match cmd {
        TokensCmd::Create { user, json } => {
            let t = api.create_token(user).await?;
            if json.json {
                output::json(&t)?;
            } else {
                println!("{}", t.token);
                eprintln!(
                    "token {} for user {} ({}); it is shown only now: keep it somewhere safe",
                    t.info.id,
                    fit(&t.info.user_name, 60),
                    t.info.user_id
                );
            }
        }
        TokensCmd::List { json } => {
            let list = api.tokens().await?;
            if json.json {
                output::json(&list)?;
            } else if list.is_empty() {
                eprintln!("no tokens: create one with `brightrun tokens create`");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            fit(&t.user_name, 30),
                            t.user_id.short(),
                            t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                            t.revoked_at
                                .map(|r| format!("revoked {}", r.format("%Y-%m-%d %H:%M")))
                                .unwrap_or_else(|| "active".into()),
                        ]
                    })
                    .collect();
                output::table(&["ID", "USER", "USER ID", "CREATED", "STATE"], &rows);
            }
        }
        TokensCmd::Revoke { id, json } => {
            let t = api.revoke_token(&id).await?;
            if json.json {
                output::json(&t)?;
            } else {
                println!("revoked token {} of {}", t.id, fit(&t.user_name, 60));
            }
        }
    }
    Ok(exit::OK)
}
