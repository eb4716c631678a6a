//! The artifact quality score of DESIGN.md (the seed's), from the first and last training
//! loss and the final validation loss: a 1–5 score people can sort models by, a convergence
//! label and the perplexity.

use crate::domain::{Convergence, Evaluation, QualityMetrics};

/// Validation loss this far above the final training loss means the adapter memorised the
/// training set rather than learning from it.
pub const OVERFIT_GAP: f64 = 0.5;

/// Score from loss reduction, first → last training loss, in percent: strictly more than
/// each threshold earns its score.
pub const SCORE_TABLE: [(f64, u8); 4] = [(50.0, 5), (30.0, 4), (15.0, 3), (5.0, 2)];

/// Reductions within this many percentage points of a threshold count as on it, so that
/// 2.0 → 1.4 (30% on paper, 30.000000000000004 in floating point) is not "more than 30%".
const THRESHOLD_EPSILON: f64 = 1e-9;

/// The score when nothing is known.
pub const UNKNOWN_SCORE: u8 = 3;

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|v| v.is_finite())
}

/// What a score rests on, in words, for a notification or a line of output: "quality score
/// 2/5 (training loss down 12%)" rather than a convergence label beside the score, which read
/// as praise ("2/5 (Good)").
pub fn explain(q: &QualityMetrics, evaluation: Option<&Evaluation>) -> String {
    let held_out = evaluation.and_then(Evaluation::held_out_improvement);
    let mut out = match (held_out, q.loss_reduction_percent) {
        (Some(h), _) if h >= 0.0 => format!("held-out loss {h:.0}% below the base model's"),
        (Some(h), _) => format!("held-out loss {:.0}% above the base model's", -h),
        (None, Some(r)) if r >= 0.0 => format!("training loss down {r:.0}%"),
        (None, Some(r)) => format!("training loss up {:.0}%", -r),
        (None, None) => "no training loss to judge by".to_string(),
    };
    if q.convergence == Convergence::Overfit {
        out.push_str("; validation loss well above it: overfitting");
    }
    out
}

/// Scores an artifact.
///
/// - Loss reduction `(first − last) / first × 100` maps through [`SCORE_TABLE`]
///   (> 50% → 5, > 30% → 4, > 15% → 3, > 5% → 2, else 1). It needs both training losses and
///   a positive first loss; otherwise the score is 3 and convergence `Unknown`.
/// - Overfitting (validation loss more than 0.5 above the last training loss) costs one
///   point, "not below 2": a score of 3–5 drops by one, while a 2 stays 2 and a 1 stays 1 —
///   the rule limits the penalty, it never raises a bad score to 2.
/// - Convergence is `Overfit` as above, `Good` when training loss went down by more than 5%
///   (a score of 2 or more) and validation loss (if any) followed it, else `Unknown` (a loss
///   that did not go down, or barely did, is not good convergence: a "1/5 · good" would
///   contradict itself).
/// - Perplexity is `exp(final validation loss)`, when there is one and it is finite.
///
/// Non-finite losses (NaN from a diverged run) count as missing.
pub fn quality(
    first_train_loss: Option<f64>,
    last_train_loss: Option<f64>,
    final_val_loss: Option<f64>,
) -> QualityMetrics {
    let first = finite(first_train_loss);
    let last = finite(last_train_loss);
    let val = finite(final_val_loss);
    let perplexity = val.map(f64::exp).filter(|p| p.is_finite());
    let reduction = match (first, last) {
        (Some(f), Some(l)) if f > 0.0 => Some((f - l) / f * 100.0),
        _ => None,
    };
    let overfit = matches!((val, last), (Some(v), Some(l)) if v - l > OVERFIT_GAP);
    let (mut score, mut convergence) = match reduction {
        None => (UNKNOWN_SCORE, Convergence::Unknown),
        Some(r) => {
            let score = SCORE_TABLE
                .iter()
                .find(|(threshold, _)| r > *threshold + THRESHOLD_EPSILON)
                .map_or(1, |(_, s)| *s);
            // A loss that barely moved (score 1) is not good convergence either.
            let convergence = if score >= 2 {
                Convergence::Good
            } else {
                Convergence::Unknown
            };
            (score, convergence)
        }
    };
    if overfit {
        convergence = Convergence::Overfit;
        if score > 2 {
            score -= 1;
        }
    }
    QualityMetrics {
        final_training_loss: last,
        final_validation_loss: val,
        initial_training_loss: first,
        loss_reduction_percent: reduction,
        perplexity,
        convergence,
        quality_score: score,
    }
}

/// The score of a model whose run measured the base model on the same held-out tokens
/// (`[evaluation]`): the held-out improvement over the base, `(base − adapter) / base × 100`,
/// goes through [`SCORE_TABLE`] in place of the training-loss reduction, since it rewards what
/// generalises where the training loss also rewards memorising. An adapter worse than its base
/// on held-out data is `Overfit` with a score of 1. The overfitting gap of [`quality`] still
/// costs a point (not below 2). Without both held-out losses: [`quality`] as it is.
pub fn quality_with(
    first_train_loss: Option<f64>,
    last_train_loss: Option<f64>,
    final_val_loss: Option<f64>,
    evaluation: Option<&Evaluation>,
) -> QualityMetrics {
    let mut q = quality(first_train_loss, last_train_loss, final_val_loss);
    let Some(improvement) = evaluation.and_then(Evaluation::held_out_improvement) else {
        return q;
    };
    let gap_overfit = q.convergence == Convergence::Overfit;
    let mut score = score_for(improvement);
    q.convergence = if improvement < 0.0 {
        score = 1;
        Convergence::Overfit
    } else if gap_overfit {
        if score > 2 {
            score -= 1;
        }
        Convergence::Overfit
    } else if score >= 2 {
        Convergence::Good
    } else {
        Convergence::Unknown
    };
    q.quality_score = score;
    q
}

/// [`SCORE_TABLE`]'s score for a reduction in percent.
fn score_for(reduction: f64) -> u8 {
    SCORE_TABLE
        .iter()
        .find(|(threshold, _)| reduction > *threshold + THRESHOLD_EPSILON)
        .map_or(1, |(_, s)| *s)
}
