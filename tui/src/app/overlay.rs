//! Modal windows over the tabs (help, confirmations, prompts, the file browser, pick lists):
//! they get the keys first, and "yes" or "enter" runs what they were opened for.

use super::App;
use crate::action::Action;
use crate::context::export::ExportKey;
use crate::context::{
    Confirmed, FileBrowser, Overlay, PickTarget, PromptKind, files, pick_visible,
};
use crate::effect::*;
use crate::tabs::datasets_inspect::parse_goto;
use brightrun_api::domain::ExportOptions;
use brightrun_api::ids::DatasetId;
use crossterm::event::KeyCode;

impl App {
    pub(super) fn handle_overlay(&mut self, action: Action) -> Vec<Effect> {
        let Some(overlay) = self.overlay.take() else {
            return Vec::new();
        };
        let key = match &action {
            Action::Input(k) => Some(*k),
            _ => None,
        };
        match overlay {
            Overlay::Help { scroll } => {
                // The help lists g/G/Home/End for moving: they scroll it too, never close it.
                let max = self.help_max_scroll.get();
                let keep = match key.map(|k| k.code) {
                    Some(KeyCode::Char('j') | KeyCode::Down) => Some(scroll.saturating_add(1)),
                    Some(KeyCode::Char('k') | KeyCode::Up) => Some(scroll.saturating_sub(1)),
                    Some(KeyCode::PageDown | KeyCode::Char(' ')) => Some(scroll.saturating_add(10)),
                    Some(KeyCode::PageUp) => Some(scroll.saturating_sub(10)),
                    Some(KeyCode::Char('g') | KeyCode::Home) => Some(0),
                    Some(KeyCode::Char('G') | KeyCode::End) => Some(max),
                    _ => None,
                };
                if let Some(s) = keep {
                    self.overlay = Some(Overlay::Help { scroll: s.min(max) });
                }
                Vec::new()
            }
            Overlay::Confirm {
                title,
                lines,
                on_yes,
            } => match key.map(|k| k.code) {
                Some(KeyCode::Char('y' | 'Y')) | Some(KeyCode::Enter) => self.confirmed(on_yes),
                Some(KeyCode::Char('n' | 'N' | 'q')) | Some(KeyCode::Esc) => {
                    self.notify_user("cancelled", Level::Info);
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm {
                        title,
                        lines,
                        on_yes,
                    });
                    Vec::new()
                }
            },
            Overlay::Prompt {
                title,
                mut input,
                kind,
                hint,
            } => {
                match action {
                    Action::Paste(text) => {
                        input.paste(&text);
                    }
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => return Vec::new(),
                        KeyCode::Enter => return self.prompt_done(kind, input.text().to_string()),
                        KeyCode::Tab if matches!(kind, PromptKind::DownloadTo(_)) => {
                            // Completion of a folder needs a listing: open the browser in
                            // folder mode at what was typed.
                            let request = self.request_id();
                            let mut fb = FileBrowser::new(input.text(), request);
                            fb.folders_only = Some(kind.clone());
                            fb.complete_on_listing = true;
                            let dir = fb.dir_to_list();
                            self.overlay = Some(Overlay::Files(Box::new(fb)));
                            return vec![Effect::ListDir { request, dir }];
                        }
                        _ => {
                            input.key(k);
                        }
                    },
                    _ => {}
                }
                self.overlay = Some(Overlay::Prompt {
                    title,
                    input,
                    kind,
                    hint,
                });
                Vec::new()
            }
            Overlay::Files(mut fb) => {
                let out = fb.handle(action);
                match out {
                    files::FileOutcome::Stay(fx) => {
                        self.overlay = Some(Overlay::Files(fb));
                        fx
                    }
                    files::FileOutcome::Cancel => Vec::new(),
                    files::FileOutcome::Chosen(path) => match fb.folders_only.take() {
                        Some(PromptKind::DownloadTo(id)) => self.start_download_checked(id, path),
                        _ => self.add_dataset(path),
                    },
                }
            }
            Overlay::Retry(mut dialog) => {
                match key.map(|k| k.code) {
                    Some(KeyCode::Down | KeyCode::Char('j')) => dialog.move_by(1),
                    Some(KeyCode::Up | KeyCode::Char('k')) => dialog.move_by(-1),
                    Some(KeyCode::Home | KeyCode::Char('g')) => dialog.move_to_end(false),
                    Some(KeyCode::End | KeyCode::Char('G')) => dialog.move_to_end(true),
                    // While the choices load, enter waits for them.
                    Some(KeyCode::Enter) if !dialog.loading() => {
                        if let Some(choice) = dialog.chosen() {
                            let (id, from) = (dialog.job.id, choice.from);
                            self.notify_user(
                                format!(
                                    "retrying job {} {}…",
                                    id.short(),
                                    crate::context::retry::retry_wording(from)
                                ),
                                Level::Info,
                            );
                            return vec![Effect::RetryJob { id, from }];
                        }
                    }
                    Some(KeyCode::Esc | KeyCode::Char('q')) => {
                        self.notify_user("cancelled", Level::Info);
                        return Vec::new();
                    }
                    _ => {}
                }
                if let Action::Scroll { delta, .. } = action {
                    dialog.move_by(delta.signum() as isize);
                }
                self.overlay = Some(Overlay::Retry(dialog));
                Vec::new()
            }
            Overlay::Export(mut dialog) => {
                let out = match &action {
                    Action::Input(k) => dialog.key(*k),
                    Action::Paste(text) => {
                        dialog.paste(text);
                        ExportKey::Stay
                    }
                    Action::Scroll { delta, .. } if !dialog.loading() => {
                        dialog.move_by(delta.signum() as isize);
                        ExportKey::Stay
                    }
                    _ => ExportKey::Stay,
                };
                match out {
                    ExportKey::Stay => {
                        self.overlay = Some(Overlay::Export(dialog));
                        Vec::new()
                    }
                    ExportKey::Cancel => {
                        self.notify_user("cancelled", Level::Info);
                        Vec::new()
                    }
                    ExportKey::Plan(options) => {
                        let request = self.request_id();
                        let model = dialog.model.id;
                        dialog.planning = Some(request);
                        self.overlay = Some(Overlay::Export(dialog));
                        vec![Effect::PlanExport {
                            request,
                            model,
                            options: ExportOptions {
                                dry_run: true,
                                ..options
                            },
                        }]
                    }
                }
            }
            Overlay::Pick {
                title,
                options,
                mut selected,
                target,
                mut filter,
            } => {
                let keep_last = target.keeps_last();
                let visible = |filter: &Option<Box<crate::input::Input>>| match filter {
                    Some(f) => pick_visible(&options, f.text(), keep_last),
                    None => (0..options.len()).collect(),
                };
                // Moves among the shown options, wrapping around.
                let step = |selected: usize, shown: &[usize], down: bool| -> usize {
                    let n = shown.len();
                    if n == 0 {
                        return selected;
                    }
                    let at = shown.iter().position(|&i| i == selected);
                    let next = match (at, down) {
                        (Some(a), true) => (a + 1) % n,
                        (Some(a), false) => (a + n - 1) % n,
                        (None, _) => 0,
                    };
                    shown[next]
                };
                let typing = filter.is_some();
                match (&action, key.map(|k| k.code)) {
                    (_, Some(KeyCode::Down)) => selected = step(selected, &visible(&filter), true),
                    (_, Some(KeyCode::Up)) => selected = step(selected, &visible(&filter), false),
                    (_, Some(KeyCode::Char('j'))) if !typing => {
                        selected = step(selected, &visible(&filter), true)
                    }
                    (_, Some(KeyCode::Char('k'))) if !typing => {
                        selected = step(selected, &visible(&filter), false)
                    }
                    (_, Some(KeyCode::Char('/'))) if !typing => {
                        filter = Some(Box::new(crate::input::Input::new("")));
                    }
                    (_, Some(KeyCode::Enter)) => {
                        let shown = visible(&filter);
                        if shown.contains(&selected) {
                            let typed = filter
                                .as_ref()
                                .map(|f| f.text().trim().to_string())
                                .unwrap_or_default();
                            if let PickTarget::InspectModel(dataset) = target {
                                return self.inspect_model_picked(dataset, selected, &typed);
                            }
                            let fx = self.picked(target.clone(), selected);
                            // "type another id…" after a filter: what was typed is where the
                            // id starts.
                            if keep_last
                                && selected + 1 == options.len()
                                && !typed.is_empty()
                                && self.configure.editing.is_some()
                            {
                                return self.configure.type_base_model(&typed);
                            }
                            return fx;
                        }
                    }
                    // Esc clears a filter first; then it (or q) closes the list.
                    (_, Some(KeyCode::Esc)) if typing => filter = None,
                    (_, Some(KeyCode::Esc | KeyCode::Char('q'))) if !typing => return Vec::new(),
                    (Action::Paste(text), _) => {
                        if let Some(f) = filter.as_mut() {
                            f.paste(text);
                        }
                    }
                    (_, Some(_)) => {
                        if let (Some(f), Some(k)) = (filter.as_mut(), key) {
                            f.key(k);
                        }
                    }
                    _ => {}
                }
                // The selection stays when still shown, else goes to the first shown.
                if filter.is_some() {
                    let shown = visible(&filter);
                    if !shown.contains(&selected)
                        && let Some(&first) = shown.first()
                    {
                        selected = first;
                    }
                }
                self.overlay = Some(Overlay::Pick {
                    title,
                    options,
                    selected,
                    target,
                    filter,
                });
                Vec::new()
            }
        }
    }

    fn prompt_done(&mut self, kind: PromptKind, text: String) -> Vec<Effect> {
        let text = text.trim().to_string();
        match kind {
            PromptKind::Rename(id) => {
                if text.is_empty() {
                    self.notify_user("a name cannot be empty", Level::Warning);
                    return Vec::new();
                }
                vec![Effect::RenameDataset(id, text)]
            }
            PromptKind::Describe(id) => vec![Effect::DescribeDataset(id, text)],
            PromptKind::DownloadTo(id) => {
                let to = files::expand_home(&text);
                self.start_download_checked(id, to)
            }
            PromptKind::InspectModel(dataset) => {
                if text.is_empty() {
                    self.notify_user("type a base model's id", Level::Warning);
                    return Vec::new();
                }
                self.inspect_with(dataset, text)
            }
            PromptKind::InspectLine(dataset) => match parse_goto(&text) {
                Ok(at) => self.tabs.datasets.go_to(dataset, at, &mut self.shared),
                // Asked again, with what was wrong.
                Err(why) => {
                    self.overlay = Some(Overlay::Prompt {
                        title: format!("Go to a line of {}", self.dataset_name(dataset)),
                        input: Box::new(crate::input::Input::new(&text)),
                        kind: PromptKind::InspectLine(dataset),
                        hint: Some(why),
                    });
                    Vec::new()
                }
            },
        }
    }

    /// A base model picked for the Inspect view: a known one inspects with it; "type another
    /// id…" asks for the id, starting from what the filter held (else the view's model).
    fn inspect_model_picked(
        &mut self,
        dataset: DatasetId,
        index: usize,
        typed: &str,
    ) -> Vec<Effect> {
        if let Some(model) = self.configure.base_model_at(index) {
            let model = model.to_string();
            return self.inspect_with(dataset, model);
        }
        let start = if typed.is_empty() {
            self.tabs
                .datasets
                .inspect
                .as_ref()
                .filter(|v| v.dataset == dataset)
                .map(|v| v.model.clone())
                .unwrap_or_else(|| self.configure.inspect_defaults(&self.shared.settings).0)
        } else {
            typed.to_string()
        };
        self.overlay = Some(Overlay::Prompt {
            title: format!("Inspect {} with base model", self.dataset_name(dataset)),
            input: Box::new(crate::input::Input::new(&start)),
            kind: PromptKind::InspectModel(dataset),
            hint: Some("a Hugging Face id or a folder on the engine's machine".into()),
        });
        Vec::new()
    }

    /// Inspects `dataset` with `model`, its cut at the Configure form's max_seq_length.
    pub(crate) fn inspect_with(&mut self, dataset: DatasetId, model: String) -> Vec<Effect> {
        let (_, max_seq_length) = self.configure.inspect_defaults(&self.shared.settings);
        self.tabs
            .datasets
            .inspect_with(dataset, model, max_seq_length, &mut self.shared)
    }

    fn confirmed(&mut self, what: Confirmed) -> Vec<Effect> {
        match what {
            Confirmed::Quit => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Confirmed::DeleteDataset(id) => {
                let name = self.dataset_name(id);
                self.notify_user(format!("deleting {name}…"), Level::Info);
                vec![Effect::DeleteDataset(id)]
            }
            Confirmed::CleanDataset(id) => {
                let name = self.dataset_name(id);
                self.notify_user(format!("cleaning {name}…"), Level::Info);
                vec![Effect::CleanDataset(id)]
            }
            Confirmed::CancelJob(id) => {
                self.notify_user(format!("cancelling job {}…", id.short()), Level::Info);
                vec![Effect::CancelJob(id)]
            }
            Confirmed::CancelSweep(id) => {
                let name = self.sweep_name(id);
                self.notify_user(format!("cancelling sweep {name}…"), Level::Info);
                vec![Effect::CancelSweep(id)]
            }
            Confirmed::CreateSweep { spec, over_budget } => {
                self.notify_user("starting the sweep…", Level::Info);
                vec![Effect::CreateSweep {
                    spec: *spec,
                    confirm_over_budget: over_budget,
                }]
            }
            Confirmed::CreateJob { draft, over_budget } => {
                self.notify_user("creating the job…", Level::Info);
                vec![Effect::CreateJob {
                    draft,
                    confirm_over_budget: over_budget,
                }]
            }
            Confirmed::OverwriteDownload { id, to } => self.start_download(id, to, true),
            Confirmed::Export { model, options } => {
                let name = self
                    .artifacts
                    .get(model)
                    .map(|a| format!("{} v{}", a.name, a.version))
                    .unwrap_or_else(|| model.short());
                self.notify_user(format!("queueing the export of {name}…"), Level::Info);
                vec![Effect::ExportModel {
                    model,
                    options: ExportOptions {
                        dry_run: false,
                        ..*options
                    },
                }]
            }
            Confirmed::ClearChat(id) => {
                self.notify_user("conversation cleared", Level::Info);
                self.tabs.models.clear_chat(id)
            }
        }
    }

    fn picked(&mut self, target: PickTarget, index: usize) -> Vec<Effect> {
        self.configure.picked(target, index)
    }
}
