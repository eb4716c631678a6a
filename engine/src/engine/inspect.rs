//! `brightrun datasets inspect`: what the trainer will learn from a dataset with a base model.
//! The trainer's own code renders and masks (`python -m brightrun_trainer inspect`, PROTOCOL.md
//! "Inspect mode"), run on this machine with the trainer's environment; the engine never
//! re-implements a chat template. Replies are cached per dataset (its sha256), model (its
//! tokenizer files where they can be seen), length and the trainer's encoding code, so a second
//! look is instant and the estimate can use exact counts.

use super::{Engine, EngineError, Result};
use crate::api::InspectAt;
use crate::domain::{Dataset, DatasetInspection, DatasetStatus, ExampleInspection};
use crate::events::{EngineEvent, Progress, ProgressTask};
use crate::ids::DatasetId;
use crate::storage::Bucket;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Inspections running at once: each is a Python process of about 1 GB (torch's import), so a
/// burst of requests waits its turn instead of filling the machine's memory.
static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// How long one example may take (a cold start loads the tokenizer), and a whole dataset.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(300);
const STATS_TIMEOUT: Duration = Duration::from_secs(3 * 3600);

/// What to inspect.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectRequest {
    pub dataset: DatasetId,
    pub model: Option<String>,
    pub at: InspectAt,
    pub max_seq_length: Option<u32>,
    pub stats: bool,
}

/// The trainer's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Inspected {
    Example(Box<ExampleInspection>),
    Stats(Box<DatasetInspection>),
}

/// A request resolved against the dataset and the config: everything its cache key and the
/// trainer need.
struct Resolved {
    dataset: Dataset,
    model: String,
    max_seq_length: u32,
    at: InspectAt,
    stats: bool,
}

impl Engine {
    /// Renders one example, or counts the whole dataset, as the trainer will train it.
    pub async fn inspect_dataset(&self, req: InspectRequest) -> Result<Inspected> {
        let r = self.on_store(move |e| e.resolve_inspection(req)).await?;
        let cache = self.inspection_cache(&r)?;
        if let Some(hit) = read_cached(&cache, r.stats) {
            return Ok(hit);
        }
        if let Some(why) = unavailable_offline(&r.model) {
            return Err(EngineError::Invalid(why));
        }
        let file = self.dataset_file_here(&r.dataset).await?;
        let request = json!({
            "version": 1,
            "dataset": file,
            "base_model": r.model,
            "max_seq_length": r.max_seq_length,
            "mode": if r.stats { "stats" } else { "example" },
            "example": match r.at { InspectAt::Index(i) => Some(i), _ => None },
            "line": match r.at { InspectAt::Line(l) => Some(l), _ => None },
        });
        let mut reply = self.run_inspect(&request, r.dataset.id, r.stats).await?;
        let inspected = parse(&reply, r.stats, &r.model)?;
        reply["base_model"] = r.model.clone().into();
        write_cached(&cache, &reply);
        Ok(inspected)
    }

    /// What earlier inspections of this pairing left for an estimate: the exact counts (when
    /// `--stats` made them) and the warnings (of the counts, else of the first example),
    /// each as `message (code)`. Nothing when it was never inspected; each cache file is read
    /// once (estimates run on every key press).
    pub(crate) fn cached_pairing(
        &self,
        dataset: &Dataset,
        model: &str,
        max_seq_length: u32,
    ) -> (Option<crate::domain::TokenStats>, Vec<String>) {
        let cached = |stats| {
            let r = Resolved {
                dataset: dataset.clone(),
                model: model.to_string(),
                max_seq_length,
                at: InspectAt::First,
                stats,
            };
            read_cached(&self.inspection_cache(&r).ok()?, stats)
        };
        let said = |w: Vec<crate::domain::InspectionWarning>| {
            w.into_iter()
                .map(|w| format!("{} ({})", w.message, w.code))
                .collect()
        };
        match cached(true) {
            Some(Inspected::Stats(s)) => (Some(s.stats), said(s.warnings)),
            _ => match cached(false) {
                Some(Inspected::Example(x)) => (None, said(x.warnings)),
                _ => (None, Vec::new()),
            },
        }
    }

    fn resolve_inspection(&self, req: InspectRequest) -> Result<Resolved> {
        let dataset = self.dataset(req.dataset)?;
        if dataset.status != DatasetStatus::Ready {
            return Err(EngineError::conflict(
                crate::api::Reason::DatasetNotReady,
                format!(
                    "dataset {} is {}, not ready: it is inspected once validated",
                    dataset.id.short(),
                    dataset.status.phrase()
                ),
            ));
        }
        // The inspector renders one conversation the way SFT trains it; a pair's two sequences
        // (or a labelled reply) are rendered by the preference trainer, which it does not run.
        if let Some(f) = dataset.format.filter(|f| !f.is_supervised()) {
            return Err(EngineError::InvalidField {
                field: "dataset".into(),
                message: format!(
                    "dataset {} is {} file: `datasets inspect` shows how a supervised (SFT) example is rendered and masked, and does not render preference pairs or KTO replies yet; its pair statistics are in `datasets show`",
                    dataset.id.short(),
                    f.label()
                ),
            });
        }
        let training = &self.inner.config.training;
        let model = req
            .model
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| training.default_base_model.clone());
        let max_seq_length = match req.max_seq_length {
            Some(n) => n,
            None => {
                crate::training::presets::resolve_default(training)
                    .map_err(|e| EngineError::Invalid(e.to_string()))?
                    .1
                    .max_seq_length
            }
        };
        let (low, high) = crate::training::ranges::MAX_SEQ_LENGTH;
        if !(low..=high).contains(&max_seq_length) {
            return Err(EngineError::InvalidField {
                field: "max_seq_length".into(),
                message: format!("{max_seq_length} is not in {low}..={high}"),
            });
        }
        Ok(Resolved {
            dataset,
            model,
            max_seq_length,
            at: req.at,
            stats: req.stats,
        })
    }

    /// The cache file of a resolved request.
    fn inspection_cache(&self, r: &Resolved) -> Result<PathBuf> {
        let source = crate::trainer_env::source_dir(&self.inner.config)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let key = json!({
            "v": 1,
            "dataset": r.dataset.id,
            "sha256": r.dataset.sha256,
            "model": r.model,
            "tokenizer": tokenizer_fingerprint(&r.model),
            "code": code_fingerprint(&source),
            "max_seq_length": r.max_seq_length,
            "stats": r.stats,
            "at": format!("{:?}", r.at),
        });
        let hash = hex::encode(Sha256::digest(key.to_string().as_bytes()));
        Ok(self
            .inner
            .paths
            .data_dir
            .join("cache")
            .join("inspect")
            .join(format!("{}.json", &hash[..32])))
    }

    /// The dataset's file on this machine: in place in a local store, else downloaded once
    /// (sha256 checked) into the cache.
    async fn dataset_file_here(&self, dataset: &Dataset) -> Result<PathBuf> {
        let objects = &self.inner.objects;
        if let Some(p) = objects.local_path(Bucket::Datasets, &dataset.storage_path) {
            return Ok(p);
        }
        let dir = self
            .inner
            .paths
            .data_dir
            .join("cache")
            .join("datasets")
            .join(dataset.id.to_string());
        let dest = dir.join("dataset.jsonl");
        let done = dir.join(".complete");
        if done.is_file() && dest.is_file() {
            return Ok(dest);
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| EngineError::Io {
                action: "writing",
                path,
                source,
            }
        };
        crate::private::create_dir_all_async(&dir)
            .await
            .map_err(io(&dir))?;
        let got = objects
            .get_to_file(Bucket::Datasets, &dataset.storage_path, &dest, &|_, _| {})
            .await?;
        if dataset
            .sha256
            .as_ref()
            .is_some_and(|want| *want != got.sha256)
        {
            let _ = std::fs::remove_file(&dest);
            return Err(EngineError::Invalid(format!(
                "the stored dataset {} does not match its recorded sha256",
                dataset.storage_path
            )));
        }
        crate::private::create_file(&done).map_err(io(&done))?;
        Ok(dest)
    }

    async fn inspect_trainer(&self) -> Result<crate::trainer_env::TrainerCommand> {
        self.local_trainer().await.map_err(|e| {
            EngineError::Invalid(format!(
                "inspecting runs the trainer's code on the engine's machine: {e}"
            ))
        })
    }

    /// Runs the trainer's inspect mode and returns its JSON reply (an `error` in it is the
    /// caller's to read).
    async fn run_inspect(&self, request: &Value, dataset: DatasetId, stats: bool) -> Result<Value> {
        let trainer = self.inspect_trainer().await?;
        let _turn = RUNNING.acquire().await.map_err(|_| {
            EngineError::Invalid("the engine is stopping; inspect again after it starts".into())
        })?;
        let mut cmd = tokio::process::Command::new(&trainer.python);
        cmd.args(["-m", "brightrun_trainer", "inspect", "--request-json"])
            .arg(request.to_string())
            .env(
                "PYTHONPATH",
                crate::backend::local::prepend_path(&trainer.source_dir),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let limit = if stats {
            STATS_TIMEOUT
        } else {
            EXAMPLE_TIMEOUT
        };
        let io = |source| EngineError::Io {
            action: "running",
            path: trainer.python.clone(),
            source,
        };
        let mut child = cmd.spawn().map_err(io)?;
        let stderr = child.stderr.take().expect("piped");
        let progress = self.inspect_progress(stderr, dataset);
        let out = match tokio::time::timeout(limit, child.wait_with_output()).await {
            Err(_) => {
                return Err(EngineError::Invalid(format!(
                    "the trainer's inspection ran past {} s and was stopped",
                    limit.as_secs()
                )));
            }
            Ok(r) => r.map_err(io)?,
        };
        let tail = progress.await.unwrap_or_default();
        self.inner.store.publish(EngineEvent::Progress(Progress {
            task: ProgressTask::Inspection(dataset),
            done: 1,
            total: Some(1),
            message: "done".into(),
        }));
        serde_json::from_slice::<Value>(&out.stdout).map_err(|e| {
            EngineError::Invalid(format!(
                "the trainer's inspection gave no reply ({e}; exit {}): {}",
                out.status,
                crate::text::clean_line(&tail.join(" | "))
            ))
        })
    }

    /// Passes the trainer's progress lines (`inspect: N records read…`, at most one a second)
    /// on as live progress of the dataset, and keeps the last few lines for an error.
    fn inspect_progress(
        &self,
        stderr: tokio::process::ChildStderr,
        dataset: DatasetId,
    ) -> tokio::task::JoinHandle<Vec<String>> {
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            let mut tail = std::collections::VecDeque::with_capacity(6);
            while let Ok(Some(line)) = lines.next_line().await {
                let line = crate::text::clean_line(&line);
                if let Some(message) = line.strip_prefix("inspect: ") {
                    store.publish(EngineEvent::Progress(Progress {
                        task: ProgressTask::Inspection(dataset),
                        done: 0,
                        total: None,
                        message: message.to_string(),
                    }));
                }
                if tail.len() == 5 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail.into_iter().collect()
        })
    }
}

/// The trainer's reply as the API's type; its `error` as the engine's.
fn parse(reply: &Value, stats: bool, model: &str) -> Result<Inspected> {
    if let Some(err) = reply.get("error") {
        let reason = err["reason"]
            .as_str()
            .unwrap_or("the trainer gave no reason");
        return Err(EngineError::Invalid(crate::text::clean_line(reason)));
    }
    let mut with_model = reply.clone();
    with_model["base_model"] = model.into();
    Ok(if stats {
        Inspected::Stats(Box::new(decode(with_model)?))
    } else {
        Inspected::Example(Box::new(decode(with_model)?))
    })
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        EngineError::Invalid(format!(
            "the trainer's inspection reply is not as expected: {e}"
        ))
    })
}

fn read_cached(path: &Path, stats: bool) -> Option<Inspected> {
    let bytes = std::fs::read(path).ok()?;
    let reply: Value = serde_json::from_slice(&bytes).ok()?;
    let model = reply["base_model"].as_str().unwrap_or_default().to_string();
    parse(&reply, stats, &model).ok()
}

/// Keeps a reply (with no error) for the next look; a cache that cannot be written only costs
/// the next look its time.
fn write_cached(path: &Path, reply: &Value) {
    if reply.get("error").is_some() {
        return;
    }
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::io::Write::write_all(
            &mut crate::private::create_file(&tmp)?,
            reply.to_string().as_bytes(),
        )?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        tracing::warn!("keeping an inspection in {}: {e}", path.display());
    }
}

/// Why `model` cannot be loaded here, said before a Python process is started for it: a folder
/// with no tokenizer in it, or, offline (`HF_HUB_OFFLINE`), a Hub id with no copy in the local
/// Hugging Face cache. BrightRun's own models (the trainer builds them) are left to the
/// trainer.
fn unavailable_offline(model: &str) -> Option<String> {
    let folder = Path::new(model);
    if folder.is_dir() {
        let has = |f: &str| folder.join(f).is_file();
        return (!has("tokenizer.json") && !has("tokenizer_config.json")).then(|| {
            format!("{model} is a folder with no tokenizer in it (no tokenizer.json or tokenizer_config.json)")
        });
    }
    let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    if !offline
        || crate::training::models::builtin(model).is_some_and(|_| model.starts_with("brightrun/"))
    {
        return None;
    }
    let folder = format!("models--{}", model.replace('/', "--"));
    let cached = crate::tokens::hf_cache_roots().iter().any(|root| {
        std::fs::read_dir(root.join(&folder).join("snapshots"))
            .is_ok_and(|mut entries| entries.next().is_some())
    });
    (!cached).then(|| {
        format!(
            "base model {model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: download it once with `huggingface-cli download {model}` or name a local folder"
        )
    })
}

/// What changes a tokenizer, where it can be seen without loading it: a local folder's
/// tokenizer files (size and time), or the Hugging Face cache's revision of a Hub id.
fn tokenizer_fingerprint(model: &str) -> String {
    let folder = Path::new(model);
    let files = if folder.is_dir() {
        vec![
            folder.join("tokenizer.json"),
            folder.join("tokenizer_config.json"),
            folder.join("chat_template.jinja"),
        ]
    } else {
        let hub = std::env::var_os("HF_HOME")
            .map(|h| PathBuf::from(h).join("hub"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
            })
            .unwrap_or_default();
        vec![
            hub.join(format!("models--{}", model.replace('/', "--")))
                .join("refs/main"),
        ]
    };
    files
        .iter()
        .map(|f| match std::fs::metadata(f) {
            Ok(m) => format!("{}:{}:{:?}", f.display(), m.len(), m.modified().ok()),
            Err(_) => format!("{}:-", f.display()),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The trainer code that decides rendering and masking (and builds the built-in models, whose
/// tokenizers no Hugging Face cache entry tracks): another version may train other tokens. Read once per process (estimates look it up on every key press).
fn code_fingerprint(source: &Path) -> String {
    static SEEN: std::sync::OnceLock<(PathBuf, String)> = std::sync::OnceLock::new();
    let (path, hash) = SEEN.get_or_init(|| (source.to_path_buf(), hash_code(source)));
    if path == source {
        hash.clone()
    } else {
        hash_code(source)
    }
}

fn hash_code(source: &Path) -> String {
    let mut h = Sha256::new();
    // The rendering and masking, the inspector itself, and the built-in models' builds.
    for f in [
        "encoding.py",
        "data.py",
        "inspection.py",
        "tiny_model.py",
        "smollm2.py",
    ] {
        if let Ok(bytes) = std::fs::read(source.join("brightrun_trainer").join(f)) {
            h.update(&bytes);
        }
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_a_tokenizer_is_refused_before_python_starts() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().to_str().unwrap();
        assert!(unavailable_offline(model).unwrap().contains("no tokenizer"));
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        assert_eq!(unavailable_offline(model), None);
    }

    #[test]
    fn a_change_to_the_inspector_or_the_encoding_makes_a_new_cache_key() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("brightrun_trainer");
        std::fs::create_dir_all(&code).unwrap();
        for f in ["encoding.py", "data.py", "inspection.py", "smollm2.py"] {
            std::fs::write(code.join(f), f).unwrap();
        }
        let before = hash_code(dir.path());
        for f in ["inspection.py", "encoding.py", "smollm2.py"] {
            std::fs::write(code.join(f), "changed").unwrap();
            assert_ne!(hash_code(dir.path()), before, "{f}");
        }
    }
}
