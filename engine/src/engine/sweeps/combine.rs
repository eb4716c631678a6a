//! A sweep's combinations: the grid's cartesian product, crossed with random draws from
//! ranges (seeded, so the plan shown is the sweep that runs).

use super::super::{EngineError, Result};
use crate::domain::{MAX_SWEEP_PARALLEL, MAX_SWEEP_RUNS, SweepRange, SweepSpec};
use std::collections::BTreeSet;

/// Every combination of `spec`, in the order the runs start: each a list of `key=value`
/// in the order the keys were given (grid axes, then ranges).
pub(crate) fn combinations(spec: &SweepSpec) -> Result<Vec<Vec<(String, String)>>> {
    check(spec)?;
    let grid = crate::domain::grid_combinations(&spec.grid);
    if spec.random == 0 {
        return Ok(grid);
    }
    let mut rng = SplitMix(spec.seed);
    let mut out = Vec::new();
    for _ in 0..spec.random {
        let draw: Vec<(String, String)> = spec
            .ranges
            .iter()
            .map(|r| (r.key.clone(), sample(r, &mut rng)))
            .collect();
        for combo in &grid {
            let mut c = combo.clone();
            c.extend(draw.iter().cloned());
            out.push(c);
        }
    }
    Ok(out)
}

fn invalid(field: &str, message: String) -> EngineError {
    EngineError::InvalidField {
        field: field.into(),
        message,
    }
}

/// The spec's own consistency: keys once each, values and ranges present, the run count and
/// the parallelism within limits, a positive budget.
fn check(spec: &SweepSpec) -> Result<()> {
    let mut keys = BTreeSet::new();
    for key in spec
        .grid
        .iter()
        .map(|a| &a.key)
        .chain(spec.ranges.iter().map(|r| &r.key))
    {
        if key.trim().is_empty() {
            return Err(invalid("grid", "a swept key is empty".into()));
        }
        if !keys.insert(key.as_str()) {
            return Err(invalid("grid", format!("`{key}` is swept twice")));
        }
    }
    if let Some(a) = spec
        .grid
        .iter()
        .find(|a| a.values.iter().all(|v| v.trim().is_empty()))
    {
        return Err(invalid("grid", format!("`{}` has no values", a.key)));
    }
    for r in &spec.ranges {
        if !(r.low.is_finite() && r.high.is_finite() && r.low < r.high) {
            return Err(invalid(
                "ranges",
                format!(
                    "`{}`: the range needs low < high (got {}:{})",
                    r.key, r.low, r.high
                ),
            ));
        }
        if r.log && r.low <= 0.0 {
            return Err(invalid(
                "ranges",
                format!("`{}`: a log range needs low > 0", r.key),
            ));
        }
    }
    if spec.random > 0 && spec.ranges.is_empty() {
        return Err(invalid(
            "random",
            "random draws need at least one --range".into(),
        ));
    }
    if spec.random == 0 && !spec.ranges.is_empty() {
        return Err(invalid(
            "ranges",
            "--range needs --random N (how many draws)".into(),
        ));
    }
    if spec.grid.is_empty() && spec.random == 0 {
        return Err(invalid(
            "grid",
            "a sweep needs --grid key=v1,v2 or --random N with --range".into(),
        ));
    }
    let grid: usize = spec.grid.iter().map(|a| a.values.len()).product();
    let runs = grid.saturating_mul((spec.random as usize).max(1));
    if runs > MAX_SWEEP_RUNS {
        return Err(invalid(
            "grid",
            format!("{runs} runs; a sweep may have at most {MAX_SWEEP_RUNS}"),
        ));
    }
    if spec.max_parallel > MAX_SWEEP_PARALLEL {
        return Err(invalid(
            "max_parallel",
            format!(
                "at most {MAX_SWEEP_PARALLEL} runs at once (got {})",
                spec.max_parallel
            ),
        ));
    }
    if let Some(b) = spec.budget
        && !(b.is_finite() && b > 0.0)
    {
        return Err(invalid("budget", format!("must be more than $0 (got {b})")));
    }
    if let Some(m) = spec.stop_worse
        && !(m.is_finite() && (0.0..=10.0).contains(&m))
    {
        return Err(invalid(
            "stop_worse",
            format!("a fraction from 0 to 10 (got {m})"),
        ));
    }
    Ok(())
}

/// A value from a range: log-uniform or uniform; whole numbers when both ends are.
fn sample(r: &SweepRange, rng: &mut SplitMix) -> String {
    let u = rng.unit();
    let x = if r.log {
        (r.low.ln() + u * (r.high.ln() - r.low.ln())).exp()
    } else {
        r.low + u * (r.high - r.low)
    };
    if r.low.fract() == 0.0 && r.high.fract() == 0.0 {
        format!("{}", x.round().clamp(r.low, r.high) as i64)
    } else {
        format!("{x:.3e}")
    }
}

/// SplitMix64: a small seeded generator, enough to spread draws over a range.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SweepAxis;

    fn axis(key: &str, values: &[&str]) -> SweepAxis {
        SweepAxis {
            key: key.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn a_grid_is_every_combination_in_order() {
        let spec = SweepSpec {
            grid: vec![
                axis("learning_rate", &["1e-4", "5e-5"]),
                axis("lora_rank", &["8", "16"]),
            ],
            ..Default::default()
        };
        let c = combinations(&spec).unwrap();
        let flat: Vec<String> = c.iter().map(|s| crate::wording::sets(s)).collect();
        assert_eq!(
            flat,
            [
                "learning_rate=1e-4 lora_rank=8",
                "learning_rate=1e-4 lora_rank=16",
                "learning_rate=5e-5 lora_rank=8",
                "learning_rate=5e-5 lora_rank=16"
            ]
        );
    }

    #[test]
    fn random_draws_are_seeded_within_range_and_crossed_with_the_grid() {
        let spec = SweepSpec {
            grid: vec![axis("lora_rank", &["8", "16"])],
            random: 3,
            ranges: vec![
                SweepRange {
                    key: "learning_rate".into(),
                    low: 1e-5,
                    high: 1e-3,
                    log: true,
                },
                SweepRange {
                    key: "lora_alpha".into(),
                    low: 8.0,
                    high: 64.0,
                    log: false,
                },
            ],
            seed: 42,
            ..Default::default()
        };
        let a = combinations(&spec).unwrap();
        assert_eq!(a.len(), 6);
        assert_eq!(
            a,
            combinations(&spec).unwrap(),
            "the same seed draws the same"
        );
        for c in &a {
            let lr: f64 = c[1].1.parse().unwrap();
            assert!((1e-5..=1e-3).contains(&lr), "{lr}");
            let alpha: i64 = c[2].1.parse().expect("whole numbers for whole bounds");
            assert!((8..=64).contains(&alpha));
        }
        let other = SweepSpec { seed: 43, ..spec };
        assert_ne!(a, combinations(&other).unwrap());
    }

    #[test]
    fn bad_specs_are_refused_naming_what() {
        let refuse = |spec: SweepSpec, needle: &str| {
            let e = combinations(&spec).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        refuse(SweepSpec::default(), "--grid");
        refuse(
            SweepSpec {
                grid: vec![axis("a", &["1"]), axis("a", &["2"])],
                ..Default::default()
            },
            "swept twice",
        );
        refuse(
            SweepSpec {
                grid: vec![axis("a", &[""])],
                ..Default::default()
            },
            "no values",
        );
        refuse(
            SweepSpec {
                grid: vec![axis("a", &["1"; 9]), axis("b", &["1"; 9])],
                ..Default::default()
            },
            "at most 64",
        );
        refuse(
            SweepSpec {
                random: 2,
                ranges: vec![SweepRange {
                    key: "lr".into(),
                    low: 0.0,
                    high: 1.0,
                    log: true,
                }],
                ..Default::default()
            },
            "low > 0",
        );
        refuse(
            SweepSpec {
                random: 2,
                ..Default::default()
            },
            "--range",
        );
        refuse(
            SweepSpec {
                grid: vec![axis("a", &["1"])],
                budget: Some(-1.0),
                ..Default::default()
            },
            "more than $0",
        );
        refuse(
            SweepSpec {
                grid: vec![axis("a", &["1"])],
                max_parallel: 99,
                ..Default::default()
            },
            "at most 16",
        );
    }
}
