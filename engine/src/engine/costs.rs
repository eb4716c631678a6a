//! Costs: a job's compute record, and its flat storage charge for keeping the model (the
//! estimate's `storage` line), are written when it ends (lifecycle.rs); the storage of
//! datasets and of stored checkpoints is accrued per GB-month here; summaries and budget alerts read the records.

use super::notify::notify;
use super::{Engine, Result};
use crate::domain::*;
use crate::ids::*;
use crate::storage::Bucket;
use crate::store::Page;
pub use brightrun_api::reports::{BudgetStatus, CostSummary, JobCost, Period};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// The seed's billing period, `YYYY-MM`.
pub(crate) fn billing_period(t: &Timestamp) -> String {
    t.format("%Y-%m").to_string()
}

fn month_start(t: &Timestamp) -> Timestamp {
    Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(*t)
}

impl Engine {
    /// This calendar month's spending: recorded costs plus what running jobs cost so far.
    pub fn spent_this_month(&self) -> Result<f64> {
        Ok(self.recorded_this_month()? + self.running_costs()?)
    }

    fn recorded_this_month(&self) -> Result<f64> {
        let start = month_start(&now());
        Ok(self.records_since(start)?.iter().map(|r| r.amount).sum())
    }

    fn running_costs(&self) -> Result<f64> {
        let mut sum = 0.0;
        for status in [JobStatus::Initializing, JobStatus::Running] {
            sum += self
                .jobs(Some(status), Page::ALL)?
                .iter()
                .map(|j| j.current_cost)
                .sum::<f64>();
        }
        Ok(sum)
    }

    fn records_since(&self, since: Timestamp) -> Result<Vec<CostRecord>> {
        // Newest first: stop at the first record older than `since`.
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .inner
                .store
                .cost_records(self.user, Page { offset, limit: 500 })?;
            let n = page.len();
            for r in page {
                if r.created_at < since {
                    return Ok(out);
                }
                out.push(r);
            }
            if n < 500 {
                return Ok(out);
            }
            offset += n;
        }
    }

    /// Totals by type, by day and by job over the last week, month or year.
    pub fn cost_summary(&self, period: Period) -> Result<CostSummary> {
        let t = now();
        let today = t.date_naive();
        let first_day = today - chrono::Duration::days(period.days() - 1);
        let since = Utc.from_utc_datetime(&first_day.and_hms_opt(0, 0, 0).expect("midnight"));
        let records = self.records_since(since)?;
        let mut by_type = BTreeMap::new();
        let mut by_day: BTreeMap<NaiveDate, f64> = (0..period.days())
            .map(|i| (first_day + chrono::Duration::days(i), 0.0))
            .collect();
        let mut by_job: BTreeMap<JobId, JobCost> = BTreeMap::new();
        let mut total = 0.0;
        for r in &records {
            total += r.amount;
            *by_type
                .entry(r.cost_type.as_str().to_string())
                .or_insert(0.0) += r.amount;
            *by_day.entry(r.created_at.date_naive()).or_insert(0.0) += r.amount;
            if let Some(j) = r.job_id {
                let e = by_job.entry(j).or_insert(JobCost {
                    job_id: j,
                    amount: 0.0,
                    description: r.details.description.clone(),
                });
                e.amount += r.amount;
            }
        }
        let mut by_job: Vec<JobCost> = by_job.into_values().collect();
        by_job.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let running = self.running_costs()?;
        let budget = match self.inner.config.budget.monthly_usd {
            Some(b) => {
                let spent = self.recorded_this_month()? + running;
                Some(BudgetStatus {
                    monthly_budget: b,
                    spent_this_month: spent,
                    percent: if b > 0.0 { spent / b * 100.0 } else { 100.0 },
                })
            }
            None => None,
        };
        Ok(CostSummary {
            period,
            since,
            total,
            by_type,
            by_day: by_day.into_iter().collect(),
            by_job,
            running,
            budget,
        })
    }

    /// Storage cost of datasets and stored checkpoints for the current month so far (GB ×
    /// price × share of the month elapsed), kept as one record per month that is updated in
    /// place and dated when it first accrued (never before anything was stored). Models are
    /// not counted here: each completed job pays the flat `training.storage_cost_per_job` for
    /// keeping its model, the line its estimate showed.
    pub(crate) fn accrue_storage(&self) -> Result<()> {
        let t = now();
        let period = billing_period(&t);
        let datasets: u64 = self
            .datasets(None, Page::ALL)?
            .iter()
            .map(|d| d.file_size)
            .sum();
        let mut checkpoints = 0u64;
        for job in self.jobs(None, Page::ALL)? {
            checkpoints += self
                .inner
                .store
                .checkpoints(job.id)?
                .iter()
                .filter_map(|c| c.size)
                .sum::<u64>();
        }
        let bytes = datasets + checkpoints;
        if bytes == 0 {
            return Ok(());
        }
        let gb = bytes as f64 / 1e9;
        let start = month_start(&t);
        let days_in_month = {
            let next = if t.month() == 12 {
                Utc.with_ymd_and_hms(t.year() + 1, 1, 1, 0, 0, 0)
            } else {
                Utc.with_ymd_and_hms(t.year(), t.month() + 1, 1, 0, 0, 0)
            };
            next.single()
                .map(|n| (n - start).num_seconds() as f64)
                .unwrap_or(30.0 * 86400.0)
        };
        let share = ((t - start).num_seconds() as f64 / days_in_month).clamp(0.0, 1.0);
        let amount = gb * self.inner.config.training.storage_price_per_gb_month * share;
        // One record per user and month: its id follows from both.
        let (hi, lo) = self.user.0.as_u64_pair();
        let month_key = (t.year() as u64) * 100 + t.month() as u64;
        let id = CostRecordId(uuid::Uuid::from_u64_pair(
            hi ^ 0x5354_4f52_4147_4500,
            lo ^ month_key,
        ));
        let existing: Option<CostRecord> = self.inner.store.get(&id.bytes())?;
        let record = CostRecord {
            id,
            user_id: self.user,
            job_id: None,
            cost_type: CostType::Storage,
            amount,
            details: CostDetails {
                gigabytes: Some(gb),
                description: Some(if checkpoints > 0 {
                    format!(
                        "{} and checkpoint storage, {period} to date",
                        Bucket::Datasets.name()
                    )
                } else {
                    format!("{} storage, {period} to date", Bucket::Datasets.name())
                }),
                ..Default::default()
            },
            billing_period: period,
            created_at: existing.map(|e| e.created_at).unwrap_or(t),
        };
        self.inner.store.put(&record)?;
        Ok(())
    }

    /// Raises the 80% and 100% budget alerts, each once per month.
    pub(crate) fn check_budget(&self) -> Result<()> {
        let Some(budget) = self.inner.config.budget.monthly_usd else {
            return Ok(());
        };
        let spent = self.spent_this_month()?;
        let t = now();
        let period = billing_period(&t);
        let share = if budget > 0.0 {
            spent / budget
        } else if spent > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let recent = self
            .inner
            .store
            .notifications(self.user, false, Page::first(1000))?;
        let already = |kind: NotificationType| {
            recent.iter().any(|n| {
                n.kind == kind && n.metadata.0.get("billing_period") == Some(&json!(period))
            })
        };
        let mut alerts = Vec::new();
        if share >= 1.0 && !already(NotificationType::BudgetExceeded) {
            alerts.push((
                NotificationType::BudgetExceeded,
                "Monthly budget exceeded".to_string(),
            ));
        } else if share >= 0.8 && !already(NotificationType::BudgetWarning) {
            alerts.push((
                NotificationType::BudgetWarning,
                "80% of the monthly budget used".to_string(),
            ));
        }
        if alerts.is_empty() {
            return Ok(());
        }
        let user = self.user;
        self.inner.store.write(|w| {
            for (kind, title) in &alerts {
                notify(
                    w,
                    user,
                    *kind,
                    title.clone(),
                    format!("${spent:.2} of ${budget:.2} spent in {period}"),
                    Some(Link::Costs),
                    json!({"billing_period": period, "spent": spent, "budget": budget}),
                )?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Notifications, newest first.
    pub fn notifications(&self, unread_only: bool, page: Page) -> Result<Vec<Notification>> {
        Ok(self
            .inner
            .store
            .notifications(self.user, unread_only, page)?)
    }

    pub fn resolve_notification(&self, query: &str) -> Result<NotificationId> {
        let all = self.notifications(false, Page::ALL)?;
        super::resolve::pick(super::IdKind::Notification, query, all.iter().map(|n| n.id))
    }

    /// Marks one notification (or all, with `None`) read; returns how many changed.
    pub fn mark_read(&self, id: Option<NotificationId>) -> Result<usize> {
        let targets: Vec<Notification> = match id {
            Some(id) => vec![
                self.inner
                    .store
                    .notification(id)?
                    .filter(|n| n.user_id == self.user)
                    .ok_or_else(|| super::EngineError::NotFound {
                        kind: super::IdKind::Notification,
                        query: id.to_string(),
                    })?,
            ],
            None => self.notifications(true, Page::ALL)?,
        };
        let changed: Vec<Notification> = targets
            .into_iter()
            .filter(|n| !n.read)
            .map(|mut n| {
                n.read = true;
                n
            })
            .collect();
        self.inner.store.write(|w| {
            for n in &changed {
                w.put(n)?;
            }
            Ok(())
        })?;
        Ok(changed.len())
    }
}
