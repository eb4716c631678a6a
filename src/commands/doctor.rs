//! `brightrun doctor [--repair] [--json]`: the engine's checks, one line per step, and an
//! exit status a script can act on (0 clean or all repaired, 1 problems left).

use super::{exit, output};
use anyhow::Result;
use brightrun_engine::api::{Api, EngineApi};
use brightrun_engine::{DoctorReport, DoctorStep};

pub async fn run(api: &dyn EngineApi, repair: bool, json: bool) -> Result<i32> {
    let report = api.doctor(repair).await?;
    print(&report, json)?;
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

/// The store would not open, so no engine runs to check anything else: the open error
/// (which names the store's path and what to do) is the one finding, with exit 1.
pub fn cannot_open(message: &str, json: bool) -> Result<i32> {
    let report = DoctorReport {
        ok: false,
        steps: vec![DoctorStep {
            name: "store".into(),
            ok: false,
            problems: 1,
            repaired: 0,
            examples: vec![output::clean(message)],
            advice: Some(
                "the store does not open, so nothing else was checked; `brightrun backup list` \
                 and `brightrun backup restore ID` put a backup in its place"
                    .into(),
            ),
        }],
    };
    print(&report, json)?;
    Ok(exit::FAILED)
}

fn print(report: &DoctorReport, json: bool) -> Result<()> {
    if json {
        return output::json(report);
    }
    for s in &report.steps {
        let verdict = if s.problems == 0 {
            "ok".to_string()
        } else if s.ok {
            format!("repaired {}", s.repaired)
        } else if s.repaired > 0 {
            format!("{} problem(s), {} repaired", s.problems, s.repaired)
        } else {
            format!("{} problem(s)", s.problems)
        };
        println!("{:<18} {verdict}", s.name);
        for e in &s.examples {
            println!("    {}", output::clean(e));
        }
        if s.problems > s.examples.len() {
            println!("    … and {} more", s.problems - s.examples.len());
        }
        if let Some(a) = &s.advice {
            println!("  → {}", output::clean(a));
        }
    }
    println!(
        "{}",
        if report.ok {
            "no problems left"
        } else {
            "problems remain: see above"
        }
    );
    Ok(())
}
