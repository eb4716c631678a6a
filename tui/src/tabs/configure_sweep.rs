//! Sweeps from the Configure tab: a number field may hold a comma-separated list
//! (`1e-4,5e-5`), and then the form asks for a sweep, one run per combination of the lists.
//! Its own two rows (runs at once, budget) appear; the estimate pane shows the first run's
//! estimate; submitting asks the engine for the whole plan, and the plan (each run's cost and
//! fit, the total cost and time, the budgets) is what the user confirms, as a job's estimate
//! is for one job.

use super::configure::ConfigureTab;
use crate::context::{Cause, Confirmed, Overlay, Shared};
use crate::effect::{Effect, Level};
use crate::format;
use crate::sanitize::one_line;
use brightrun_api::ApiError;
use brightrun_api::domain::{
    Hyperparameters, MAX_SWEEP_PARALLEL, MAX_SWEEP_RUNS, SweepAxis, SweepPlan, SweepSpec,
};
use brightrun_api::training::ranges::{self, FIELDS, FieldKind};

/// Runs at once when the user does not say.
pub const DEFAULT_MAX_PARALLEL: u32 = 2;

/// Runs the confirmation lists one by one; more are summed up in a line (it must fit 80×24).
const SHOWN_RUNS: usize = 8;

/// Fields a list can sweep: the numbers. (`target_modules` is itself a comma-separated list;
/// choices and switches are picked, not typed.)
pub fn listable(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Float | FieldKind::Integer | FieldKind::OptionalInteger
    )
}

/// The values of a typed list (`1e-4, 5e-5`), or none when the text is one value.
pub fn list_values(text: &str) -> Option<Vec<String>> {
    text.contains(',').then(|| {
        text.split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// What is wrong with a list for field `name` over `hp`, checked value by value as the
/// engine checks one run: at least two values, none twice, each in range.
pub fn list_error(hp: &Hyperparameters, name: &str, values: &[String]) -> Option<String> {
    if values.len() < 2 {
        return Some(format!(
            "{name}: give two values or more, separated by commas, to sweep it"
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Some(format!("{name} lists {v} twice"));
        }
        let mut one = hp.clone();
        if let Err(e) = ranges::set(&mut one, name, v) {
            return Some(e.to_string());
        }
        if let Err(errs) = ranges::check(&one)
            && let Some(e) = errs.into_iter().find(|e| e.field == name)
        {
            return Some(e.to_string());
        }
    }
    None
}

/// A budget as typed: empty is none; `$` and spaces are allowed.
fn parse_budget(text: &str) -> Result<Option<f64>, String> {
    let t = text.trim().trim_start_matches('$').trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        _ => Err(format!(
            "sweep_budget = {text:?} is not an amount in US dollars (empty: none)"
        )),
    }
}

impl ConfigureTab {
    /// The list field `i` holds, when it can sweep and holds one. A method's own numbers
    /// (`beta`, …) sweep like the others while that method is chosen; another method's
    /// fields are not the run's, so they never do.
    pub fn list_at(&self, i: usize) -> Option<Vec<String>> {
        if !listable(FIELDS[i].kind) || self.values[i] == self.base_values[i] || !self.applies(i) {
            return None;
        }
        list_values(&self.values[i])
    }

    /// Field `i`'s value as one run takes it: a list's first value.
    pub fn field_value(&self, i: usize) -> String {
        match self.list_at(i) {
            Some(values) => values.into_iter().next().unwrap_or_default(),
            None => self.values[i].trim().to_string(),
        }
    }

    /// The fields that hold lists, with their values, in the form's order.
    pub fn listed(&self) -> Vec<(usize, Vec<String>)> {
        (0..FIELDS.len())
            .filter_map(|i| self.list_at(i).map(|v| (i, v)))
            .collect()
    }

    /// Whether the form asks for a sweep (a field holds a list).
    pub fn is_sweep(&self) -> bool {
        (0..FIELDS.len()).any(|i| self.list_at(i).is_some())
    }

    /// How many runs the lists make (their product).
    fn run_count(&self) -> usize {
        self.listed().iter().map(|(_, v)| v.len().max(1)).product()
    }

    /// Checks the sweep's own rows and its size (part of [`ConfigureTab::recheck`]).
    pub(super) fn check_sweep(&mut self) {
        self.max_parallel_error = None;
        self.sweep_budget_error = None;
        if !self.is_sweep() {
            return;
        }
        self.max_parallel_error = match self.max_parallel.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_SWEEP_PARALLEL).contains(&n) => None,
            _ => Some(format!(
                "max_parallel = {:?} is not a whole number from 1 to {MAX_SWEEP_PARALLEL}",
                self.max_parallel
            )),
        };
        self.sweep_budget_error = parse_budget(&self.sweep_budget).err();
        let runs = self.run_count();
        if runs > MAX_SWEEP_RUNS
            && let Some((last, _)) = self.listed().last()
            && self.errors[*last].is_none()
        {
            self.errors[*last] = Some(format!(
                "{} make {runs} runs: a sweep runs at most {MAX_SWEEP_RUNS}",
                self.swept_keys().join(" × ")
            ));
        }
    }

    fn swept_keys(&self) -> Vec<&'static str> {
        self.listed().iter().map(|(i, _)| FIELDS[*i].name).collect()
    }

    /// `←`/`→` on max_parallel: one fewer or more, within 1 and the engine's most.
    pub(super) fn step_max_parallel(&mut self, up: bool) {
        let n = self
            .max_parallel
            .trim()
            .parse::<u32>()
            .unwrap_or(DEFAULT_MAX_PARALLEL);
        let n = if up { n + 1 } else { n.saturating_sub(1) };
        self.max_parallel = n.clamp(1, MAX_SWEEP_PARALLEL).to_string();
    }

    /// The estimate pane's line about the sweep: `4 runs of learning_rate × lora_rank, 2 at
    /// a time`.
    pub(super) fn sweep_line(&self) -> Option<String> {
        if !self.is_sweep() {
            return None;
        }
        Some(format!(
            "{} of {}, {} at a time",
            format::plural(self.run_count() as u64, "run"),
            self.swept_keys().join(" × "),
            self.max_parallel.trim()
        ))
    }

    /// The sweep the form asks for: the job as for one run, less the listed fields, which
    /// become the grid's axes (keyed by their `--set` names).
    pub fn sweep_spec(&self) -> Option<SweepSpec> {
        let draft = self.draft()?;
        let listed = self.listed();
        let mut job = draft.to_spec();
        job.sets
            .retain(|(k, _)| !listed.iter().any(|(i, _)| FIELDS[*i].name == k));
        Some(SweepSpec {
            job,
            grid: listed
                .into_iter()
                .map(|(i, values)| SweepAxis {
                    key: FIELDS[i].name.to_string(),
                    values,
                })
                .collect(),
            max_parallel: self
                .max_parallel
                .trim()
                .parse()
                .unwrap_or(DEFAULT_MAX_PARALLEL),
            budget: parse_budget(&self.sweep_budget).ok().flatten(),
            ..Default::default()
        })
    }

    /// Submitting a sweep: the engine is asked for its plan, whose answer opens the
    /// confirmation ([`ConfigureTab::sweep_planned`]).
    pub(super) fn plan(&mut self, s: &mut Shared) -> Vec<Effect> {
        let Some(spec) = self.sweep_spec() else {
            s.notify_user("choose a ready dataset first", Level::Warning);
            return Vec::new();
        };
        let request = s.request_id();
        self.planning = Some(request);
        s.notify_about(
            Cause::SweepPlan,
            format!(
                "planning the sweep ({})…",
                format::plural(self.run_count() as u64, "run")
            ),
            Level::Info,
        );
        vec![Effect::PlanSweep { request, spec }]
    }

    /// The engine's plan of the sweep asked for last: the confirmation shows it (an older
    /// request's answer is dropped). What the engine refused is said with its message.
    pub fn sweep_planned(
        &mut self,
        request: u64,
        spec: SweepSpec,
        result: Result<Box<SweepPlan>, ApiError>,
        s: &mut Shared,
    ) {
        if self.planning != Some(request) {
            return;
        }
        self.planning = None;
        if s.message
            .as_ref()
            .is_some_and(|m| m.cause == Some(Cause::SweepPlan))
        {
            s.message = None;
        }
        let plan = match result {
            Ok(plan) => clean_plan(*plan),
            Err(e) => {
                s.notify_user(format!("could not plan the sweep: {e}"), Level::Error);
                return;
            }
        };
        if let Some(b) = plan.budget
            && !plan.runs.is_empty()
            && plan.over_sweep_budget as usize == plan.runs.len()
        {
            s.notify_user(
                format!(
                    "the sweep's budget of {} does not cover its first run (about {}): raise sweep_budget",
                    format::money(b),
                    format::money(plan.runs[0].estimate.estimated_cost)
                ),
                Level::Error,
            );
            return;
        }
        let over_budget = plan.exceeds_monthly_budget;
        s.overlay = Some(Overlay::Confirm {
            title: if over_budget {
                "Over budget: start sweep?".into()
            } else {
                "Start sweep?".into()
            },
            lines: self.plan_lines(&plan, &spec, s),
            on_yes: Confirmed::CreateSweep {
                spec: Box::new(spec),
                over_budget,
            },
        });
    }

    /// The confirmation's text: what runs where, each run's values, cost, time and fit, the
    /// totals at the parallelism, and the budgets.
    fn plan_lines(&self, plan: &SweepPlan, spec: &SweepSpec, s: &Shared) -> Vec<String> {
        let dataset = self
            .draft()
            .map(|d| s.dataset_name(d.dataset_id))
            .unwrap_or_default();
        let hardware = self
            .draft()
            .map(|d| self.hardware_wording(&d, &s.settings.config))
            .unwrap_or_default();
        let mut lines = vec![format!(
            "Sweep “{}” on {dataset}: {}, {} at a time, preset {}{}{} on {hardware}.",
            plan.name,
            format::plural(plan.runs.len() as u64, "run"),
            plan.max_parallel,
            spec.job.preset,
            self.base_model_wording(),
            self.start_model_wording(),
        )];
        lines.extend(run_lines(plan));
        lines.push(format!(
            "Total about {}, {} with {} at a time.",
            format::money(plan.total_cost),
            format::duration_secs((plan.total_duration_hours * 3600.0).round() as i64),
            plan.max_parallel
        ));
        lines.extend(budget_lines(plan));
        lines.push("Start the sweep?".into());
        lines
    }
}

/// The plan's text cleaned of control sequences (it names what the user typed).
fn clean_plan(mut plan: SweepPlan) -> SweepPlan {
    plan.name = one_line(&plan.name).into_owned();
    for r in &mut plan.runs {
        for (_, v) in &mut r.sets {
            *v = one_line(v).into_owned();
        }
    }
    plan
}

/// One line per run (the first [`SHOWN_RUNS`], the rest summed up), after a line naming the
/// swept keys: its values in columns, cost, time and memory fit.
fn run_lines(plan: &SweepPlan) -> Vec<String> {
    let widths: Vec<usize> = (0..plan.keys.len())
        .map(|k| {
            plan.runs
                .iter()
                .filter_map(|r| r.sets.get(k))
                .map(|(_, v)| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    // Values past this are cut: the line must fit the dialog with its figures.
    let values_w = widths.iter().map(|w| w + 2).sum::<usize>().min(24);
    let mut lines = vec![format!(
        "Each run ({}): cost, time, GPU memory",
        plan.keys.join(" · ")
    )];
    let shown = if plan.runs.len() <= SHOWN_RUNS {
        plan.runs.len()
    } else {
        SHOWN_RUNS - 2
    };
    for (n, r) in plan.runs.iter().take(shown).enumerate() {
        let values: String = r
            .sets
            .iter()
            .zip(&widths)
            .map(|((_, v), w)| format!("{v:<w$}  "))
            .collect();
        let e = &r.estimate;
        lines.push(format!(
            "{:>2}  {:<values_w$}{:>7} {:>7}  {} {:.0}/{:.0} GB",
            n + 1,
            format::truncate(&values, values_w),
            format::money(e.estimated_cost),
            format::duration_secs((e.estimated_duration_hours * 3600.0).round() as i64),
            e.fit.verdict.label(),
            e.fit.required_gb,
            e.fit.available_gb,
        ));
    }
    let rest = &plan.runs[shown..];
    if !rest.is_empty() {
        let costs = rest.iter().map(|r| r.estimate.estimated_cost);
        let low = costs.clone().fold(f64::INFINITY, f64::min);
        let high = costs.fold(0.0, f64::max);
        lines.push(format!(
            "    … and {} more, {} to {} each",
            format::plural(rest.len() as u64, "run"),
            format::money(low),
            format::money(high)
        ));
    }
    lines
}

/// The month's spend with the sweep against the monthly budget, the sweep's own budget, and
/// runs whose configuration does not fit the GPU.
fn budget_lines(plan: &SweepPlan) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(month) = plan.monthly_budget {
        let after = plan.spent_this_month + plan.total_cost;
        lines.push(format!(
            "{} → {} of {} this month ({:.0}%).",
            format::money(plan.spent_this_month),
            format::money(after),
            format::money(month),
            if month > 0.0 {
                after / month * 100.0
            } else {
                0.0
            }
        ));
    }
    if plan.exceeds_monthly_budget {
        lines.push("All its runs together take the month OVER its budget.".into());
    }
    if let Some(b) = plan.budget {
        lines.push(if plan.over_sweep_budget > 0 {
            format!(
                "Sweep budget {}: the last {} would not start.",
                format::money(b),
                format::plural(plan.over_sweep_budget as u64, "run")
            )
        } else {
            format!("Sweep budget {}: every run fits in it.", format::money(b))
        });
    }
    if plan.not_fitting > 0 {
        lines.push(format!(
            "{} not fit the GPU's memory: {} would fail.",
            match plan.not_fitting {
                1 => "1 run does".to_string(),
                n => format!("{n} runs do"),
            },
            if plan.not_fitting == 1 { "it" } else { "they" }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_budgets_read_as_typed() {
        assert_eq!(list_values("1e-4"), None);
        assert_eq!(
            list_values(" 1e-4, 5e-5 ,"),
            Some(vec!["1e-4".to_string(), "5e-5".to_string()])
        );
        assert_eq!(parse_budget(""), Ok(None));
        assert_eq!(parse_budget(" $40 "), Ok(Some(40.0)));
        assert!(parse_budget("0").is_err() && parse_budget("lots").is_err());
        assert!(listable(FieldKind::Float) && listable(FieldKind::OptionalInteger));
        assert!(!listable(FieldKind::List) && !listable(FieldKind::Text));
    }
}
