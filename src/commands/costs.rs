//! `brightrun costs` and `brightrun notifications`

use super::exit;
use super::output::{self, fit, money};
use crate::cli::NotificationsCmd;
use anyhow::Result;
use brightrun_engine::Period;
use brightrun_engine::api::{Api, ApiError, EngineApi, Paging};

pub async fn costs(api: &dyn EngineApi, period: &str, json: bool) -> Result<i32> {
    let period: Period = period
        .parse()
        .map_err(|e: String| ApiError::invalid("period", e))?;
    let s = api.costs(period).await?.summary;
    if json {
        output::json(&s)?;
        return Ok(exit::OK);
    }
    println!(
        "costs since {}: {} (plus {} running now)",
        s.since.format("%Y-%m-%d"),
        money(s.total),
        money(s.running)
    );
    for (t, v) in &s.by_type {
        println!("  {t:<14} {}", money(*v));
    }
    if let Some(b) = &s.budget {
        println!(
            "  budget         ${:.2} of ${:.2} this month ({:.0}%)",
            b.spent_this_month, b.monthly_budget, b.percent
        );
    }
    let days: Vec<_> = s.by_day.iter().filter(|(_, v)| *v > 0.0).collect();
    if !days.is_empty() {
        println!("by day:");
        for (d, v) in days {
            println!("  {d}  {}", money(*v));
        }
    }
    if !s.by_job.is_empty() {
        println!("most expensive jobs:");
        for j in s.by_job.iter().take(10) {
            println!(
                "  {}  {}  {}",
                &j.job_id.to_string()[..8],
                money(j.amount),
                j.description.as_deref().unwrap_or("")
            );
        }
    }
    Ok(exit::OK)
}

pub async fn notifications(
    api: &dyn EngineApi,
    cmd: Option<NotificationsCmd>,
    unread: bool,
    json: bool,
) -> Result<i32> {
    match cmd {
        Some(NotificationsCmd::Read {
            id,
            all,
            json: read_json,
        }) => {
            let json = json || read_json.json;
            let n = match (id, all) {
                (_, true) => api.mark_read(None).await?,
                (Some(id), false) => api.mark_read(Some(id)).await?,
                (None, false) => {
                    return Err(ApiError::invalid("id", "give a notification id or --all").into());
                }
            };
            if json {
                output::json(&serde_json::json!({"marked_read": n}))?;
            } else {
                println!("marked {n} read");
            }
        }
        None => {
            let list = api.notifications(unread, Paging::ALL).await?.items;
            if json {
                output::json(&list)?;
            } else if list.is_empty() {
                eprintln!("no notifications");
            } else {
                for n in list {
                    println!(
                        "{} {} {:<8} {:<14} {}: {}",
                        if n.read { " " } else { "●" },
                        &n.id.to_string()[..8],
                        format!("{:?}", n.priority).to_lowercase(),
                        n.created_at.format("%m-%d %H:%M"),
                        fit(&n.title, 50),
                        output::prose(&n.message, 6)
                    );
                }
            }
        }
    }
    Ok(exit::OK)
}
