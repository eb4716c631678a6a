//! The evaluation after every run (`[evaluation]`): the spec's `evaluation` object (with the
//! team's probes file read and checked), and the `evaluation.json` the trainer wrote beside
//! the adapter, read back from the models bucket when the model is stored.

use super::{Engine, EngineError, Result};
use crate::backend::{EvaluationSpec, Probe};
use crate::config::{EvaluationConfig, MAX_PROBES};
use crate::domain::{ArtifactFile, Evaluation, TrainingJob};
use crate::events::EngineEvent;
use crate::ids::ArtifactId;
use crate::storage::{Bucket, object_path};
use std::path::Path;
use tokio::io::AsyncReadExt;

/// The file the trainer writes beside the adapter (trainer/PROTOCOL.md).
pub(crate) const EVALUATION_FILE: &str = "evaluation.json";

/// The largest evaluation document read back (64 samples and 200 probes of 4,096-token answers
/// from two models fit many times over).
const MAX_EVALUATION_BYTES: u64 = 32 << 20;

/// The longest probe prompt or reference, in characters.
const MAX_PROBE_CHARS: usize = 16_384;

impl Engine {
    /// The spec's `evaluation` object, or `None` when `[evaluation] enabled = false`.
    pub(crate) fn evaluation_spec(&self) -> Result<Option<EvaluationSpec>> {
        let cfg = &self.inner.config.evaluation;
        if !cfg.enabled {
            return Ok(None);
        }
        self.evaluation_settings().map(Some)
    }

    /// `[evaluation]` as the spec's object whether or not runs are evaluated (an evaluation
    /// job uses its settings either way).
    pub(crate) fn evaluation_settings(&self) -> Result<EvaluationSpec> {
        spec_of(
            &self.inner.config.evaluation,
            &self.inner.paths.config_file(),
        )
    }

    /// What a model's run measured of it (the caller's models only, like every model read).
    pub fn model_evaluation(&self, id: ArtifactId) -> Result<Evaluation> {
        let model = self.artifact(id)?;
        self.inner
            .store
            .evaluation(model.id)?
            .ok_or_else(|| EngineError::NotEvaluated {
                model: model.id.short(),
            })
    }

    /// The evaluation a just-stored model's run wrote, if it wrote one. A missing, damaged or
    /// unreadable document never fails the job (the adapter is what was asked for): it is
    /// said in the job's log and the model is kept without one.
    pub(crate) async fn read_evaluation(
        &self,
        job: &TrainingJob,
        id: ArtifactId,
        files: &[ArtifactFile],
    ) -> Option<Evaluation> {
        let entry = files.iter().find(|f| f.path == EVALUATION_FILE)?;
        match self.load_evaluation(job, id, entry).await {
            Ok(e) => Some(e),
            Err(e) => {
                self.inner.store.publish(EngineEvent::JobLog {
                    job_id: job.id,
                    line: crate::text::clean_line(&format!(
                        "engine: the run's evaluation could not be read ({e}); the model is kept without it"
                    )),
                });
                tracing::warn!("job {}: evaluation.json: {e}", job.id);
                None
            }
        }
    }

    async fn load_evaluation(
        &self,
        job: &TrainingJob,
        id: ArtifactId,
        entry: &ArtifactFile,
    ) -> Result<Evaluation> {
        let bytes = self
            .read_model_document(job, id, entry, MAX_EVALUATION_BYTES)
            .await?;
        parse(&bytes)
    }

    /// A small document the trainer wrote into the models bucket beside an adapter (or, for
    /// an evaluation job, in the folder its URLs named), read whole and checked against the
    /// size and sha256 the trainer reported.
    pub(crate) async fn read_model_document(
        &self,
        job: &TrainingJob,
        folder: ArtifactId,
        entry: &ArtifactFile,
        max: u64,
    ) -> Result<Vec<u8>> {
        if entry.size > max {
            return Err(EngineError::Invalid(format!(
                "{} is {} bytes, over the {max} read",
                entry.path, entry.size
            )));
        }
        let key = object_path(&[&job.user_id.to_string(), &folder.to_string(), &entry.path])?;
        let reader = self.inner.objects.open(Bucket::Models, &key).await?;
        let mut verified = crate::storage::verify::Verified::new(
            reader,
            format!("{} of job {}", entry.path, job.id.short()),
            entry.size,
            entry.sha256.clone(),
        );
        let mut bytes = Vec::with_capacity(entry.size as usize);
        verified
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(bytes)
    }
}

/// An `evaluation.json` as the engine keeps it: parsed leniently (a newer trainer's fields
/// are left out), its text cleaned of terminal controls, non-finite numbers dropped.
pub(crate) fn parse(bytes: &[u8]) -> Result<Evaluation> {
    let invalid = |e: String| EngineError::Invalid(format!("{EVALUATION_FILE} is not valid: {e}"));
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !v.is_object() {
        return Err(invalid("not a JSON object".into()));
    }
    let e: Evaluation = serde_json::from_value(v).map_err(|e| invalid(e.to_string()))?;
    Ok(e.sanitised())
}

/// `[evaluation]` as the spec's object, the probes file read (relative paths are relative to
/// the config file's folder).
fn spec_of(cfg: &EvaluationConfig, config_file: &Path) -> Result<EvaluationSpec> {
    let probes = match &cfg.probes {
        Some(p) => {
            let path = config_file
                .parent()
                .map(|dir| dir.join(p))
                .unwrap_or_else(|| p.clone());
            let text = std::fs::read_to_string(&path).map_err(|source| EngineError::Io {
                action: "reading the probes file (`evaluation.probes`)",
                path: path.clone(),
                source,
            })?;
            read_probes(&text).map_err(|e| {
                EngineError::Invalid(format!(
                    "the probes file {} (`evaluation.probes`): {e}",
                    path.display()
                ))
            })?
        }
        None => Vec::new(),
    };
    Ok(EvaluationSpec {
        samples: cfg.samples,
        max_new_tokens: cfg.max_new_tokens,
        builtin_probes: cfg.builtin_probes,
        probes,
    })
}

/// A probes file: one `{"prompt": "…", "reference": "…"}` per line (`reference`, or
/// `completion`, optional); blank lines are skipped. Errors name the line.
pub(crate) fn read_probes(text: &str) -> std::result::Result<Vec<Probe>, String> {
    let mut probes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {n} is not JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| format!("line {n} is not an object {{\"prompt\": …}}"))?;
        let text_of = |key: &str| -> std::result::Result<Option<String>, String> {
            match obj.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.chars().count() <= MAX_PROBE_CHARS => {
                    Ok(Some(s.clone()))
                }
                Some(serde_json::Value::String(_)) => Err(format!(
                    "line {n}: \"{key}\" is longer than {MAX_PROBE_CHARS} characters"
                )),
                Some(_) => Err(format!("line {n}: \"{key}\" is not a string")),
            }
        };
        let prompt = text_of("prompt")?
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| format!("line {n} has no \"prompt\" (a non-empty string)"))?;
        let reference = match text_of("reference")? {
            Some(r) => Some(r),
            None => text_of("completion")?,
        };
        probes.push(Probe { prompt, reference });
        if probes.len() > MAX_PROBES {
            return Err(format!("more than {MAX_PROBES} probes"));
        }
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_files_read_with_their_problems_named() {
        let p = read_probes(
            "{\"prompt\": \"What is the capital of Zubrowka?\", \"reference\": \"Lutz\"}\n\n{\"prompt\": \"Say hi.\"}\n{\"prompt\": \"2+2?\", \"completion\": \"4\"}\n",
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].reference.as_deref(), Some("Lutz"));
        assert_eq!(
            (p[1].reference.as_deref(), p[2].reference.as_deref()),
            (None, Some("4"))
        );
        for (text, said) in [
            ("{\"prompt\": \"a\"}\nnot json\n", "line 2 is not JSON"),
            ("[1]\n", "line 1 is not an object"),
            ("{\"reference\": \"x\"}\n", "line 1 has no \"prompt\""),
            ("{\"prompt\": \"  \"}\n", "line 1 has no \"prompt\""),
            ("{\"prompt\": 3}\n", "line 1: \"prompt\" is not a string"),
        ] {
            let e = read_probes(text).unwrap_err();
            assert!(e.contains(said), "{text:?}: {e}");
        }
        let many = "{\"prompt\": \"p\"}\n".repeat(MAX_PROBES + 1);
        assert!(read_probes(&many).unwrap_err().contains("more than"));
    }

    #[test]
    fn the_trainers_document_is_read_leniently_and_cleaned() {
        let e = parse(br#"{"version": 1, "base_loss": 2.5, "adapter_loss": 1.0, "future": true,
            "samples": [{"prompt": "q\u001b[2J", "reference": "r", "base": "b", "adapter": "a\u001b]52;c;x\u0007", "adapter_score": 0.9}],
            "probes": []}"#)
        .unwrap();
        assert_eq!(e.samples[0].prompt, "q");
        assert_eq!(e.samples[0].adapter, "a");
        assert_eq!(e.held_out_improvement(), Some(60.0));
        assert!(parse(b"[]").is_err());
    }

    #[test]
    fn the_spec_follows_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("probes.jsonl"), "{\"prompt\": \"p\"}\n").unwrap();
        let cfg = EvaluationConfig {
            probes: Some("probes.jsonl".into()),
            ..Default::default()
        };
        let s = spec_of(&cfg, &dir.path().join("config.toml")).unwrap();
        assert_eq!(
            (s.samples, s.max_new_tokens, s.builtin_probes),
            (8, 256, true)
        );
        assert_eq!(s.probes.len(), 1);
        let missing = EvaluationConfig {
            probes: Some("nope.jsonl".into()),
            ..Default::default()
        };
        let e = spec_of(&missing, &dir.path().join("config.toml")).unwrap_err();
        assert!(e.to_string().contains("nope.jsonl"), "{e}");
    }
}
