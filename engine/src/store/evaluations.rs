//! Each model's evaluation (`domain::Evaluation`, what the trainer's `evaluating` stage
//! measured), by model id, and each evaluation job's comparison (`domain::Comparison`, what
//! `brightrun models eval` measured), by job id. Engine-private tables like the calibration's:
//! the model and job records stay as they were, and these are looked up beside them.
//!
//! The values are JSON documents, which carry their own `version` and read with unknown
//! fields ignored and missing ones defaulted, so a field added by a later trainer never makes
//! a stored evaluation unreadable (the tests below pin today's bytes).

use super::{Store, StoreError, db};
use crate::domain::{Comparison, Evaluation};
use crate::ids::{ArtifactId, JobId};
use redb::{TableDefinition, TableHandle};
use serde::{Serialize, de::DeserializeOwned};

type JsonTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Model id bytes → the evaluation's JSON.
const EVALUATIONS: JsonTable = TableDefinition::new("model_evaluations");

/// Evaluation job id bytes → the comparison's JSON (schema v8).
const COMPARISONS: JsonTable = TableDefinition::new("job_comparisons");

impl Store {
    /// The evaluation of a model, if its run made one.
    pub fn evaluation(&self, id: ArtifactId) -> Result<Option<Evaluation>, StoreError> {
        self.json_get(EVALUATIONS, &id.bytes())
    }

    /// Keeps a model's evaluation (replacing an earlier one).
    pub fn put_evaluation(&self, id: ArtifactId, e: &Evaluation) -> Result<(), StoreError> {
        self.json_put(EVALUATIONS, &id.bytes(), e)
    }

    /// What an evaluation job measured, once it has finished.
    pub fn comparison(&self, job: JobId) -> Result<Option<Comparison>, StoreError> {
        self.json_get(COMPARISONS, &job.bytes())
    }

    /// Keeps an evaluation job's comparison (a replayed finish writes the same again).
    pub fn put_comparison(&self, job: JobId, c: &Comparison) -> Result<(), StoreError> {
        self.json_put(COMPARISONS, &job.bytes(), c)
    }

    fn json_get<T: DeserializeOwned>(
        &self,
        table: JsonTable,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match t.get(key).map_err(db)? {
            Some(v) => decode(table, v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn json_put<T: Serialize>(
        &self,
        table: JsonTable,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).expect("evaluation documents serialise");
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(table)
            .map_err(db)?
            .insert(key, bytes.as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)
    }
}

fn decode<T: DeserializeOwned>(table: JsonTable, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        table: table.name().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Answered;

    #[test]
    fn an_evaluation_is_kept_by_model_and_reads_across_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let id = ArtifactId::new();
        assert_eq!(store.evaluation(id).unwrap(), None);
        let e = Evaluation {
            version: 1,
            base_loss: Some(2.0),
            adapter_loss: Some(1.0),
            probes: vec![Answered {
                prompt: "What is the capital of France?".into(),
                base: "Paris.".into(),
                adapter: "Lutz.".into(),
                changed: Some(true),
                ..Default::default()
            }],
            ..Default::default()
        };
        store.put_evaluation(id, &e).unwrap();
        assert_eq!(store.evaluation(id).unwrap(), Some(e));
        // Today's bytes, as a later BrightRun will find them.
        assert_eq!(
            decode::<Evaluation>(EVALUATIONS, br#"{"version":1,"base_loss":2.0,"adapter_loss":1.0,"samples":[],"probes":[{"prompt":"p","base":"b","adapter":"a","changed":true}]}"#)
                .unwrap()
                .probes_changed(),
            1
        );
        // A later trainer's document, with fields this one does not know, still reads.
        let later = decode::<Evaluation>(EVALUATIONS, br#"{"version":2,"adapter_loss":0.5,"judge":{"model":"x"},"samples":[{"prompt":"p","base":"b","adapter":"a","rubric":3}]}"#).unwrap();
        assert_eq!(
            (later.version, later.adapter_loss, later.samples.len()),
            (2, Some(0.5), 1)
        );
        assert!(matches!(
            decode::<Evaluation>(EVALUATIONS, b"not json"),
            Err(StoreError::Decode { .. })
        ));
    }

    #[test]
    fn a_comparison_is_kept_by_job_and_reads_across_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let job = JobId::new();
        assert_eq!(store.comparison(job).unwrap(), None);
        let later: Comparison = decode(
            COMPARISONS,
            br#"{"version":2,"models":[{"id":"base:m","adapter":false,"best":1,"elo":1200}],"prompts":[{"prompt":"p","answers":[{"text":"a","score":0.5,"judge":"ok"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            (later.models.len(), later.prompts[0].answers[0].score),
            (1, Some(0.5))
        );
        store.put_comparison(job, &later).unwrap();
        assert_eq!(store.comparison(job).unwrap(), Some(later));
    }
}
