//! Cleaning a dataset: a new dataset made of the valid examples of one with a few bad ones,
//! with a report of what was dropped. The way forward for a file that is almost right.

use super::{Engine, EngineError, NewDataset, Result};
use crate::domain::{Dataset, Severity};
use crate::ids::DatasetId;
use crate::storage::Bucket;
use crate::validation::{self, RecordVerdict};
pub use brightrun_api::reports::{CleanReport, DroppedRecord};
use std::io::Write;

/// How to clean.
#[derive(Clone, Debug, Default)]
pub struct CleanOptions {
    /// Also drop examples that exactly repeat an earlier one (they weigh more in training
    /// and leak between the splits).
    pub drop_duplicates: bool,
    /// The new dataset's name; by default the old name with " (clean)".
    pub name: Option<String>,
}

impl Engine {
    /// Makes a new dataset from the valid examples of `id` (optionally without exact
    /// duplicates), written as JSONL, one example per line as it was in the file, and imports
    /// it like any file; returns the new dataset (validated) and what was dropped, with lines.
    /// Preference and KTO files are cleaned like the others: each kept record keeps its own
    /// layout. Refused when nothing valid is left, or when the file as a whole is refused
    /// (multimodal or process-reward data: those need converting, not cleaning).
    pub async fn clean_dataset(
        &self,
        id: DatasetId,
        opts: CleanOptions,
    ) -> Result<(Dataset, CleanReport)> {
        let original = self.on_store(move |e| e.dataset(id)).await?;
        // A local store's file is read in place; any other store's object is streamed through
        // the cleaner, as re-validation does.
        let local = self
            .inner
            .objects
            .local_path(Bucket::Datasets, &original.storage_path)
            .filter(|p| p.is_file());
        let path = local.clone().unwrap_or_else(|| {
            std::path::PathBuf::from(format!(
                "{}/{}",
                original.storage_bucket, original.storage_path
            ))
        });
        let streamed = match local {
            Some(_) => None,
            None => Some(
                self.inner
                    .objects
                    .open(Bucket::Datasets, &original.storage_path)
                    .await?,
            ),
        };
        let tmp_dir = self.inner.paths.data_dir.join("tmp");
        crate::private::create_dir_all(&tmp_dir).map_err(|source| EngineError::Io {
            action: "creating",
            path: tmp_dir.clone(),
            source,
        })?;
        let stem = std::path::Path::new(&original.file_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dataset".into());
        let out_dir = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
        crate::private::create_dir_all(&out_dir).map_err(|source| EngineError::Io {
            action: "creating",
            path: out_dir.clone(),
            source,
        })?;
        let out_path = out_dir.join(format!("{stem}.clean.jsonl"));
        let opts_v = self.validation_options()?;
        let file_name = original.file_name.clone();
        let drop_duplicates = opts.drop_duplicates;
        let out = out_path.clone();
        let src = path.clone();
        let work = crate::store::off_runtime(move || {
            let input: Box<dyn std::io::Read> = match streamed {
                None => Box::new(std::fs::File::open(&src)?),
                Some(body) => Box::new(std::io::BufReader::with_capacity(
                    1 << 20,
                    tokio_util::io::SyncIoBridge::new(body),
                )),
            };
            clean_file(input, &out, &file_name, &opts_v, drop_duplicates)
        })
        .await
        .map_err(|e| EngineError::Invalid(format!("cleaning stopped: {e}")))?;
        let result = async {
            let report = work.map_err(|source| EngineError::Io {
                action: "cleaning",
                path: path.clone(),
                source,
            })?;
            if report.kept == 0 {
                return Err(EngineError::Invalid(format!(
                    "dataset {} has no valid example to keep ({} records dropped); fix the file instead",
                    id.short(),
                    report.dropped.len()
                )));
            }
            let name = opts
                .name
                .clone()
                .unwrap_or_else(|| format!("{} (clean)", original.name));
            let description = format!(
                "cleaned from {} ({}): kept {}, dropped {}{}",
                original.name,
                id.short(),
                crate::wording::thousands(report.kept),
                crate::wording::thousands(report.dropped.len() as u64),
                if report.duplicates_dropped > 0 {
                    format!(
                        " ({})",
                        crate::wording::counted(report.duplicates_dropped, "duplicate")
                    )
                } else {
                    String::new()
                }
            );
            let dataset = self
                .add_dataset(
                    &out_path,
                    NewDataset {
                        name: Some(name),
                        description: Some(description),
                    },
                    &|_, _| {},
                )
                .await?;
            let dataset = self.validate_dataset(dataset.id).await?;
            Ok((dataset, report))
        }
        .await;
        let _ = std::fs::remove_dir_all(&out_dir);
        result
    }
}

/// Writes the valid records of `src` to `out` (a 0600 file in the data dir's tmp folder) as
/// JSONL and says what was left out.
fn clean_file(
    input: impl std::io::Read,
    out: &std::path::Path,
    file_name: &str,
    opts: &validation::ValidationOptions,
    drop_duplicates: bool,
) -> std::io::Result<CleanReport> {
    let mut writer = std::io::BufWriter::new(crate::private::create_file(out)?);
    let mut report = CleanReport::default();
    let mut failed = None;
    let opts = validation::ValidationOptions {
        // Every finding, so each dropped record gets its reason.
        max_issues_kept: usize::MAX,
        ..opts.clone()
    };
    let verdict = validation::validate_reader_with(
        input,
        file_name,
        &opts,
        &mut |_| {},
        &mut |r: &RecordVerdict<'_>| {
            let duplicate = r.duplicate_of.is_some() && drop_duplicates;
            if r.valid && !duplicate {
                report.kept += 1;
                // An array element may span lines: whitespace between tokens only, since
                // strings cannot hold raw line breaks.
                let line: Vec<u8> = r
                    .bytes
                    .iter()
                    .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                    .collect();
                if let Err(e) = writer
                    .write_all(line.trim_ascii())
                    .and_then(|()| writer.write_all(b"\n"))
                {
                    failed.get_or_insert(e);
                }
            } else {
                if duplicate {
                    report.duplicates_dropped += 1;
                }
                report.dropped.push(DroppedRecord {
                    line: r.line,
                    element: r.element,
                    reason: if duplicate {
                        let what = if r.element.is_some() {
                            "element"
                        } else {
                            "line"
                        };
                        format!(
                            "an exact duplicate of {what} {}",
                            r.duplicate_of.unwrap_or(0)
                        )
                    } else {
                        String::new()
                    },
                });
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    writer.flush()?;
    // The reasons, from the findings on the same line (and element).
    for d in report.dropped.iter_mut().filter(|d| d.reason.is_empty()) {
        let prefix = d.element.map(|e| format!("element {e}: "));
        let found = verdict.issues.iter().find(|i| {
            i.severity == Severity::Error
                && i.line == d.line
                && prefix.as_ref().is_none_or(|p| i.error.starts_with(p))
        });
        d.reason = match found {
            Some(i) => i.error.clone(),
            None => "not a valid example of the file's format".into(),
        };
    }
    Ok(report)
}
