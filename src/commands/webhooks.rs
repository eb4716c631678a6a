//! `brightrun webhooks list|test|deliveries`: the configured webhooks, a signed test event,
//! and the delivery log. Keys are never shown: only the name of the secret holding each.
//! `brightrun tracking status`: how each consumer of the change log (MLflow, TensorBoard,
//! the webhooks) is doing.

use super::exit;
use super::output::{self, fit};
use crate::cli::{TrackingCmd, WebhooksCmd};
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi, Paging};
use brightrun_engine::domain::DeliveryState;

pub async fn run(api: &dyn EngineApi, cmd: WebhooksCmd) -> Result<i32> {
    match cmd {
        WebhooksCmd::List { json } => {
            let hooks = api.list_webhooks().await?;
            if json.json {
                output::json(&hooks)?;
            } else if hooks.is_empty() {
                println!(
                    "no webhooks: add [[webhooks]] entries to config.toml (`brightrun config path`)"
                );
            } else {
                let rows: Vec<Vec<String>> = hooks
                    .iter()
                    .map(|h| {
                        vec![
                            h.name.clone(),
                            fit(&output::clean(&h.url), 40),
                            h.events.len().to_string(),
                            if h.secret_present {
                                h.secret.clone()
                            } else {
                                format!("{} (NOT SET)", h.secret)
                            },
                            format!("{}/{}/{}", h.delivered, h.pending, h.failed),
                            h.last_result
                                .as_deref()
                                .map(|r| fit(&output::clean(r), 40))
                                .unwrap_or_else(|| "–".into()),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "NAME",
                        "URL",
                        "EVENTS",
                        "SECRET",
                        "OK/PENDING/FAILED",
                        "LAST",
                    ],
                    &rows,
                );
            }
            Ok(exit::OK)
        }
        WebhooksCmd::Test { name, json } => {
            let d = api.test_webhook(&name).await?;
            let ok = d.state == DeliveryState::Delivered;
            if json.json {
                output::json(&d)?;
            } else if ok {
                println!("delivered {} to {name}: {}", d.id, d.result());
            } else {
                println!("not delivered to {name}: {}", d.result());
            }
            Ok(if ok { exit::OK } else { exit::FAILED })
        }
        WebhooksCmd::Deliveries {
            failed,
            webhook,
            limit,
            json,
        } => {
            let page = Paging { offset: 0, limit };
            let log = api.webhook_deliveries(webhook, failed, page).await?;
            if json.json {
                output::json(&log)?;
            } else if log.is_empty() {
                println!("no deliveries{}", if failed { " failed" } else { "" });
            } else {
                let rows: Vec<Vec<String>> = log
                    .iter()
                    .map(|d| {
                        vec![
                            d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            d.webhook.clone(),
                            d.event_type.clone(),
                            d.state.as_str().into(),
                            d.attempts.to_string(),
                            fit(&output::clean(&d.result()), 50),
                            d.id.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "CREATED", "WEBHOOK", "EVENT", "STATE", "TRIES", "LAST", "ID",
                    ],
                    &rows,
                );
            }
            Ok(exit::OK)
        }
    }
}

pub async fn tracking(api: &dyn EngineApi, cmd: TrackingCmd) -> Result<i32> {
    let TrackingCmd::Status { json } = cmd;
    let all = api.tracking_status().await?;
    if json.json {
        output::json(&all)?;
    } else if all.is_empty() {
        println!(
            "nothing configured: `[tracking.mlflow]`, `[tracking.tensorboard]` or `[[webhooks]]` in config.toml"
        );
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    fit(&output::clean(&c.target), 40),
                    c.position.to_string(),
                    c.behind.to_string(),
                    c.last_error
                        .as_deref()
                        .map(|e| fit(&output::clean(e), 60))
                        .unwrap_or_else(|| "–".into()),
                ]
            })
            .collect();
        output::table(
            &["CONSUMER", "TARGET", "POSITION", "BEHIND", "LAST ERROR"],
            &rows,
        );
    }
    Ok(exit::OK)
}
