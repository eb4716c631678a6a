//! `brightrun tokens …`: bearer tokens for clients that attach over TCP. Only the engine's
//! owner may manage them (embedded, or on the daemon's Unix socket).

use super::exit;
use super::output::{self, fit};
use crate::cli::TokensCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};
use chrono::{DateTime, NaiveDate, Utc};

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// `--expires`: a duration from `now` (a number and `m`, `h`, `d` or `w`) or a date (RFC 3339,
/// or `YYYY-MM-DD` for midnight UTC); it must be in the future.
pub fn parse_expiry(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&Utc)
    } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    } else {
        let split = s.len().saturating_sub(1);
        let (n, unit) = s.split_at(split);
        let n: i64 = n.parse().map_err(|_| {
            format!("`{s}` is neither a duration (90m, 12h, 30d, 8w) nor a date (2027-01-31)")
        })?;
        let minutes = match unit {
            "m" => Some(n),
            "h" => n.checked_mul(60),
            "d" => n.checked_mul(24 * 60),
            "w" => n.checked_mul(7 * 24 * 60),
            _ => None,
        }
        .ok_or_else(|| format!("`{s}`: the unit is m, h, d or w (90m, 12h, 30d, 8w)"))?;
        if !(1..=100 * 365 * 24 * 60).contains(&minutes) {
            return Err(format!("`{s}`: between 1m and 100 years"));
        }
        now + chrono::Duration::minutes(minutes)
    };
    if at <= now {
        return Err(format!("`{s}` is not in the future"));
    }
    Ok(at)
}

pub async fn run(api: &dyn EngineApi, cmd: TokensCmd) -> Result<i32> {
    match cmd {
        TokensCmd::Create {
            user,
            expires,
            json,
        } => {
            let expires_at = match expires.as_deref().map(|w| parse_expiry(w, Utc::now())) {
                Some(Ok(at)) => Some(at),
                Some(Err(e)) => {
                    eprintln!("error: --expires: {e}");
                    return Ok(exit::USAGE);
                }
                None => None,
            };
            let t = api.create_token(user, expires_at).await?;
            if json.json {
                output::json(&t)?;
            } else {
                println!("{}", t.token);
                eprintln!(
                    "token {} for user {} ({}){}; it is shown only now: keep it somewhere safe",
                    t.info.id,
                    fit(&t.info.user_name, 60),
                    t.info.user_id,
                    t.info
                        .expires_at
                        .map(|at| format!(", expires {}", when(at)))
                        .unwrap_or_default()
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
                            when(t.created_at),
                            t.expires_at.map(when).unwrap_or_else(|| "never".into()),
                            t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                            match (t.revoked_at, t.expires_at) {
                                (Some(r), _) => format!("revoked {}", when(r)),
                                (None, Some(e)) if e <= Utc::now() => "expired".into(),
                                _ => "active".into(),
                            },
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "USER",
                        "USER ID",
                        "CREATED",
                        "EXPIRES",
                        "LAST USED",
                        "STATE",
                    ],
                    &rows,
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_durations_or_dates_in_the_future() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_expiry(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("90m").unwrap(), "2026-12-01T11:30:00+00:00");
        assert_eq!(at("12h").unwrap(), "2026-12-01T22:00:00+00:00");
        assert_eq!(at("30d").unwrap(), "2026-12-31T10:00:00+00:00");
        assert_eq!(at("1w").unwrap(), "2026-12-08T10:00:00+00:00");
        assert_eq!(at("2027-01-31").unwrap(), "2027-01-31T00:00:00+00:00");
        assert_eq!(
            at("2027-01-31T18:00:00+01:00").unwrap(),
            "2027-01-31T17:00:00+00:00"
        );
        for bad in [
            "",
            "30",
            "30y",
            "d",
            "-5d",
            "0m",
            "2026-11-30",
            "99999999999w",
        ] {
            assert!(at(bad).is_err(), "{bad}");
        }
    }
}
