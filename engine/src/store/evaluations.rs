//! Each model's evaluation (`domain::Evaluation`, what the trainer's `evaluating` stage
//! measured), by model id. An engine-private table like the calibration's: a model's record
//! stays as it was (its stored layout is pinned), and the evaluation is looked up beside it.
//!
//! The value is the evaluation's JSON document, which carries its own `version` and reads
//! with unknown fields ignored and missing ones defaulted, so a field added by a later trainer
//! never makes a stored evaluation unreadable (the test below pins today's bytes).

use super::{Store, StoreError, db};
use crate::domain::Evaluation;
use crate::ids::ArtifactId;
use redb::{TableDefinition, TableHandle};

/// Model id bytes → the evaluation's JSON.
const EVALUATIONS: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("model_evaluations");

impl Store {
    /// The evaluation of a model, if its run made one.
    pub fn evaluation(&self, id: ArtifactId) -> Result<Option<Evaluation>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(EVALUATIONS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match table.get(id.bytes().as_slice()).map_err(db)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Keeps a model's evaluation (replacing an earlier one).
    pub fn put_evaluation(&self, id: ArtifactId, e: &Evaluation) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(e).expect("evaluations serialise");
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(EVALUATIONS)
            .map_err(db)?
            .insert(id.bytes().as_slice(), bytes.as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)
    }
}

fn decode(bytes: &[u8]) -> Result<Evaluation, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        table: EVALUATIONS.name().to_string(),
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
            decode(br#"{"version":1,"base_loss":2.0,"adapter_loss":1.0,"samples":[],"probes":[{"prompt":"p","base":"b","adapter":"a","changed":true}]}"#)
                .unwrap()
                .probes_changed(),
            1
        );
        // A later trainer's document, with fields this one does not know, still reads.
        let later = decode(br#"{"version":2,"adapter_loss":0.5,"judge":{"model":"x"},"samples":[{"prompt":"p","base":"b","adapter":"a","rubric":3}]}"#).unwrap();
        assert_eq!(
            (later.version, later.adapter_loss, later.samples.len()),
            (2, Some(0.5), 1)
        );
        assert!(matches!(
            decode(b"not json"),
            Err(StoreError::Decode { .. })
        ));
    }
}
