//! The seven record types of DESIGN.md, with enums for every status so bad states cannot be
//! stored. Field names are the seed's column names: they are also the `--json` interface.

mod artifact;
mod checkpoint;
mod comparison;
mod cost;
mod dataset;
mod evaluation;
mod export;
mod inspection;
mod job;
mod metrics;
mod notification;
mod preference;
mod runs;
mod sweep;
mod webhook;

pub use artifact::*;
pub use checkpoint::*;
pub use comparison::*;
pub use cost::*;
pub use dataset::*;
pub use evaluation::*;
pub use export::*;
pub use inspection::*;
pub use job::*;
pub use metrics::*;
pub use notification::*;
pub use preference::*;
pub use runs::*;
pub use sweep::*;
pub use webhook::*;

/// Timestamps are UTC everywhere; the UI converts for display.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Now, as stored.
pub fn now() -> Timestamp {
    chrono::Utc::now()
}

/// A free-form JSON value inside a record. bincode cannot store `serde_json::Value` (it needs
/// self-describing input), so in the store it travels as JSON text, and in JSON as itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonValue(pub serde_json::Value);

impl serde::Serialize for JsonValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.0.serialize(s)
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> serde::Deserialize<'de> for JsonValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            serde_json::Value::deserialize(d).map(JsonValue)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text)
                .map(JsonValue)
                .map_err(serde::de::Error::custom)
        }
    }
}

impl schemars::JsonSchema for JsonValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "JsonValue".into()
    }
    /// Any JSON value: it is free-form by design.
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!(true)
    }
}
