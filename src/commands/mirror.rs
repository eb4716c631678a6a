//! `brightrun mirror …`: the shared Postgres mirror's lag, a push now, and a comparison of
//! every table with PostgreSQL. All three go through the engine API, so they work embedded
//! and attached alike.

use super::exit;
use super::output::{self, fit};
use crate::cli::MirrorCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};
use brightrun_engine::mirror::{MigrationReport, MigrationState, MirrorState, MirrorStatus};

/// One line for people: the state, the lag, the target.
pub fn describe(s: &MirrorStatus) -> String {
    let Some(target) = s.target.as_deref().map(|t| fit(t, 80)) else {
        // As the engine answers a user who does not see it: no target, no seqs.
        return match s.state {
            MirrorState::Disabled => "mirror off".into(),
            MirrorState::InSync => "in sync".into(),
            MirrorState::Backfilling => "backfilling".into(),
            MirrorState::Starting => "starting".into(),
            MirrorState::Behind => "behind".into(),
            MirrorState::Unreachable => "unreachable (the engine's owner sees why)".into(),
        };
    };
    match s.state {
        MirrorState::Disabled => "mirror off (set [mirror] url in config.toml)".into(),
        MirrorState::InSync => format!("in sync with {target} (seq {})", s.acked_seq),
        MirrorState::Backfilling => format!(
            "backfilling {target}: {} rows copied, {} changes behind",
            s.backfilled_rows, s.behind
        ),
        MirrorState::Starting => format!("starting: {} changes behind {target}", s.behind),
        MirrorState::Behind => format!("{} changes behind {target}", s.behind),
        MirrorState::Unreachable => format!(
            "unreachable: {target}: {}",
            s.last_error
                .as_deref()
                .map(|e| output::prose(e, 2))
                .unwrap_or_default()
        ),
    }
}

pub async fn run(api: &dyn EngineApi, cmd: MirrorCmd) -> Result<i32> {
    match cmd {
        MirrorCmd::Status { json } => {
            let s = api.mirror_status().await?;
            if json.json {
                output::json(&s)?;
            } else {
                println!("{}", describe(&s));
                // A user who does not see the engine gets no seqs (both 0) and no target.
                if s.target.is_some() || s.last_seq > 0 {
                    println!("acknowledged seq {} of {}", s.acked_seq, s.last_seq);
                }
                if !s.running && s.state != MirrorState::Disabled {
                    println!(
                        "no mirror task runs here: `brightrun serve` (or the dashboard) runs it; `brightrun mirror sync` pushes once"
                    );
                }
                if let Some(e) = &s.last_error {
                    let at = s
                        .last_error_at
                        .map(|t| t.format(" at %Y-%m-%d %H:%M:%S UTC").to_string())
                        .unwrap_or_default();
                    println!("last error{at}: {}", output::prose(e, 2));
                }
            }
            Ok(exit::OK)
        }
        MirrorCmd::Sync { timeout, json } => {
            let s = api.mirror_sync(Some(timeout.clamp(1, 3600))).await?;
            if json.json {
                output::json(&s)?;
            } else {
                println!("{}", describe(&s));
            }
            Ok(exit::OK)
        }
        MirrorCmd::Migrate { dry_run, json } => {
            let r = api.mirror_migrate(dry_run).await?;
            if json.json {
                output::json(&r)?;
            } else {
                print_migrations(&r);
            }
            Ok(exit::OK)
        }
        MirrorCmd::Verify { json } => {
            let r = api.mirror_verify().await?;
            if json.json {
                output::json(&r)?;
            } else {
                let rows: Vec<Vec<String>> = r
                    .tables
                    .iter()
                    .map(|t| {
                        vec![
                            t.table.clone(),
                            t.local_rows.to_string(),
                            t.remote_rows.to_string(),
                            if t.is_clean() { "same" } else { "DIFFERENT" }.to_string(),
                        ]
                    })
                    .collect();
                output::table(&["TABLE", "HERE", "POSTGRES", "CHECKSUM"], &rows);
                for t in r.tables.iter().filter(|t| !t.is_clean()) {
                    for (what, n, ids) in [
                        ("missing in PostgreSQL", t.missing_count, &t.missing),
                        ("only in PostgreSQL", t.extra_count, &t.extra),
                        ("different", t.different_count, &t.different),
                    ] {
                        if n > 0 {
                            println!("{}: {n} {what}: {}", t.table, ids.join(", "));
                        }
                    }
                }
                println!(
                    "{}",
                    if r.clean {
                        format!("{} matches this engine", fit(&r.target, 80))
                    } else {
                        format!("{} differs from this engine", fit(&r.target, 80))
                    }
                );
            }
            Ok(if r.clean { exit::OK } else { exit::FAILED })
        }
    }
}

/// A dry run's SQL on stdout (a file psql can run), everything else on stderr.
fn print_migrations(r: &MigrationReport) {
    let target = fit(&r.target, 80);
    for m in &r.migrations {
        let state = match m.state {
            MigrationState::Applied => "applied before",
            MigrationState::AppliedNow => "applied now",
            MigrationState::Pending => "pending",
        };
        eprintln!("{:>4}  {:<20} {state}", m.version, m.name);
        if let Some(had) = &m.recorded_checksum {
            eprintln!(
                "      recorded with another text (sha256 {had}, this brightrun's is {}); not applied again",
                m.checksum
            );
        }
    }
    let pending: Vec<_> = r.migrations.iter().filter(|m| m.sql.is_some()).collect();
    if r.dry_run {
        if !pending.is_empty() {
            println!("{}", brightrun_engine::mirror::RECORD_TABLE_SQL);
        }
        for m in &pending {
            println!(
                "-- {} (migration {}, sha256 {})",
                m.name, m.version, m.checksum
            );
            println!("BEGIN;");
            println!("{}", m.sql.as_deref().unwrap_or_default().trim_end());
            println!(
                "INSERT INTO public.brightrun_migrations (version, name, checksum) VALUES ({}, '{}', '{}');",
                m.version, m.name, m.checksum
            );
            println!("COMMIT;");
        }
        eprintln!(
            "{target}: {} pending; nothing applied (dry run)",
            pending.len()
        );
    } else {
        let now = r
            .migrations
            .iter()
            .filter(|m| m.state == MigrationState::AppliedNow)
            .count();
        eprintln!("{target}: {now} applied now, up to date");
    }
}
