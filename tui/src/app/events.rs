//! Engine events and effect answers, applied to the shared records and routed to the tabs.

use super::{App, Confirmed, Overlay, TaskInfo, Toast, lists};
use crate::action::Tab;
use crate::effect::*;
use crate::sanitize::one_line;
use crate::state::*;
use crate::tabs::Focus;
use brightrun_api::Reason;
use brightrun_api::domain::*;
use brightrun_api::events::{EngineEvent, ProgressTask};
use std::sync::Arc;

/// How long a toast stays.
const TOAST_SECS: i64 = 6;
/// Events held while frozen before the app gives up replaying and reloads instead.
const MAX_HELD: usize = 50_000;

impl App {
    // ---- engine events -----------------------------------------------------------------------

    /// Applies an engine event (or holds it while frozen).
    pub fn apply_event(&mut self, ev: EngineEvent) -> Vec<Effect> {
        if self.frozen {
            // Work in progress still shows; records wait.
            match &ev {
                EngineEvent::Progress(_) | EngineEvent::BackendHealth { .. } => {}
                _ => {
                    if self.held.len() >= MAX_HELD {
                        // Too much to replay: reload everything on resume instead.
                        self.held.clear();
                        self.held_overflow = true;
                    }
                    self.held.push(ev);
                    self.dirty = true;
                    return Vec::new();
                }
            }
        }
        self.dirty = true;
        match &ev {
            EngineEvent::Dataset(d) => {
                let d = clean_arc(d.clone(), clean_dataset);
                if d.status != DatasetStatus::Validating {
                    self.tasks.remove(&TaskKey::Validation(d.id));
                    // "NAME uploaded; validating…" is out of date once the verdict is in.
                    let stale = format!("{} uploaded; validating…", d.name);
                    if self.message.as_ref().is_some_and(|m| m.text == stale) {
                        self.message = None;
                    }
                }
                if d.status != DatasetStatus::Uploading {
                    self.tasks.remove(&TaskKey::EngineUpload(d.id));
                }
                if d.deleted_at.is_some() {
                    if self.datasets.remove(d.id).is_some() {
                        self.dataset_list.dirty = true;
                        self.job_list.dirty = true;
                    }
                } else {
                    let changed = match self.datasets.upsert(d.clone()) {
                        Upsert::Inserted => true,
                        Upsert::Updated(old) => {
                            lists::dataset_view_changed(&old, &d, &self.dataset_list)
                        }
                    };
                    if changed && let Some(pos) = self.datasets.position(d.id) {
                        self.dataset_list.touch(pos);
                    }
                }
            }
            EngineEvent::Job(j) => {
                let j = clean_arc(j.clone(), clean_job);
                let changed = match self.jobs.upsert(j.clone()) {
                    Upsert::Inserted => true,
                    Upsert::Updated(old) => lists::job_view_changed(&old, &j, &self.job_list),
                };
                if changed && let Some(pos) = self.jobs.position(j.id) {
                    self.job_list.touch(pos);
                }
            }
            EngineEvent::Sweep(w) => {
                let w = clean_arc(w.clone(), clean_sweep);
                self.upsert_sweep(w);
            }
            EngineEvent::Metrics { job_id, points } => {
                if let Some(d) = self.details.get_mut(job_id) {
                    d.series.insert(points);
                }
            }
            EngineEvent::Artifact(a) => {
                let a = clean_arc(a.clone(), clean_artifact);
                if a.deleted_at.is_some() {
                    self.artifacts.remove(a.id);
                } else {
                    self.artifacts.upsert(a);
                }
                self.model_list.dirty = true;
            }
            EngineEvent::Cost(_) => {}
            EngineEvent::Notification(n) => {
                let n = clean_arc(n.clone(), clean_notification);
                let fresh = matches!(self.notifications.upsert(n.clone()), Upsert::Inserted);
                self.notification_list.dirty = true;
                self.recount_unread();
                if fresh && !n.read && n.priority >= Priority::High {
                    let now = self.now;
                    self.toasts.push(Toast {
                        title: n.title.clone(),
                        message: n.message.clone(),
                        priority: n.priority,
                        until: now + chrono::Duration::seconds(TOAST_SECS),
                    });
                    if self.toasts.len() > 3 {
                        self.toasts.remove(0);
                    }
                }
            }
            EngineEvent::Checkpoint(c) => {
                // Recorded, stored or retired: the monitor's list follows; a new one is also
                // said in the log.
                if let Some(d) = self.details.get_mut(&c.job_id)
                    && d.apply_checkpoint(c.clone())
                {
                    d.push_log(format!(
                        "[checkpoint] step {} epoch {:.2}{}",
                        c.step,
                        c.epoch,
                        c.loss.map(|l| format!(" loss {l:.4}")).unwrap_or_default()
                    ));
                }
            }
            EngineEvent::JobLog { job_id, line } => {
                if let Some(d) = self.details.get_mut(job_id) {
                    d.push_log(crate::sanitize::clean(line).into_owned());
                }
            }
            EngineEvent::Progress(p) => {
                let key = match &p.task {
                    ProgressTask::Upload(id) => TaskKey::EngineUpload(*id),
                    ProgressTask::Validation(id) => TaskKey::Validation(*id),
                    ProgressTask::Download(id) => TaskKey::EngineDownload(*id),
                    ProgressTask::TrainerEnvironment => TaskKey::TrainerEnvironment,
                    ProgressTask::Inspection(id) => TaskKey::Inspection(*id),
                };
                // Our own uploads and downloads already show with their own progress.
                let own = match &p.task {
                    ProgressTask::Download(id) => self.downloads.values().any(|(a, _)| a == id),
                    ProgressTask::Upload(_) => {
                        self.tasks.keys().any(|k| matches!(k, TaskKey::Upload(_)))
                    }
                    _ => false,
                };
                let finished = p.total.is_some_and(|t| p.done >= t && t > 0);
                if own || finished {
                    self.tasks.remove(&key);
                } else {
                    let label = match &p.task {
                        ProgressTask::Upload(id) => format!("upload {}", self.dataset_name(*id)),
                        ProgressTask::Validation(id) => {
                            format!("validating {}", self.dataset_name(*id))
                        }
                        ProgressTask::Download(id) => format!("download {}", id.short()),
                        ProgressTask::TrainerEnvironment => "trainer environment".to_string(),
                        ProgressTask::Inspection(id) => {
                            format!("counting {}", self.dataset_name(*id))
                        }
                    };
                    let msg = one_line(&p.message);
                    let label = if msg.is_empty() {
                        label
                    } else {
                        format!("{label}: {msg}")
                    };
                    self.tasks.insert(
                        key,
                        TaskInfo {
                            label,
                            done: p.done,
                            total: p.total,
                        },
                    );
                }
            }
            EngineEvent::BackendHealth { backend, reachable } => {
                self.health
                    .insert(one_line(backend).into_owned(), *reachable);
            }
        }
        self.route_event(&ev)
    }

    /// The mirror's status as last polled; redraws only when what the bar shows changes.
    pub fn set_mirror(&mut self, status: brightrun_api::mirror::MirrorStatus) {
        use brightrun_api::mirror::MirrorState;
        let status = (status.state != MirrorState::Disabled).then_some(status);
        let shown = |s: &Option<brightrun_api::mirror::MirrorStatus>| {
            s.as_ref()
                .map(|s| (s.state, s.behind, s.last_error.clone()))
        };
        if shown(&self.mirror) != shown(&status) {
            self.dirty = true;
        }
        self.mirror = status;
    }

    // ---- outcomes ----------------------------------------------------------------------------

    /// Applies the answer to an effect.
    pub fn apply_outcome(&mut self, o: Outcome) -> Vec<Effect> {
        self.dirty = true;
        match o {
            Outcome::Snapshot(s) => {
                self.details.clear();
                self.detail_order.clear();
                self.load_snapshot(*s);
                let mut fx = Vec::new();
                if self.tab == Tab::Jobs {
                    fx.extend(self.ensure_job_detail());
                }
                if self.tab == Tab::Costs {
                    fx.push(self.tabs.costs.load());
                }
                fx
            }
            Outcome::Theme(Ok(t)) => {
                self.notify_user(format!("theme {}", t.name), Level::Info);
                self.set_theme(t);
                Vec::new()
            }
            Outcome::Theme(Err(e)) => {
                self.notify_user(e, Level::Error);
                Vec::new()
            }
            Outcome::NativeFile { request, path } => {
                let ours =
                    matches!(&self.overlay, Some(Overlay::Files(fb)) if fb.request == request);
                match path {
                    Some(path) if ours => {
                        self.overlay = None;
                        self.add_dataset(path)
                    }
                    _ => Vec::new(),
                }
            }
            Outcome::DirListing {
                request,
                dir,
                entries,
            } => match &mut self.overlay {
                Some(Overlay::Files(fb)) if fb.request == request => fb.set_listing(dir, entries),
                _ => Vec::new(),
            },
            Outcome::Progress {
                task,
                label,
                done,
                total,
            } => {
                if self.tasks.contains_key(&task) {
                    self.tasks.insert(
                        task,
                        TaskInfo {
                            label: one_line(&label).into_owned(),
                            done,
                            total: Some(total),
                        },
                    );
                }
                Vec::new()
            }
            Outcome::DatasetAdded { request, result } => {
                self.tasks.remove(&TaskKey::Upload(request));
                match result {
                    Ok(d) => {
                        let d = Arc::new(clean_dataset(d));
                        self.notify_user(
                            format!("{} uploaded; validating…", d.name),
                            Level::Success,
                        );
                        let id = d.id;
                        self.upsert_dataset_if_newer(d);
                        self.touch_dataset(id);
                        self.refresh_views();
                        self.select_in(Tab::Datasets, |a| a.datasets.position(id));
                    }
                    Err(e) => self.notify_user(format!("upload failed: {e}"), Level::Error),
                }
                Vec::new()
            }
            Outcome::DatasetChanged { what, result } => {
                match result {
                    Ok(d) => {
                        let d = Arc::new(clean_dataset(d));
                        self.notify_user(format!("{} {what}", d.name), Level::Success);
                        if what != "validated" {
                            self.tasks.remove(&TaskKey::Validation(d.id));
                        }
                        if d.deleted_at.is_some() {
                            self.datasets.remove(d.id);
                            self.dataset_list.dirty = true;
                        } else {
                            let id = d.id;
                            self.upsert_dataset_if_newer(d);
                            self.touch_dataset(id);
                        }
                        self.configure.sync_datasets(&self.shared.datasets);
                    }
                    Err(e) => {
                        self.tasks
                            .retain(|k, _| !matches!(k, TaskKey::Validation(_)));
                        self.notify_user(format!("could not {}: {e}", verb(what)), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::JobDetail {
                job_id,
                metrics,
                log,
                checkpoints,
            } => {
                let d = self.details.entry(job_id).or_default();
                d.loading = false;
                d.set_checkpoints(checkpoints.map_err(|e| one_line(&e.message).into_owned()));
                match metrics {
                    Ok(points) => {
                        let mut loaded = crate::series::Series::from_points(&points);
                        loaded.merge(&d.series);
                        d.series = loaded;
                    }
                    Err(e) => d.load_error = Some(one_line(&e.message).into_owned()),
                }
                match log {
                    Ok(lines) => {
                        let live: Vec<String> = d.log.drain(..).collect();
                        for l in lines {
                            d.push_log(crate::sanitize::clean(&l).into_owned());
                        }
                        for l in live {
                            d.push_log(l);
                        }
                    }
                    Err(e) => d.push_log(format!("(log unavailable: {})", one_line(&e.message))),
                }
                Vec::new()
            }
            Outcome::Estimate { seq, result } => {
                self.configure.estimate_done(seq, result);
                Vec::new()
            }
            Outcome::RetryChoices(answer) => {
                let RetryAnswer {
                    request,
                    checkpoints,
                    latest,
                    scratch,
                } = *answer;
                if let Some(Overlay::Retry(dialog)) = &mut self.shared.overlay
                    && dialog.request == request
                {
                    dialog.loaded(checkpoints, latest, scratch);
                }
                Vec::new()
            }
            Outcome::JobCreated(result) => {
                match result {
                    Ok(j) => {
                        let j = Arc::new(clean_job(j));
                        let id = j.id;
                        self.notify_user(
                            format!(
                                "job {} queued (estimated {})",
                                j.id.short(),
                                crate::format::money(j.estimated_cost)
                            ),
                            Level::Success,
                        );
                        self.upsert_job_if_newer(j);
                        self.touch_job(id);
                        self.refresh_views();
                        self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                        self.tabs.jobs.browse.focus = Focus::Detail;
                        return self.go_tab(Tab::Jobs);
                    }
                    Err(e) => {
                        self.notify_user(format!("could not create the job: {e}"), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::SweepPlanned {
                request,
                spec,
                result,
            } => {
                self.configure
                    .sweep_planned(request, *spec, result, &mut self.shared);
                Vec::new()
            }
            Outcome::SweepCreated(result) => self.sweep_created(result),
            Outcome::SweepCancelled(result) => {
                match result {
                    Ok(w) => {
                        let w = Arc::new(clean_sweep(*w));
                        self.notify_user(format!("sweep {} cancelled", w.name), Level::Success);
                        self.upsert_sweep(w);
                    }
                    Err(e) => {
                        self.notify_user(format!("could not cancel the sweep: {e}"), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::JobChanged { what, result } => {
                match result {
                    Ok(j) => {
                        let j = Arc::new(clean_job(j));
                        self.notify_user(format!("job {} {what}", j.id.short()), Level::Success);
                        let id = j.id;
                        // A retry's job may have arrived by the change feed already: it is
                        // selected all the same.
                        let new = self.jobs.get(id).is_none() || what == "retried";
                        self.upsert_job_if_newer(j);
                        self.touch_job(id);
                        if new {
                            self.refresh_views();
                            self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                            return self.ensure_job_detail();
                        }
                    }
                    Err(e) => self.notify_user(
                        format!("could not {} the job: {e}", verb(what)),
                        Level::Error,
                    ),
                }
                Vec::new()
            }
            Outcome::Downloaded {
                request,
                id,
                to,
                result,
            } => {
                self.tasks.remove(&TaskKey::Download(request));
                self.downloads.remove(&request);
                match result {
                    Ok(files) => self.notify_user(
                        format!(
                            "downloaded {} to {}",
                            crate::format::plural(files.len() as u64, "file"),
                            one_line(&to.display().to_string())
                        ),
                        Level::Success,
                    ),
                    Err(e) if e.reason == Some(Reason::FilesExist) => {
                        // The CLI's advice (--force) is not a key here: the dialog asks instead,
                        // naming the files (the error's details; its message as a fallback).
                        let files = e.details.as_deref().unwrap_or(&e.message);
                        self.overlay = Some(Overlay::Confirm {
                            title: "Overwrite?".into(),
                            lines: vec![
                                one_line(files).into_owned(),
                                "Overwrite those files?".into(),
                            ],
                            on_yes: Confirmed::OverwriteDownload { id, to },
                        });
                    }
                    Err(e) => self.notify_user(format!("download failed: {e}"), Level::Error),
                }
                Vec::new()
            }
            Outcome::Costs(result) => self.tabs.costs.loaded(result, &mut self.shared),
            Outcome::Evaluation { id, result } => {
                self.tabs
                    .models
                    .evaluation_loaded(id, result, &mut self.shared);
                Vec::new()
            }
            Outcome::Chat { request, event } => {
                self.tabs
                    .models
                    .chat_event(request, event, &mut self.shared)
            }
            Outcome::InspectExample { request, result } => {
                self.tabs
                    .datasets
                    .example_answer(request, result, &mut self.shared);
                Vec::new()
            }
            Outcome::InspectStats {
                request,
                dataset,
                result,
            } => {
                self.tabs
                    .datasets
                    .stats_answer(request, dataset, result, &mut self.shared);
                Vec::new()
            }
            Outcome::RunsCompared { request, result } => {
                self.tabs.jobs.compared(request, result, &mut self.shared);
                Vec::new()
            }
            Outcome::RunMetrics {
                request,
                id,
                result,
            } => {
                self.tabs
                    .jobs
                    .run_metrics(request, id, result, &mut self.shared);
                Vec::new()
            }
            Outcome::ExportPlanned { request, result } => {
                self.export_planned(request, result);
                Vec::new()
            }
            Outcome::ExportQueued {
                model,
                options,
                result,
            } => self.export_queued(model, *options, result),
            Outcome::MarkedRead(result) => {
                if let Err(e) = result {
                    self.notify_user(format!("could not mark read: {e}"), Level::Error);
                }
                Vec::new()
            }
        }
    }
}

impl App {
    /// A sweep started from the Configure tab: the Jobs tab shows it, its header selected.
    fn sweep_created(
        &mut self,
        result: Result<Box<Sweep>, brightrun_api::ApiError>,
    ) -> Vec<Effect> {
        let w = match result {
            Ok(w) => Arc::new(clean_sweep(*w)),
            Err(e) => {
                self.notify_user(format!("could not start the sweep: {e}"), Level::Error);
                return Vec::new();
            }
        };
        let said = format!(
            "sweep {} started: {}, {} at a time",
            w.name,
            crate::format::plural(w.runs.len() as u64, "run"),
            w.spec.max_parallel.max(1)
        );
        let id = w.id;
        self.upsert_sweep(w);
        self.refresh_views();
        self.select_sweep(id);
        self.tabs.jobs.browse.focus = Focus::List;
        let fx = self.go_tab(Tab::Jobs);
        // Said on the Jobs tab, where the sweep is (leaving a tab clears what was said there).
        self.notify_user(said, Level::Success);
        fx
    }
}

impl App {
    /// The engine's dry run of the export asked for last: the dialog becomes the
    /// confirmation of what it makes, where, for about how much and how long (an older
    /// request's answer is dropped). A refusal is said in the dialog, which stays open.
    fn export_planned(
        &mut self,
        request: u64,
        result: Result<Box<TrainingJob>, brightrun_api::ApiError>,
    ) {
        let Some(Overlay::Export(dialog)) = &mut self.shared.overlay else {
            return;
        };
        if dialog.planning != Some(request) {
            return;
        }
        let plan = match result {
            Ok(plan) => plan,
            Err(e) => {
                dialog.refused(&e);
                return;
            }
        };
        let model = dialog.model.clone();
        let options = dialog.options();
        self.overlay = Some(Overlay::Confirm {
            title: "Queue export?".into(),
            lines: crate::context::export::plan_lines(&model, &plan),
            on_yes: Confirmed::Export {
                model: model.id,
                options: Box::new(options),
            },
        });
    }

    /// An export queued: the Jobs tab shows its job, selected. Over the month's budget, the
    /// engine asks for a confirmation (its reason, never its text, says so): the dialog asks,
    /// and a yes sends it again with `confirm_over_budget`.
    fn export_queued(
        &mut self,
        model: brightrun_api::ids::ArtifactId,
        options: ExportOptions,
        result: Result<Box<TrainingJob>, brightrun_api::ApiError>,
    ) -> Vec<Effect> {
        let j = match result {
            Ok(j) => Arc::new(clean_job(*j)),
            Err(e) if e.reason == Some(Reason::OverBudget) && !options.confirm_over_budget => {
                self.overlay = Some(Overlay::Confirm {
                    title: "Over budget: queue export?".into(),
                    lines: vec![
                        one_line(&e.message).into_owned(),
                        "Queue the export anyway?".into(),
                    ],
                    on_yes: Confirmed::Export {
                        model,
                        options: Box::new(ExportOptions {
                            confirm_over_budget: true,
                            ..options
                        }),
                    },
                });
                return Vec::new();
            }
            Err(e) => {
                self.notify_user(format!("could not queue the export: {e}"), Level::Error);
                return Vec::new();
            }
        };
        let what = j
            .task
            .export()
            .map(|t| format!("export {} ({})", t.format.as_str(), one_line(&t.name)))
            .unwrap_or_else(|| "export".into());
        let said = format!(
            "{what} queued as job {} (estimated {})",
            j.id.short(),
            crate::format::money(j.estimated_cost)
        );
        let id = j.id;
        self.upsert_job_if_newer(j);
        self.touch_job(id);
        self.refresh_views();
        self.select_in(Tab::Jobs, |a| a.jobs.position(id));
        self.tabs.jobs.browse.focus = Focus::List;
        let fx = self.go_tab(Tab::Jobs);
        // Said on the Jobs tab, where the job is (leaving a tab clears what was said there).
        self.notify_user(said, Level::Success);
        fx
    }
}

fn verb(what: &str) -> &str {
    match what {
        "renamed" => "rename",
        "described" => "describe",
        "validated" => "validate",
        "deleted" => "delete",
        "cleaned" => "clean",
        "cancelled" => "cancel",
        "retried" => "retry",
        other => other,
    }
}
