//! Export jobs (`brightrun models export`): an adapter merged into its base, converted to GGUF
//! (maybe quantized, maybe with an Ollama `Modelfile`), or converted alone as a GGUF LoRA.
//! Dispatched like a training job (a cost, a log, a place in the queue, cancelling, any
//! backend: merging a 70B model needs a cluster's memory), done by the trainer's export mode
//! (trainer/PROTOCOL.md, "Export mode"), which checks the export against base + adapter
//! before it reports it. The result is a model of its own kind, whose parent is the adapter.

use super::artifacts::remote_artifact_id;
use super::{Engine, EngineError, Result};
use crate::backend::{ExportSpec, ExportVerify};
use crate::domain::*;
use crate::ids::ArtifactId;
use crate::storage::{Bucket, object_path};
use crate::training;
use serde_json::json;
use std::collections::BTreeMap;

/// The check's report, written last by the trainer (PROTOCOL.md, "Export mode").
pub(crate) const EXPORT_FILE: &str = "export.json";

/// The largest `export.json` read back (a few prompts' texts and figures).
const MAX_EXPORT_DOCUMENT_BYTES: u64 = 4 << 20;

/// The largest file an export writes: under the models bucket's 5 GB per object (the seed's
/// limit), so larger exports are sharded.
pub const MAX_SHARD_BYTES: u64 = 4_000_000_000;

/// The most shards an export may write (a 250 GB export at [`MAX_SHARD_BYTES`]).
const MAX_SHARDS: u32 = 64;

/// Greedy tokens the check compares per prompt.
const VERIFY_TOKENS: u32 = 8;

/// The longest Modelfile `SYSTEM` prompt.
const MAX_SYSTEM_PROMPT_BYTES: usize = 16 * 1024;

/// The tokenizer's files a merged export may carry (those its tokenizer has).
const TOKENIZER_FILES: [&str; 9] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "added_tokens.json",
];

/// An export as asked for, its model already resolved to an id.
pub struct ExportRequest {
    pub model: ArtifactId,
    pub format: ExportFormat,
    /// Default: f16.
    pub dtype: Option<ExportDtype>,
    pub quantize: Option<String>,
    pub ollama: bool,
    /// Default: the model's name and version.
    pub name: Option<String>,
    pub system_prompt: Option<String>,
    pub backend: Option<String>,
    pub gpu_type: Option<String>,
    /// Answer the job it would queue (its estimate) without queueing it.
    pub dry_run: bool,
}

impl Engine {
    /// Queues an export job (see [`ExportRequest`]); one over the monthly budget needs
    /// `confirm_over_budget`, as a training job does.
    pub async fn export_model(
        &self,
        req: ExportRequest,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob> {
        self.on_store(move |e| e.export_model_now(req, confirm_over_budget))
            .await
    }

    fn export_model_now(
        &self,
        req: ExportRequest,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob> {
        let model = self.artifact(req.model)?;
        let task = export_task(&req, &model)?;
        let run = self.first_run(&model)?;
        let place = self.placement(req.backend, req.gpu_type, None)?;
        let est = self.export_estimate(&task, &run, &place)?;
        if !req.dry_run {
            self.check_task_budget("this export", est.cost, confirm_over_budget)?;
        }
        let mut job = self.task_job(
            model.dataset_id,
            run,
            place,
            est.price_per_gpu_hour,
            est.cost,
            JobTask::Export(Box::new(task)),
        );
        job.estimated_completion_at =
            Some(now() + chrono::Duration::milliseconds((est.hours * 3.6e6) as i64));
        if !req.dry_run {
            self.queue(&job, &model.name)?;
        }
        Ok(job)
    }

    fn export_estimate(
        &self,
        task: &ExportTask,
        run: &super::compare::FirstRun,
        place: &super::jobs::Placement,
    ) -> Result<training::estimate::ExportJobEstimate> {
        training::estimate::export_job(&training::estimate::ExportJobInput {
            hyperparameters: &run.hyperparameters,
            parameters_billions: run.parameters_billions,
            gpu_type: &place.gpu_type,
            gpu_count: place.gpu_count,
            catalog: &place.catalog,
            training: &self.inner.config.training,
            format: task.format,
            dtype: task.dtype,
            quantize: task.quantize.as_deref(),
        })
        .map_err(|e| EngineError::Invalid(e.to_string()))
    }

    /// The spec's `export` object of an export job: the adapter where its trainer reads it,
    /// and how many shards the engine presigned names for.
    pub(crate) async fn export_spec(&self, job: &TrainingJob) -> Result<Option<ExportSpec>> {
        let Some(task) = job.task.export() else {
            return Ok(None);
        };
        let model = self.adapter_spec(job, task.model).await?;
        Ok(Some(ExportSpec {
            model,
            format: task.format,
            dtype: task.dtype,
            quantize: task.quantize.clone(),
            ollama: task.ollama,
            name: task.name.clone(),
            system_prompt: task.system_prompt.clone(),
            max_shard_bytes: MAX_SHARD_BYTES,
            max_shards: self.export_shards(job),
            verify: ExportVerify {
                prompts: None,
                tokens: VERIFY_TOKENS,
            },
        }))
    }

    /// How many shards an export job may write: its expected size with a margin, in
    /// [`MAX_SHARD_BYTES`] files.
    fn export_shards(&self, job: &TrainingJob) -> u32 {
        let params = job
            .parameters_billions
            .map(|b| b * 1e9)
            .or_else(|| {
                training::models::resolve(
                    &job.hyperparameters.base_model,
                    &self.inner.config.training,
                    None,
                )
                .ok()
                .map(|m| m.parameters as f64)
            })
            .unwrap_or(1e9);
        shards_for(params * 4.0)
    }

    /// Presigned PUT URLs for every file a remote export job may write (PROTOCOL.md lists
    /// them), in the folder its attempt's model will have.
    pub(crate) async fn export_puts(
        &self,
        job: &TrainingJob,
        ttl: std::time::Duration,
    ) -> Result<BTreeMap<String, String>> {
        let Some(task) = job.task.export() else {
            return Ok(BTreeMap::new());
        };
        let folder = remote_artifact_id(job).to_string();
        let mut puts = BTreeMap::new();
        for name in export_file_names(task, self.export_shards(job)) {
            let key = object_path(&[&job.user_id.to_string(), &folder, &name])?;
            let url = self.model_put_url(&key, ttl).await?;
            puts.insert(name, url);
        }
        Ok(puts)
    }

    /// Stores what a finished export job wrote (copied from its folder, or checked where a
    /// remote trainer uploaded it) and reads its check; an export whose check did not pass
    /// is refused with the figures (the trainer fails such a job itself; this guards a
    /// trainer that says otherwise).
    pub(crate) async fn collect_export(&self, job: &TrainingJob) -> Result<ModelArtifact> {
        let Some(task) = job.task.export() else {
            return Err(EngineError::Invalid(
                "collect_export called for a job that exports nothing".into(),
            ));
        };
        let names = export_file_names(task, self.export_shards(job));
        let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
        let (id, files) = if self.uploads_by_url(job) {
            let id = remote_artifact_id(job);
            (id, self.verify_uploaded(job, id, &allowed).await?)
        } else {
            super::artifacts::check_reported(job, &allowed)?;
            let id = ArtifactId::new();
            (id, self.copy_output(job, id).await?)
        };
        let entry = files
            .iter()
            .find(|f| f.path == EXPORT_FILE)
            .ok_or_else(|| EngineError::Invalid(format!("the trainer wrote no {EXPORT_FILE}")))?;
        let bytes = self
            .read_model_document(job, id, entry, MAX_EXPORT_DOCUMENT_BYTES)
            .await?;
        let check = parse_check(&bytes)?;
        if !check.passed {
            return Err(EngineError::Invalid(format!(
                "the export failed its check ({})",
                check.summary()
            )));
        }
        let (job, task) = (job.clone(), task.clone());
        self.on_store(move |e| e.export_record(&job, &task, id, files, check))
            .await
    }

    /// The record of a stored export: named as asked, versioned among its parent's exports
    /// of the same format, with its parent's quality and run (store reads: off the async
    /// workers).
    fn export_record(
        &self,
        job: &TrainingJob,
        task: &ExportTask,
        id: ArtifactId,
        files: Vec<ArtifactFile>,
        check: ExportCheck,
    ) -> Result<ModelArtifact> {
        let parent = self.as_user(job.user_id).artifact(task.model)?;
        let kind = task.format.kind();
        let version = self
            .inner
            .store
            .artifacts(job.user_id, crate::store::Page::ALL)?
            .iter()
            .filter(|a| a.parent_model_id == Some(parent.id) && a.kind == kind)
            .count() as u32
            + 1;
        let t = now();
        Ok(ModelArtifact {
            id,
            user_id: job.user_id,
            job_id: job.id,
            dataset_id: parent.dataset_id,
            name: task.name.clone(),
            version,
            status: ArtifactStatus::Stored,
            base_model: parent.base_model.clone(),
            quality_metrics: parent.quality_metrics.clone(),
            training_summary: TrainingSummary {
                final_cost: parent.training_summary.final_cost + job.current_cost,
                ..parent.training_summary.clone()
            },
            configuration: JsonValue(json!({
                "export": task,
                "adapter_configuration": parent.configuration.0,
            })),
            storage_bucket: Bucket::Models.name().into(),
            storage_path: object_path(&[&job.user_id.to_string(), &id.to_string()])?,
            files,
            parent_model_id: Some(parent.id),
            kind,
            export: Some(check),
            created_at: t,
            updated_at: t,
            deleted_at: None,
        })
    }
}

/// An export request checked against the model it exports: only an adapter exports; a
/// quantization and a Modelfile need a GGUF; names and prompts within their limits.
fn export_task(req: &ExportRequest, model: &ModelArtifact) -> Result<ExportTask> {
    if model.kind != ModelKind::Adapter {
        return Err(EngineError::Invalid(format!(
            "model {} is a {} export{}; export the adapter it was made from",
            model.id.short(),
            model.kind.as_str(),
            model
                .parent_model_id
                .map(|p| format!(" of model {}", p.short()))
                .unwrap_or_default()
        )));
    }
    let gguf_only = |what: &str| {
        EngineError::Invalid(format!(
            "{what} needs `--format gguf` (this export is `{}`)",
            req.format.as_str()
        ))
    };
    let quantize = match req
        .quantize
        .as_deref()
        .map(|q| q.trim().to_ascii_lowercase())
    {
        None => None,
        Some(q) if q.is_empty() => None,
        Some(_) if req.format != ExportFormat::Gguf => return Err(gguf_only("`--quantize`")),
        Some(q) if GGUF_QUANTIZATIONS.contains(&q.as_str()) => Some(q),
        Some(q) => {
            return Err(EngineError::Invalid(format!(
                "llama.cpp has no quantization `{}`; choose one of {}",
                crate::text::clean_line(&q),
                GGUF_QUANTIZATIONS.join(", ")
            )));
        }
    };
    if req.ollama && req.format != ExportFormat::Gguf {
        return Err(gguf_only("`--ollama` (Ollama imports a GGUF)"));
    }
    let name = match &req.name {
        Some(n) => n.trim().to_string(),
        None => default_name(model, req.format),
    };
    if !valid_export_name(&name) {
        return Err(EngineError::Invalid(format!(
            "export name `{}` must be 1 to {MAX_EXPORT_NAME} letters, digits, `.`, `_` or `-`, not starting with `.` or `-`",
            crate::text::clean_line(&name)
        )));
    }
    let system_prompt = req
        .system_prompt
        .as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(s) = &system_prompt {
        if !req.ollama {
            return Err(EngineError::Invalid(
                "a system prompt goes into the Ollama Modelfile: it needs `--ollama`".into(),
            ));
        }
        if s.len() > MAX_SYSTEM_PROMPT_BYTES {
            return Err(EngineError::Invalid(format!(
                "the system prompt is {} bytes; at most {MAX_SYSTEM_PROMPT_BYTES}",
                s.len()
            )));
        }
        if s.contains("\"\"\"") {
            return Err(EngineError::Invalid(
                "the system prompt cannot contain `\"\"\"` (it ends a Modelfile's quoted block)"
                    .into(),
            ));
        }
    }
    Ok(ExportTask {
        model: model.id,
        format: req.format,
        dtype: req.dtype.unwrap_or_default(),
        quantize,
        ollama: req.ollama,
        name,
        system_prompt,
    })
}

/// `zubrowka-smollm2-lora-v2-gguf`: the model's name and version and the format, cut to the
/// names an export accepts.
fn default_name(model: &ModelArtifact, format: ExportFormat) -> String {
    let raw = format!("{}-v{}-{}", model.name, model.version, format.as_str());
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_start_matches(['.', '-']).to_string();
    if name.len() > MAX_EXPORT_NAME {
        name.truncate(MAX_EXPORT_NAME);
    }
    if name.is_empty() {
        format.as_str().to_string()
    } else {
        name
    }
}

/// Shards of at most [`MAX_SHARD_BYTES`] for an export of about `bytes`, with a quarter's
/// margin and one spare, at most [`MAX_SHARDS`].
fn shards_for(bytes: f64) -> u32 {
    let n = (bytes * 1.25 / MAX_SHARD_BYTES as f64).ceil() as u32 + 1;
    n.clamp(1, MAX_SHARDS)
}

/// Every name an export may write (PROTOCOL.md, "Export mode"): a remote trainer gets a
/// presigned URL for each, and a trainer reporting any other is refused.
pub(crate) fn export_file_names(task: &ExportTask, max_shards: u32) -> Vec<String> {
    let mut names = vec![EXPORT_FILE.to_string()];
    let shards = |stem: &str, ext: &str, names: &mut Vec<String>| {
        names.push(format!("{stem}.{ext}"));
        for of in 2..=max_shards {
            for i in 1..=of {
                names.push(format!("{stem}-{i:05}-of-{of:05}.{ext}"));
            }
        }
    };
    match task.format {
        ExportFormat::Merged => {
            names.extend(
                ["config.json", "generation_config.json"]
                    .iter()
                    .chain(TOKENIZER_FILES.iter())
                    .map(|s| s.to_string()),
            );
            names.push("model.safetensors.index.json".into());
            shards("model", "safetensors", &mut names);
        }
        ExportFormat::Gguf => {
            shards("model", "gguf", &mut names);
            if task.ollama {
                names.push("Modelfile".into());
            }
        }
        ExportFormat::GgufLora => names.push("adapter.gguf".into()),
    }
    names
}

/// The check from an `export.json`, read leniently (a newer trainer's fields are left out),
/// its text cleaned of terminal controls.
pub(crate) fn parse_check(bytes: &[u8]) -> Result<ExportCheck> {
    let invalid = |e: String| EngineError::Invalid(format!("{EXPORT_FILE} is not valid: {e}"));
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("not a JSON object".into()))?;
    let passed = obj
        .get("passed")
        .and_then(|p| p.as_bool())
        .ok_or_else(|| invalid("`passed` is missing or not a boolean".into()))?;
    let number = |k: &str| {
        obj.get(k)
            .and_then(|x| x.as_f64())
            .filter(|x| x.is_finite())
    };
    let text =
        |v: Option<&serde_json::Value>| v.and_then(|x| x.as_str()).map(crate::text::clean_line);
    let seconds = obj.get("seconds").and_then(|s| s.as_object()).map(|s| {
        s.values()
            .filter_map(|x| x.as_f64())
            .filter(|x| x.is_finite())
            .sum::<f64>()
    });
    let prompts = obj.get("prompts").and_then(|p| p.as_array());
    let held = prompts.filter(|p| !p.is_empty()).map(|p| {
        let n = p
            .iter()
            .filter(|e| e.get("passed").and_then(|x| x.as_bool()) == Some(true))
            .count();
        n as f64 / p.len() as f64
    });
    Ok(ExportCheck {
        passed,
        checked: text(obj.get("checked")).unwrap_or_default(),
        max_abs_diff: number("max_abs_diff"),
        tolerance: number("tolerance"),
        agreement: number("agreement"),
        held,
        template_matches: obj.get("template_matches").and_then(|b| b.as_bool()),
        prompts: prompts.map_or(0, |p| p.len() as u32),
        tokens: prompts
            .and_then(|p| p.first())
            .and_then(|p| p.get("of"))
            .and_then(|n| n.as_u64())
            .map(|n| n as u32),
        ollama_command: text(obj.get("ollama").and_then(|o| o.get("command"))),
        seconds,
    })
}

#[cfg(test)]
mod tests;
