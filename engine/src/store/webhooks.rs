//! The webhook delivery log (`webhook_deliveries`, engine-private, JSON documents with their
//! own `version`): one entry per event per webhook, keyed by its `webhook-id`, holding the
//! body to send and how its tries went. The webhook consumer writes new entries in the same
//! transaction as its change-log position, so an event is enqueued exactly once; the sender
//! updates them as it tries.

use super::{Store, StoreError, Writer, db};
use crate::domain::{DeliveryState, Timestamp, WebhookDelivery};
use redb::{ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

type JsonTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// Delivery id → [`StoredDelivery`]'s JSON.
const DELIVERIES: JsonTable = TableDefinition::new("webhook_deliveries");

/// A delivery as the log keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredDelivery {
    #[serde(default = "version")]
    pub version: u32,
    #[serde(flatten)]
    pub delivery: WebhookDelivery,
    /// The body every try sends, byte for byte (the signature covers it).
    pub body: String,
}

fn version() -> u32 {
    1
}

impl StoredDelivery {
    pub fn new(delivery: WebhookDelivery, body: String) -> Self {
        Self {
            version: version(),
            delivery,
            body,
        }
    }
}

fn encode(d: &StoredDelivery) -> Vec<u8> {
    serde_json::to_vec(d).expect("deliveries serialise")
}

fn decode(bytes: &[u8]) -> Result<StoredDelivery, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        table: DELIVERIES.name().to_string(),
        message: e.to_string(),
    })
}

impl Writer<'_> {
    /// Adds a delivery unless one with its id is there (a replayed change enqueues nothing).
    /// Returns whether it was new.
    pub fn enqueue_delivery(&mut self, d: &StoredDelivery) -> Result<bool, StoreError> {
        let mut t = self.txn.open_table(DELIVERIES).map_err(db)?;
        if t.get(d.delivery.id.as_str()).map_err(db)?.is_some() {
            return Ok(false);
        }
        t.insert(d.delivery.id.as_str(), encode(d).as_slice())
            .map_err(db)?;
        Ok(true)
    }
}

impl Store {
    /// Replaces a delivery (after a try).
    pub fn put_delivery(&self, d: &StoredDelivery) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(DELIVERIES)
            .map_err(db)?
            .insert(d.delivery.id.as_str(), encode(d).as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)
    }

    /// Every delivery matching `keep`, newest first. One that does not read is skipped with a
    /// log line.
    pub fn deliveries(
        &self,
        keep: impl Fn(&WebhookDelivery) -> bool,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(DELIVERIES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            match decode(v.value()) {
                Ok(d) if keep(&d.delivery) => out.push(d),
                Ok(_) => {}
                Err(e) => tracing::error!("webhook delivery {}: {e}", k.value()),
            }
        }
        out.sort_by(|a, b| {
            (b.delivery.created_at, &b.delivery.id).cmp(&(a.delivery.created_at, &a.delivery.id))
        });
        Ok(out)
    }

    /// Removes finished deliveries created before `before`; returns how many.
    pub fn prune_deliveries(&self, before: Timestamp) -> Result<usize, StoreError> {
        let old: Vec<String> = self
            .deliveries(|d| d.state != DeliveryState::Pending && d.created_at < before)?
            .into_iter()
            .map(|d| d.delivery.id)
            .collect();
        if old.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut t = txn.open_table(DELIVERIES).map_err(db)?;
            for id in &old {
                t.remove(id.as_str()).map_err(db)?;
            }
        }
        txn.commit().map_err(db)?;
        Ok(old.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_delivery_is_enqueued_once_and_reads_with_fields_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        let d = StoredDelivery::new(
            WebhookDelivery {
                id: "msg_1".into(),
                webhook: "ops".into(),
                event_type: "job.completed".into(),
                state: DeliveryState::Pending,
                attempts: 0,
                last_status: None,
                last_error: None,
                created_at: at,
                last_attempt_at: None,
                next_attempt_at: Some(at),
                delivered_at: None,
            },
            r#"{"type":"job.completed"}"#.into(),
        );
        assert!(store.write(|w| w.enqueue_delivery(&d)).unwrap());
        assert!(!store.write(|w| w.enqueue_delivery(&d)).unwrap());
        assert_eq!(store.deliveries(|_| true).unwrap(), vec![d.clone()]);
        let bytes = String::from_utf8(encode(&d)).unwrap();
        assert!(
            bytes.starts_with(r#"{"version":1,"id":"msg_1","webhook":"ops""#),
            "{bytes}"
        );
        let later = bytes.replacen(r#""version":1,"#, r#""version":2,"signature_v2":"x","#, 1);
        assert_eq!(decode(later.as_bytes()).unwrap().delivery, d.delivery);
        // Pending ones are kept however old; finished ones go.
        assert_eq!(
            store
                .prune_deliveries(at + chrono::Duration::days(1))
                .unwrap(),
            0
        );
        let mut done = d.clone();
        done.delivery.state = DeliveryState::Delivered;
        store.put_delivery(&done).unwrap();
        assert_eq!(
            store
                .prune_deliveries(at + chrono::Duration::days(1))
                .unwrap(),
            1
        );
        assert!(store.deliveries(|_| true).unwrap().is_empty());
    }
}
