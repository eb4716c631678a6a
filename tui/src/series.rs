//! Per-job metric series, kept as columns, and the downsampling that lets a chart of a million
//! points draw as fast as one of a hundred: the chart is given at most two points (the min and
//! the max) per horizontal bucket, and sparklines one value per column.
//!
//! A preference run (DPO, ORPO, SimPO, KTO) also logs its rewards, their margin, the reward
//! accuracy and (KTO) the KL estimate: those columns exist only once a point has brought one,
//! so a supervised run's series costs no more than before.

use brightrun_api::domain::MetricsPoint;

/// The charted metrics, in column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    TrainingLoss = 0,
    ValidationLoss = 1,
    LearningRate = 2,
    GradientNorm = 3,
    Throughput = 4,
    GpuUtilization = 5,
    /// A preference run's implicit reward of the chosen (KTO: desirable) replies.
    RewardsChosen = 6,
    /// … of the rejected (KTO: undesirable) replies.
    RewardsRejected = 7,
    RewardMargin = 8,
    /// The share of pairs whose chosen reward is above the rejected one (0..=1); none for KTO.
    RewardAccuracy = 9,
    /// KTO's KL estimate between the policy and the reference.
    Kl = 10,
}

/// The columns every run has (losses, learning rate, gradient norm, throughput, GPU).
pub const BASE_COLUMNS: usize = 6;
/// With the preference columns.
const COLUMNS: usize = 11;

/// Rows per summary block. Downsampling reads block summaries instead of rows, so a chart of
/// a million points costs ~16,000 block reads, and appending a point updates one block.
pub const BLOCK: usize = 64;

/// Min, max (with their rows), sum and count of the finite values of one block of one column.
#[derive(Clone, Copy, Debug)]
struct BlockStat {
    min: f32,
    min_at: u32,
    max: f32,
    max_at: u32,
    sum: f64,
    count: u32,
}

impl Default for BlockStat {
    fn default() -> Self {
        BlockStat {
            min: f32::INFINITY,
            min_at: u32::MAX,
            max: f32::NEG_INFINITY,
            max_at: u32::MAX,
            sum: 0.0,
            count: 0,
        }
    }
}

impl BlockStat {
    fn add(&mut self, i: usize, v: f32) {
        // NaN compares false both ways: missing values are skipped.
        if v < self.min {
            self.min = v;
            self.min_at = i as u32;
        }
        if v > self.max {
            self.max = v;
            self.max_at = i as u32;
        }
        if v.is_finite() {
            self.sum += v as f64;
            self.count += 1;
        }
    }
}

/// A job's metrics, one row per logged step, ordered by step. Missing values are NaN.
#[derive(Clone, Debug, Default)]
pub struct Series {
    steps: Vec<u64>,
    cols: [Vec<f32>; COLUMNS],
    /// Per column, a summary of every `BLOCK` rows (the last one partial).
    blocks: [Vec<BlockStat>; COLUMNS],
    /// Blocks from this one on must be rebuilt (after an insert in the middle).
    stale_from: usize,
    /// Bumped on every change, so caches know when to recompute.
    version: u64,
    /// Whether a point brought preference figures: until then the preference columns (and
    /// their blocks) are empty and every loop stops at [`BASE_COLUMNS`].
    preference: bool,
}

fn val(v: Option<f64>) -> f32 {
    match v {
        Some(x) if x.is_finite() => x as f32,
        _ => f32::NAN,
    }
}

impl Series {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_points(points: &[MetricsPoint]) -> Self {
        let mut s = Series::new();
        s.insert(points);
        s
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn steps(&self) -> &[u64] {
        &self.steps
    }

    /// Whether any point brought preference figures (a preference run's series).
    pub fn has_preference(&self) -> bool {
        self.preference
    }

    /// The columns in use: the preference ones only once there is one.
    fn active(&self) -> usize {
        if self.preference {
            COLUMNS
        } else {
            BASE_COLUMNS
        }
    }

    /// Starts the preference columns: missing (NaN) for every row so far, with blocks to
    /// match.
    fn start_preference(&mut self) {
        if self.preference {
            return;
        }
        self.preference = true;
        let n = self.steps.len();
        let built = self.blocks[0].len();
        for c in BASE_COLUMNS..COLUMNS {
            self.cols[c] = vec![f32::NAN; n];
            self.blocks[c] = vec![BlockStat::default(); built];
        }
    }

    /// A column's values (empty for a preference column of a run without any).
    pub fn column(&self, m: Metric) -> &[f32] {
        &self.cols[m as usize]
    }

    pub fn last_step(&self) -> Option<u64> {
        self.steps.last().copied()
    }

    /// Adds points. Steps past the end are appended (the common case, O(1) each); a step seen
    /// before is replaced (a replayed event never duplicates a point); an earlier unseen step is
    /// inserted in order.
    pub fn insert(&mut self, points: &[MetricsPoint]) {
        if points.is_empty() {
            return;
        }
        self.version += 1;
        for p in points {
            let pref = p.preference.as_ref();
            if pref.is_some() {
                self.start_preference();
            }
            let pv = |f: fn(&brightrun_api::domain::PreferenceMetrics) -> Option<f64>| {
                val(pref.and_then(f))
            };
            let row = [
                val(p.training_loss),
                val(p.validation_loss),
                val(p.learning_rate),
                val(p.gradient_norm),
                val(p.throughput),
                val(p.gpu_utilization),
                pv(|m| m.rewards_chosen),
                pv(|m| m.rewards_rejected),
                pv(|m| m.reward_margin),
                pv(|m| m.reward_accuracy),
                pv(|m| m.kl),
            ];
            self.put(p.step, row);
        }
    }

    /// Appends, replaces or inserts one row (see [`Series::insert`]).
    fn put(&mut self, step: u64, row: [f32; COLUMNS]) {
        let active = self.active();
        match self.steps.last() {
            Some(&last) if step <= last => match self.steps.binary_search(&step) {
                Ok(i) => {
                    for (c, v) in self.cols[..active].iter_mut().zip(row) {
                        c[i] = v;
                    }
                    self.invalidate_from(i);
                }
                Err(i) => {
                    self.steps.insert(i, step);
                    for (c, v) in self.cols[..active].iter_mut().zip(row) {
                        c.insert(i, v);
                    }
                    self.invalidate_from(i);
                }
            },
            _ => self.push(step, row),
        }
    }

    fn push(&mut self, step: u64, row: [f32; COLUMNS]) {
        let active = self.active();
        let i = self.steps.len();
        self.steps.push(step);
        for (c, v) in self.cols[..active].iter_mut().zip(row) {
            c.push(v);
        }
        let b = i / BLOCK;
        if b >= self.stale_from {
            return; // rebuilt on the next query
        }
        for (blocks, v) in self.blocks[..active].iter_mut().zip(row) {
            if blocks.len() <= b {
                blocks.push(BlockStat::default());
            }
            blocks[b].add(i, v);
        }
    }

    /// Marks the blocks from row `i` on as needing a rebuild.
    fn invalidate_from(&mut self, i: usize) {
        self.stale_from = self.stale_from.min(i / BLOCK);
    }

    /// Rebuilds stale blocks (only after inserts or replacements before the end).
    fn refresh_blocks(&mut self) {
        let from = self.stale_from;
        let n = self.steps.len();
        let nb = n.div_ceil(BLOCK);
        if from >= nb {
            self.stale_from = usize::MAX;
            for b in &mut self.blocks {
                b.truncate(nb);
            }
            return;
        }
        let active = self.active();
        for (c, blocks) in self.blocks[..active].iter_mut().enumerate() {
            blocks.truncate(from);
            for b in from..nb {
                let mut st = BlockStat::default();
                let lo = b * BLOCK;
                for (k, &v) in self.cols[c][lo..(lo + BLOCK).min(n)].iter().enumerate() {
                    st.add(lo + k, v);
                }
                blocks.push(st);
            }
        }
        self.stale_from = usize::MAX;
    }

    /// Appends raw rows of the base columns (for fixtures and benchmarks): steps must be
    /// increasing.
    pub fn push_row(&mut self, step: u64, row: [f32; BASE_COLUMNS]) {
        debug_assert!(self.steps.last().is_none_or(|l| step > *l));
        self.version += 1;
        let full: [f32; COLUMNS] = std::array::from_fn(|c| row.get(c).copied().unwrap_or(f32::NAN));
        self.push(step, full);
    }

    /// Merges another series in (for a history load that raced with live events).
    pub fn merge(&mut self, newer: &Series) {
        if newer.is_empty() {
            return;
        }
        self.version += 1;
        if newer.preference {
            self.start_preference();
        }
        for i in 0..newer.len() {
            let step = newer.steps[i];
            let row: [f32; COLUMNS] =
                std::array::from_fn(|c| newer.cols[c].get(i).copied().unwrap_or(f32::NAN));
            self.put(step, row);
        }
    }

    /// [`min_max`] over a column, from the block summaries: O(rows / BLOCK) however many rows.
    /// Buckets are whole blocks (sizes differ by at most one block, invisible on a chart).
    pub fn min_max(&mut self, m: Metric, buckets: usize) -> Vec<(f64, f64)> {
        if m as usize >= self.active() {
            return Vec::new();
        }
        let n = self.len();
        let nb = n.div_ceil(BLOCK);
        if buckets == 0 || n <= buckets * 2 || nb < buckets * 2 {
            return min_max(&self.steps, &self.cols[m as usize], buckets);
        }
        self.refresh_blocks();
        let blocks = &self.blocks[m as usize];
        let ys = &self.cols[m as usize];
        let mut out = Vec::with_capacity(buckets * 2);
        for b in 0..buckets {
            let lo = b * nb / buckets;
            let hi = ((b + 1) * nb / buckets).min(nb);
            let mut st = BlockStat::default();
            for blk in &blocks[lo..hi] {
                if blk.min < st.min {
                    st.min = blk.min;
                    st.min_at = blk.min_at;
                }
                if blk.max > st.max {
                    st.max = blk.max;
                    st.max_at = blk.max_at;
                }
            }
            if st.min_at == u32::MAX {
                continue;
            }
            let (a, z) = if st.min_at <= st.max_at {
                (st.min_at, st.max_at)
            } else {
                (st.max_at, st.min_at)
            };
            let (a, z) = (a as usize, z as usize);
            out.push((self.steps[a] as f64, ys[a] as f64));
            if z != a {
                out.push((self.steps[z] as f64, ys[z] as f64));
            }
        }
        out
    }

    /// [`sparkline`] over a column, from the block summaries.
    pub fn sparkline(&mut self, m: Metric, width: usize) -> Vec<Option<u64>> {
        if m as usize >= self.active() {
            return Vec::new();
        }
        let n = self.len();
        let nb = n.div_ceil(BLOCK);
        if width == 0 || nb < width * 2 {
            return sparkline(&self.cols[m as usize], width);
        }
        self.refresh_blocks();
        let blocks = &self.blocks[m as usize];
        let means: Vec<Option<f64>> = (0..width)
            .map(|b| {
                let lo = b * nb / width;
                let hi = ((b + 1) * nb / width).min(nb);
                let (sum, count) = blocks[lo..hi].iter().fold((0f64, 0u64), |(s, c), blk| {
                    (s + blk.sum, c + blk.count as u64)
                });
                (count > 0).then(|| sum / count as f64)
            })
            .collect();
        scale(means)
    }

    /// The latest finite value of a metric.
    pub fn last_value(&self, m: Metric) -> Option<f32> {
        self.cols[m as usize]
            .iter()
            .rev()
            .find(|v| v.is_finite())
            .copied()
    }
}

/// Min/max downsampling: splits the rows into `buckets` equal runs and keeps, per run, the
/// points holding the smallest and the largest finite value, in step order. The shape of the
/// line (every spike and dip) survives; a chart `buckets` cells wide looks the same as with
/// every point. O(n) with no allocation beyond the output.
pub fn min_max(steps: &[u64], ys: &[f32], buckets: usize) -> Vec<(f64, f64)> {
    let n = steps.len().min(ys.len());
    let mut out = Vec::with_capacity(buckets.min(n) * 2);
    if n == 0 || buckets == 0 {
        return out;
    }
    if n <= buckets * 2 {
        for i in 0..n {
            if ys[i].is_finite() {
                out.push((steps[i] as f64, ys[i] as f64));
            }
        }
        return out;
    }
    for b in 0..buckets {
        let lo = b * n / buckets;
        let hi = ((b + 1) * n / buckets).min(n);
        let (mut imin, mut imax) = (usize::MAX, usize::MAX);
        let (mut vmin, mut vmax) = (f32::INFINITY, f32::NEG_INFINITY);
        for (i, &v) in ys[lo..hi].iter().enumerate() {
            // NaN compares false both ways, so missing values are skipped for free.
            if v < vmin {
                vmin = v;
                imin = lo + i;
            }
            if v > vmax {
                vmax = v;
                imax = lo + i;
            }
        }
        if imin == usize::MAX {
            continue;
        }
        let (a, b) = if imin <= imax {
            (imin, imax)
        } else {
            (imax, imin)
        };
        out.push((steps[a] as f64, ys[a] as f64));
        if b != a {
            out.push((steps[b] as f64, ys[b] as f64));
        }
    }
    out
}

/// One value per column for a sparkline: the mean of the finite values in each of `width`
/// equal runs, scaled to 13..=100 between the minimum and the maximum so that small changes
/// stay visible and the minimum still draws the lowest bar. Runs with no value give None.
pub fn sparkline(ys: &[f32], width: usize) -> Vec<Option<u64>> {
    let n = ys.len();
    if n == 0 || width == 0 {
        return Vec::new();
    }
    let buckets = width.min(n);
    let mut means = Vec::with_capacity(buckets);
    for b in 0..buckets {
        let lo = b * n / buckets;
        let hi = ((b + 1) * n / buckets).min(n);
        let (mut sum, mut count) = (0f64, 0u32);
        for &v in &ys[lo..hi] {
            if v.is_finite() {
                sum += v as f64;
                count += 1;
            }
        }
        means.push((count > 0).then(|| sum / count as f64));
    }
    scale(means)
}

/// Scales means to 13..=100 between their minimum and maximum (flat series: 50).
fn scale(means: Vec<Option<f64>>) -> Vec<Option<u64>> {
    let (lo, hi) = means
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = hi - lo;
    means
        .into_iter()
        .map(|m| {
            m.map(|v| {
                if span > 0.0 {
                    13 + ((v - lo) / span * 87.0).round() as u64
                } else {
                    50
                }
            })
        })
        .collect()
}

/// Finite min and max of a column (for chart bounds).
pub fn bounds(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let mut it = points.iter().map(|p| p.1);
    let first = it.next()?;
    let (lo, hi) = it.fold((first, first), |(a, b), v| (a.min(v), b.max(v)));
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brightrun_api::ids::JobId;

    fn point(step: u64, loss: f64) -> MetricsPoint {
        MetricsPoint {
            job_id: JobId::default(),
            timestamp: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            epoch: 0.0,
            step,
            training_loss: Some(loss),
            validation_loss: None,
            learning_rate: Some(1e-4),
            gradient_norm: None,
            throughput: None,
            gpu_utilization: None,
            preference: None,
        }
    }

    #[test]
    fn insert_appends_replaces_and_orders() {
        let mut s = Series::new();
        s.insert(&[point(1, 3.0), point(2, 2.5), point(3, 2.0)]);
        s.insert(&[point(2, 9.0), point(5, 1.0), point(4, 1.5)]);
        assert_eq!(s.steps(), &[1, 2, 3, 4, 5]);
        assert_eq!(s.column(Metric::TrainingLoss), &[3.0, 9.0, 2.0, 1.5, 1.0]);
        assert!(s.column(Metric::ValidationLoss)[0].is_nan());
        let mut other = Series::new();
        other.insert(&[point(5, 0.5), point(6, 0.4)]);
        s.merge(&other);
        assert_eq!(s.steps(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(s.last_value(Metric::TrainingLoss), Some(0.4));
    }

    #[test]
    fn min_max_keeps_extremes_and_bounds_size() {
        let n = 1_000_000u64;
        let steps: Vec<u64> = (0..n).collect();
        let mut ys: Vec<f32> = (0..n).map(|i| i as f32 / n as f32).collect();
        ys[123_456] = 50.0; // a spike must survive
        ys[654_321] = -5.0;
        ys[10] = f32::NAN;
        let out = min_max(&steps, &ys, 200);
        assert!(out.len() <= 400);
        assert!(out.iter().any(|p| p.1 == 50.0));
        assert!(out.iter().any(|p| p.1 == -5.0));
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        // Small inputs pass through (minus missing values).
        let out = min_max(&[1, 2, 3], &[1.0, f32::NAN, 3.0], 100);
        assert_eq!(out, vec![(1.0, 1.0), (3.0, 3.0)]);
    }

    #[test]
    fn block_summaries_match_a_full_scan_and_follow_appends_and_inserts() {
        let mut s = Series::new();
        let n = 200_000u64;
        for i in 0..n {
            let v = ((i * 7919) % 1000) as f32 / 100.0 + if i == 77_777 { 100.0 } else { 0.0 };
            s.push_row(
                i * 2,
                [v, if i % 50 == 0 { v } else { f32::NAN }, v, v, v, v],
            );
        }
        let out = s.min_max(Metric::TrainingLoss, 300);
        assert!(out.len() <= 600);
        assert!(out.iter().any(|p| p.1 >= 100.0), "the spike survives");
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        // Same extremes as the row-by-row downsampling.
        let full = min_max(s.steps(), s.column(Metric::TrainingLoss), 300);
        let ext = |v: &[(f64, f64)]| {
            v.iter()
                .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)))
        };
        assert_eq!(ext(&out), ext(&full));
        // Appends update the last block; a spike appended later shows at once.
        s.insert(&[MetricsPoint {
            step: n * 2 + 10,
            training_loss: Some(500.0),
            ..point(0, 0.0)
        }]);
        assert!(
            s.min_max(Metric::TrainingLoss, 300)
                .iter()
                .any(|p| p.1 == 500.0)
        );
        // A replacement in the middle rebuilds the blocks from there.
        s.insert(&[MetricsPoint {
            step: 1000,
            training_loss: Some(-9.0),
            ..point(0, 0.0)
        }]);
        assert!(
            s.min_max(Metric::TrainingLoss, 300)
                .iter()
                .any(|p| p.1 == -9.0)
        );
        let spark = s.sparkline(Metric::Throughput, 50);
        assert_eq!(spark.len(), 50);
        assert!(spark.iter().all(|v| v.is_some()));
    }

    #[test]
    fn preference_columns_start_with_the_first_preference_point() {
        use brightrun_api::domain::PreferenceMetrics;
        let pref = |step: u64, acc: f64| MetricsPoint {
            preference: Some(PreferenceMetrics {
                rewards_chosen: Some(1.0),
                rewards_rejected: Some(-1.0),
                reward_margin: Some(2.0),
                reward_accuracy: Some(acc),
                ..Default::default()
            }),
            ..point(step, 0.5)
        };
        let mut s = Series::new();
        // Many SFT-shaped rows first: the preference columns stay empty.
        let early: Vec<MetricsPoint> = (1..=300).map(|i| point(i, 1.0)).collect();
        s.insert(&early);
        assert!(!s.has_preference());
        assert!(s.column(Metric::RewardAccuracy).is_empty());
        assert!(s.min_max(Metric::RewardAccuracy, 10).is_empty());
        assert!(s.sparkline(Metric::Kl, 10).is_empty());
        assert_eq!(s.last_value(Metric::RewardMargin), None);
        // Then preference points: the earlier rows are missing, the new ones chart.
        let later: Vec<MetricsPoint> = (301..=600).map(|i| pref(i, i as f64 / 600.0)).collect();
        s.insert(&later);
        assert!(s.has_preference());
        assert_eq!(s.column(Metric::RewardAccuracy).len(), 600);
        assert!(s.column(Metric::RewardAccuracy)[0].is_nan());
        assert_eq!(s.last_value(Metric::RewardAccuracy), Some(1.0));
        let out = s.min_max(Metric::RewardAccuracy, 4);
        assert!(!out.is_empty() && out.iter().all(|p| p.0 > 300.0));
        assert!(s.column(Metric::Kl).iter().all(|v| v.is_nan()));
        // A replayed step replaces its preference figures too; a merge keeps them.
        s.insert(&[pref(450, 0.0)]);
        assert_eq!(s.column(Metric::RewardAccuracy)[449], 0.0);
        let mut other = Series::new();
        other.insert(&[point(1, 2.0)]);
        other.merge(&s);
        assert!(other.has_preference());
        assert_eq!(other.len(), 600);
        assert_eq!(other.column(Metric::RewardAccuracy)[449], 0.0);
        assert_eq!(
            other.min_max(Metric::RewardMargin, 4).first().map(|p| p.1),
            Some(2.0)
        );
    }

    #[test]
    fn sparkline_scales_and_marks_gaps() {
        let s = sparkline(&[1.0, 2.0, f32::NAN, 3.0], 4);
        assert_eq!(s, vec![Some(13), Some(57), None, Some(100)]);
        assert_eq!(sparkline(&[2.0; 10], 5), vec![Some(50); 5]);
        assert!(sparkline(&[], 5).is_empty());
    }
}
