//! How a run would leave the month's spend, so the estimate can warn before money is spent
//! and job creation can ask for an explicit confirmation when the budget would be exceeded.
//! The budget is optional (`[budget] monthly_usd`); without one there is no effect to show.

use crate::config::BudgetConfig;
use serde::{Deserialize, Serialize};

/// The month's spend before and after one run, against the monthly budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetEffect {
    /// US dollars per calendar month.
    pub monthly_budget: f64,
    /// What this month's records already add up to.
    pub spent_this_month: f64,
    /// `spent_this_month` plus this run's estimated cost.
    pub after_this_run: f64,
    /// `after_this_run` as a percentage of the budget. With a budget of 0 any spending is
    /// infinitely over it: `f64::INFINITY` (serialised as `null` in JSON).
    pub percent_after: f64,
    /// The run would take the month over its budget: creating it needs confirmation.
    pub exceeds: bool,
    /// The run would take the month from under 80% of its budget to 80% or more: the point
    /// where DESIGN.md's first budget alert fires.
    pub crosses_80_percent: bool,
}

/// The alert threshold of DESIGN.md (high priority at 80%, critical at 100%).
pub const ALERT_SHARE: f64 = 0.8;

/// `None` when no budget is configured. Negative inputs are treated as 0 (a refund does not
/// make room for more than the budget).
pub fn budget_effect(
    cfg: &BudgetConfig,
    spent_this_month: f64,
    estimated_cost: f64,
) -> Option<BudgetEffect> {
    let budget = cfg.monthly_usd?.max(0.0);
    let spent = spent_this_month.max(0.0);
    let after = spent + estimated_cost.max(0.0);
    let percent_after = if budget > 0.0 {
        100.0 * after / budget
    } else if after > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let threshold = ALERT_SHARE * budget;
    Some(BudgetEffect {
        monthly_budget: budget,
        spent_this_month: spent,
        after_this_run: after,
        percent_after,
        exceeds: after > budget,
        crosses_80_percent: spent < threshold && after >= threshold,
    })
}
