//! `--stop-worse`: a running run whose validation loss is worse than the median of its
//! siblings at the same step, by more than the margin, is stopped. A pure function of the
//! runs' curves, so it is tested without an engine.

use crate::domain::{JobStatus, MetricsPoint, TrainingJob};
use crate::ids::JobId;

/// One run's validation losses by step, and whether it is still running.
pub(crate) struct Curve {
    pub job: JobId,
    pub running: bool,
    /// The step the run has reached.
    pub step: u64,
    /// (step, validation loss), in step order.
    pub validation: Vec<(u64, f64)>,
}

impl Curve {
    pub fn new(job: &TrainingJob, points: &[MetricsPoint]) -> Curve {
        Curve {
            job: job.id,
            running: job.status == JobStatus::Running,
            step: job.current_step.max(points.last().map_or(0, |p| p.step)),
            validation: points
                .iter()
                .filter_map(|p| {
                    p.validation_loss
                        .filter(|v| v.is_finite())
                        .map(|v| (p.step, v))
                })
                .collect(),
        }
    }

    /// Its validation loss at `step`: the last measured at or before it.
    fn at(&self, step: u64) -> Option<f64> {
        self.validation
            .iter()
            .rev()
            .find(|(s, _)| *s <= step)
            .map(|(_, v)| *v)
    }
}

/// The running runs to stop, with the reason for each: the latest validation loss of a run
/// against the median of its siblings that have reached that step (at least two of them).
pub(crate) fn laggards(curves: &[Curve], margin: f64) -> Vec<(JobId, String)> {
    let mut out = Vec::new();
    for c in curves.iter().filter(|c| c.running) {
        let Some(&(step, loss)) = c.validation.last() else {
            continue;
        };
        let mut siblings: Vec<f64> = curves
            .iter()
            .filter(|o| o.job != c.job && o.step >= step)
            .filter_map(|o| o.at(step))
            .collect();
        if siblings.len() < 2 {
            continue;
        }
        siblings.sort_by(f64::total_cmp);
        let n = siblings.len();
        let median = if n % 2 == 1 {
            siblings[n / 2]
        } else {
            (siblings[n / 2 - 1] + siblings[n / 2]) / 2.0
        };
        if loss > median * (1.0 + margin) {
            out.push((
                c.job,
                format!(
                    "stopped by its sweep: validation loss {loss:.4} at step {step} is {:.0}% worse than the median of its {n} siblings ({median:.4}); --stop-worse {:.0}%",
                    (loss / median - 1.0) * 100.0,
                    margin * 100.0
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(n: u128, running: bool, step: u64, validation: &[(u64, f64)]) -> Curve {
        Curve {
            job: JobId(uuid::Uuid::from_u128(n)),
            running,
            step,
            validation: validation.to_vec(),
        }
    }

    #[test]
    fn a_run_worse_than_the_median_by_the_margin_is_stopped_with_the_reason() {
        let curves = [
            curve(1, true, 40, &[(20, 2.0), (40, 1.9)]),
            curve(2, false, 100, &[(20, 1.5), (40, 1.0)]),
            curve(3, true, 40, &[(20, 1.4), (40, 1.1)]),
            curve(4, true, 60, &[(20, 1.6), (40, 1.2), (60, 1.0)]),
        ];
        let stopped = laggards(&curves, 0.1);
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        assert_eq!(stopped[0].0, curves[0].job);
        assert!(
            stopped[0].1.contains("1.9000 at step 40"),
            "{}",
            stopped[0].1
        );
        assert!(
            stopped[0].1.contains("median of its 3 siblings (1.1000)"),
            "{}",
            stopped[0].1
        );
        // A wide margin lets it run.
        assert!(laggards(&curves, 1.0).is_empty());
    }

    #[test]
    fn a_run_with_too_few_siblings_at_its_step_runs_on() {
        let curves = [
            curve(1, true, 40, &[(40, 5.0)]),
            curve(2, true, 20, &[(20, 1.0)]),
            curve(3, true, 40, &[(40, 1.0)]),
        ];
        // Only one sibling has reached step 40.
        assert!(laggards(&curves, 0.1).is_empty());
        // A finished run is never stopped.
        let done = [
            curve(1, false, 40, &[(40, 5.0)]),
            curve(2, true, 40, &[(40, 1.0)]),
            curve(3, true, 40, &[(40, 1.0)]),
        ];
        assert!(laggards(&done, 0.1).iter().all(|(j, _)| *j != done[0].job));
    }
}
