//! The Jobs tab's retry dialog, as data: where the new job starts (the latest checkpoint, one
//! of the job's checkpoints, or step 0) and about what each costs, as the engine's dry runs
//! say. The app opens it with [`Effect::LoadRetryChoices`](crate::Effect::LoadRetryChoices)
//! and fills it with the answer; `ui/retry.rs` draws it.

use crate::effect::RetryFrom;
use crate::format;
use crate::sanitize::one_line;
use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::ids::JobId;
use std::sync::Arc;

/// One way to retry that the dialog offers.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryChoice {
    pub from: RetryFrom,
    pub label: String,
    /// Why its dry run failed (the engine's message): choosing it will most likely fail too.
    pub error: Option<String>,
}

/// The retry dialog of one job.
#[derive(Clone, Debug)]
pub struct RetryDialog {
    pub job: Arc<TrainingJob>,
    /// The [`Effect::LoadRetryChoices`](crate::Effect::LoadRetryChoices) it waits for; a
    /// later answer to an earlier dialog is not its own.
    pub request: u64,
    /// The job ran on this machine, so a checkpoint's folder is here.
    pub local: bool,
    /// Where the job ran, in words (`this machine`, `1×A100-80GB (ray)`).
    pub runs_on: String,
    /// None while the checkpoints and the dry runs load.
    pub choices: Option<Vec<RetryChoice>>,
    /// What went wrong beside a choice (the checkpoints could not be listed).
    pub notes: Vec<String>,
    /// An index into `choices`.
    pub selected: usize,
}

impl RetryDialog {
    pub fn new(job: Arc<TrainingJob>, request: u64, local: bool, runs_on: String) -> Self {
        RetryDialog {
            job,
            request,
            local,
            runs_on,
            choices: None,
            notes: Vec::new(),
            selected: 0,
        }
    }

    /// The engine's answers: the choices, with the latest checkpoint chosen when there is
    /// one to continue from, else the start from scratch.
    pub fn loaded(
        &mut self,
        checkpoints: Result<Vec<Checkpoint>, ApiError>,
        latest: Result<TrainingJob, ApiError>,
        scratch: Result<TrainingJob, ApiError>,
    ) {
        let (choices, notes) =
            retry_choices(self.job.id, &checkpoints, &latest, &scratch, self.local);
        self.selected = choices
            .iter()
            .position(|c| c.from == RetryFrom::Latest)
            .unwrap_or(choices.len().saturating_sub(1));
        self.choices = Some(choices);
        self.notes = notes;
    }

    pub fn loading(&self) -> bool {
        self.choices.is_none()
    }

    /// Moves the choice by `delta`, wrapping around.
    pub fn move_by(&mut self, delta: isize) {
        let n = self.choices.as_ref().map_or(0, Vec::len) as isize;
        if n > 0 {
            self.selected = (self.selected as isize + delta).rem_euclid(n) as usize;
        }
    }

    /// Moves to the first (`false`) or the last (`true`) choice.
    pub fn move_to_end(&mut self, last: bool) {
        let n = self.choices.as_ref().map_or(0, Vec::len);
        self.selected = if last { n.saturating_sub(1) } else { 0 };
    }

    /// The choice Enter takes (none while loading).
    pub fn chosen(&self) -> Option<&RetryChoice> {
        self.choices.as_ref()?.get(self.selected)
    }
}

/// What a retry of job `id` can start from, in the dialog's order: the latest checkpoint (when
/// the dry run resumes from one), the job's checkpoints newest first, then step 0. Failed
/// answers are said: a dry run's on its choice, the list's in the notes.
pub fn retry_choices(
    id: JobId,
    checkpoints: &Result<Vec<Checkpoint>, ApiError>,
    latest: &Result<TrainingJob, ApiError>,
    scratch: &Result<TrainingJob, ApiError>,
    local: bool,
) -> (Vec<RetryChoice>, Vec<String>) {
    let message = |e: &ApiError| one_line(&e.message).into_owned();
    let listed: Vec<&Checkpoint> = match checkpoints {
        Ok(list) => {
            let mut v: Vec<&Checkpoint> = list
                .iter()
                .filter(|c| !crate::state::checkpoint_retired(c))
                .collect();
            v.sort_by_key(|c| std::cmp::Reverse((c.step, c.created_at)));
            v
        }
        Err(_) => Vec::new(),
    };
    let mut choices = Vec::new();
    let mut notes = Vec::new();
    match latest {
        Ok(j) => {
            // Without a checkpoint to continue from, "latest" starts at step 0: the same
            // as from scratch, which is offered below.
            if let Some(p) = j.resumed_from {
                let of = if p.job_id == id {
                    String::new()
                } else {
                    format!(" of job {}", p.job_id.short())
                };
                choices.push(RetryChoice {
                    from: RetryFrom::Latest,
                    label: format!(
                        "Continue from the latest checkpoint (step {}{of}, about {})",
                        format::thousands(p.step),
                        format::money(j.estimated_cost)
                    ),
                    error: None,
                });
            }
        }
        // The engine could not say: the choice stays when there are checkpoints, with why.
        Err(e) if !listed.is_empty() || checkpoints.is_err() => choices.push(RetryChoice {
            from: RetryFrom::Latest,
            label: "Continue from the latest checkpoint".into(),
            error: Some(message(e)),
        }),
        Err(_) => {}
    }
    for c in &listed {
        choices.push(RetryChoice {
            from: RetryFrom::Step(c.step),
            label: checkpoint_label(c, local),
            error: None,
        });
    }
    if let Err(e) = checkpoints {
        notes.push(format!(
            "The checkpoints could not be listed: {}",
            message(e)
        ));
    }
    choices.push(match scratch {
        Ok(j) => RetryChoice {
            from: RetryFrom::Scratch,
            label: format!(
                "Start from scratch (about {})",
                format::money(j.estimated_cost)
            ),
            error: None,
        },
        Err(e) => RetryChoice {
            from: RetryFrom::Scratch,
            label: "Start from scratch".into(),
            error: Some(message(e)),
        },
    });
    (choices, notes)
}

/// `From step 600 · epoch 2.00 · loss 0.8123 · stored, 160 MB`.
pub fn checkpoint_label(c: &Checkpoint, local: bool) -> String {
    let mut parts = vec![
        format!("From step {}", format::thousands(c.step)),
        format!("epoch {:.2}", c.epoch),
    ];
    if let Some(l) = c.loss {
        parts.push(format!("loss {}", format::metric(l)));
    }
    parts.push(checkpoint_place(c, local));
    parts.join(" · ")
}

/// Where a checkpoint is: `stored, 160 MB` (in the object store: any backend continues from
/// it), `on this machine` (only the trainer's folder, here), or `on the machine that ran it`.
pub fn checkpoint_place(c: &Checkpoint, local: bool) -> String {
    if c.is_stored() {
        match c.size {
            Some(n) => format!("stored, {}", format::bytes(n)),
            None => "stored".into(),
        }
    } else if local {
        "on this machine".into()
    } else {
        "on the machine that ran it".into()
    }
}

/// The monitor's size column: the stored archive's size, or `folder only`.
pub fn checkpoint_size(c: &Checkpoint) -> String {
    match (c.is_stored(), c.size) {
        (true, Some(n)) => format::bytes(n),
        (true, None) => "stored".into(),
        (false, _) => "folder only".into(),
    }
}

/// How the status bar says where a retry starts.
pub fn retry_wording(from: RetryFrom) -> String {
    match from {
        RetryFrom::Latest => "from its latest checkpoint".into(),
        RetryFrom::Step(s) => format!("from step {}", format::thousands(s)),
        RetryFrom::Scratch => "from scratch".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use brightrun_api::ids::JobId;

    fn failed() -> TrainingJob {
        fixtures::job(3, 1, JobStatus::Failed, 60)
    }

    /// What a dry run answers: the job a retry would queue.
    fn planned(from: Option<(JobId, u64)>, cost: f64) -> TrainingJob {
        let mut j = failed();
        j.id = fixtures::job_id(9);
        j.status = JobStatus::Queued;
        j.retry_of = Some(fixtures::job_id(3));
        j.resumed_from = from.map(|(job_id, step)| ResumePoint { job_id, step });
        j.estimated_cost = cost;
        j
    }

    fn labels(choices: &[RetryChoice]) -> Vec<&str> {
        choices.iter().map(|c| c.label.as_str()).collect()
    }

    #[test]
    fn the_latest_then_each_checkpoint_newest_first_then_from_scratch() {
        let id = fixtures::job_id(3);
        let (choices, notes) = retry_choices(
            id,
            &Ok(fixtures::checkpoints(id)),
            &Ok(planned(Some((id, 600)), 1.62)),
            &Ok(planned(None, 4.85)),
            true,
        );
        assert!(notes.is_empty());
        assert_eq!(
            labels(&choices),
            vec![
                "Continue from the latest checkpoint (step 600, about $1.62)",
                "From step 600 · epoch 2.00 · loss 0.8123 · on this machine",
                "From step 300 · epoch 1.00 · loss 1.2034 · stored, 168 MB",
                "Start from scratch (about $4.85)",
            ]
        );
        let froms: Vec<RetryFrom> = choices.iter().map(|c| c.from).collect();
        assert_eq!(
            froms,
            vec![
                RetryFrom::Latest,
                RetryFrom::Step(600),
                RetryFrom::Step(300),
                RetryFrom::Scratch
            ]
        );
        // Run elsewhere, a folder is on that machine.
        assert_eq!(
            checkpoint_place(&fixtures::checkpoints(id)[1], false),
            "on the machine that ran it"
        );
    }

    #[test]
    fn a_job_without_checkpoints_only_starts_over() {
        let id = fixtures::job_id(3);
        let (choices, notes) = retry_choices(
            id,
            &Ok(Vec::new()),
            &Ok(planned(None, 4.85)),
            &Ok(planned(None, 4.85)),
            true,
        );
        assert!(notes.is_empty());
        assert_eq!(labels(&choices), vec!["Start from scratch (about $4.85)"]);
        // Its latest dry run failing changes nothing: there is nothing to continue from.
        let (choices, _) = retry_choices(
            id,
            &Ok(Vec::new()),
            &Err(ApiError::invalid("checkpoint", "no checkpoint")),
            &Ok(planned(None, 4.85)),
            true,
        );
        assert_eq!(choices.len(), 1);
    }

    #[test]
    fn an_earlier_jobs_checkpoint_is_named() {
        let id = fixtures::job_id(3);
        let earlier = fixtures::job_id(5);
        let (choices, _) = retry_choices(
            id,
            &Ok(Vec::new()),
            &Ok(planned(Some((earlier, 1200)), 0.5)),
            &Ok(planned(None, 4.85)),
            true,
        );
        assert_eq!(
            choices[0].label,
            "Continue from the latest checkpoint (step 1,200 of job b0000005, about $0.50)"
        );
    }

    #[test]
    fn errors_are_said_where_they_belong() {
        let id = fixtures::job_id(3);
        let (choices, notes) = retry_choices(
            id,
            &Err(ApiError::unavailable("the engine\nis gone")),
            &Err(ApiError::unavailable("the engine is gone")),
            &Err(ApiError::invalid(
                "dataset",
                "dataset d0000001 is deleted, not ready",
            )),
            true,
        );
        assert_eq!(
            labels(&choices),
            vec!["Continue from the latest checkpoint", "Start from scratch"]
        );
        assert_eq!(choices[0].error.as_deref(), Some("the engine is gone"));
        assert_eq!(
            choices[1].error.as_deref(),
            Some("dataset d0000001 is deleted, not ready")
        );
        assert_eq!(
            notes,
            vec!["The checkpoints could not be listed: the engine is gone"]
        );
    }

    #[test]
    fn the_dialog_starts_on_the_latest_and_wraps() {
        let id = fixtures::job_id(3);
        let mut d = RetryDialog::new(Arc::new(failed()), 1, true, "this machine".into());
        assert!(d.loading() && d.chosen().is_none());
        d.move_by(1);
        assert_eq!(d.selected, 0);
        d.loaded(
            Ok(fixtures::checkpoints(id)),
            Ok(planned(Some((id, 600)), 1.62)),
            Ok(planned(None, 4.85)),
        );
        assert_eq!(d.chosen().unwrap().from, RetryFrom::Latest);
        d.move_by(-1);
        assert_eq!(d.chosen().unwrap().from, RetryFrom::Scratch);
        d.move_by(1);
        d.move_by(1);
        assert_eq!(d.chosen().unwrap().from, RetryFrom::Step(600));
        d.move_to_end(true);
        assert_eq!(d.chosen().unwrap().from, RetryFrom::Scratch);
        // Nothing to continue from: from scratch is chosen.
        d.loaded(
            Ok(Vec::new()),
            Ok(planned(None, 4.85)),
            Ok(planned(None, 4.85)),
        );
        assert_eq!(d.chosen().unwrap().from, RetryFrom::Scratch);
    }

    #[test]
    fn sizes_and_wording() {
        let id = fixtures::job_id(3);
        let c = fixtures::checkpoints(id);
        assert_eq!(checkpoint_size(&c[0]), "168 MB");
        assert_eq!(checkpoint_size(&c[1]), "folder only");
        assert_eq!(retry_wording(RetryFrom::Step(1200)), "from step 1,200");
        assert_eq!(retry_wording(RetryFrom::Scratch), "from scratch");
    }
}
