//! Decoding a request body, naming the field at fault by its path (`spec.gpu_count`,
//! `page.offset`, `colour`), at about the cost of decoding it.
//!
//! A body is parsed once into JSON by axum, then decoded once into its type through
//! `serde_path_to_error`, which records the path at which the type refused it: an unknown
//! field, a wrong type, a wrong value. Two cases the path does not name on its own:
//!
//! - a missing field: serde refuses the object that lacks it. The field is the first of that
//!   object's required properties, in the order serde checks them (its type's JSON schema,
//!   generated from the type by schemars, lists them in declaration order), that the body
//!   does not hold.
//! - a field of an internally tagged enum ([`Request`](crate::api::Request), `{"op": …}`):
//!   serde buffers its fields before it decodes the variant, so the path stops at the enum
//!   (serde_path_to_error's issue #1). There the fields are tried one at a time, in the order
//!   serde read them, each in a body of its own that holds the tag and a sentinel field every
//!   variant refuses: a field that decodes fails on the sentinel, so the first field that
//!   fails otherwise is the culprit, and its own fields are searched the same way. Only the
//!   fields serde read before the culprit are tried (each of those decoded), each trial costs
//!   what decoding its field costs, so the search costs about one more decoding of the body
//!   whatever its size.
//!
//! serde also lets through what the type's schema does not allow: it ignores every field of a
//! unit variant of an internally tagged enum (`{"op": "hello", "admin": true}`) and reads a
//! struct from an array of its fields. A decoded body is checked against its type's schema
//! for those two (objects' properties, arrays where objects belong), so they are refused like
//! every other body the document calls invalid.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A body its type refused: serde's message, and the field's path when it is known.
#[derive(Debug)]
pub(super) struct Refusal {
    pub field: Option<String>,
    pub message: String,
}

/// A key no type of the API has: the trials' sentinel. It sorts after every key that does not
/// start with U+10FFFF, so serde reads it after the field on trial.
const SENTINEL: &str = "\u{10FFFF}sentinel";

/// How deep the search into an enum's fields goes before it names the field it is in.
const MAX_DEPTH: usize = 8;

/// Decodes `value` as a `T`, or says why not and at which field.
pub(super) fn decode<T: DeserializeOwned + JsonSchema>(value: &Value) -> Result<T, Refusal> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => {
            let schema = schema_of::<T>();
            match misfit(&schema, value, &mut Vec::new()) {
                Some((path, message)) => Err(Refusal {
                    field: render(&path),
                    message,
                }),
                None => Ok(t),
            }
        }
        Err(e) => {
            let path: Vec<Seg> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    _ => None,
                })
                .collect();
            let schema = schema_of::<T>();
            let field = locate::<T>(&schema, value, path);
            Err(Refusal {
                field,
                message: e.into_inner().to_string(),
            })
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(path: &[Seg]) -> Option<String> {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                // An empty key is still a field (`{"": 1}`): named, not mistaken for none.
                out.push_str(if k.is_empty() { "\"\"" } else { k });
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The type's JSON schema with every subschema inline (no `$ref` to follow), made once per
/// type.
fn schema_of<T: JsonSchema>() -> Arc<Value> {
    static CACHE: Mutex<Option<HashMap<String, Arc<Value>>>> = Mutex::new(None);
    let id = T::schema_id().into_owned();
    if let Some(s) = CACHE
        .lock()
        .expect("schema cache")
        .get_or_insert_with(HashMap::new)
        .get(&id)
    {
        return s.clone();
    }
    let schema = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    let schema = Arc::new(schema);
    CACHE
        .lock()
        .expect("schema cache")
        .get_or_insert_with(HashMap::new)
        .insert(id, schema.clone());
    schema
}

/// The object schema that describes `value`: of a `oneOf`/`anyOf`, the branch whose constant
/// properties (an enum's tag) `value` holds, else the first object branch.
fn branch<'a>(schema: &'a Value, value: &Value) -> &'a Value {
    for key in ["oneOf", "anyOf"] {
        let Some(branches) = schema.get(key).and_then(Value::as_array) else {
            continue;
        };
        let objects = || {
            branches
                .iter()
                .filter(|b| b.get("properties").is_some_and(Value::is_object))
        };
        let tagged = objects().find(|b| {
            let tags = tags_of(b);
            !tags.is_empty() && tags.iter().all(|(k, c)| value.get(k) == Some(c))
        });
        if let Some(b) = tagged.or_else(|| objects().next()) {
            return b;
        }
    }
    schema
}

/// The properties of an object schema whose value is fixed (an internally tagged enum's tag).
fn tags_of(schema: &Value) -> Vec<(&str, &Value)> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .filter_map(|(k, p)| {
            let c = p.get("const").or_else(|| {
                p.get("enum")
                    .and_then(Value::as_array)
                    .filter(|e| e.len() == 1)
                    .and_then(|e| e.first())
            })?;
            Some((k.as_str(), c))
        })
        .collect()
}

/// The schema of `value`'s child at `seg`.
fn child<'a>(schema: &'a Value, value: &Value, seg: &Seg) -> Option<&'a Value> {
    let b = branch(schema, value);
    match seg {
        Seg::Key(k) => b
            .get("properties")
            .and_then(|p| p.get(k))
            .or_else(|| b.get("additionalProperties").filter(|a| a.is_object())),
        Seg::Index(i) => b
            .get("prefixItems")
            .and_then(|p| p.get(*i))
            .or_else(|| b.get("items").filter(|a| a.is_object())),
    }
}

fn value_at<'a>(value: &'a Value, seg: &Seg) -> Option<&'a Value> {
    match seg {
        Seg::Key(k) => value.get(k),
        Seg::Index(i) => value.get(*i),
    }
}

enum Tagging<'s> {
    /// Not an internally tagged enum.
    None,
    /// The variant `value`'s tag names, with its tag (the property and its value).
    Matched(Map<String, Value>),
    /// No variant has `value`'s tag: the tag's property.
    Unmatched(&'s str),
}

fn tagging<'s>(schema: &'s Value, value: &Value) -> Tagging<'s> {
    let branches = ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten();
    let mut tag = None;
    for b in branches {
        let tags = tags_of(b);
        let Some((first, _)) = tags.first() else {
            continue;
        };
        tag.get_or_insert(*first);
        if tags.iter().all(|(k, c)| value.get(k) == Some(c)) {
            return Tagging::Matched(
                tags.into_iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            );
        }
    }
    match tag {
        Some(t) => Tagging::Unmatched(t),
        None => Tagging::None,
    }
}

/// What serde lets through that the type's schema does not: a field of a unit variant (serde
/// ignores them all) and a struct written as an array (serde reads its fields in order).
fn misfit(schema: &Value, value: &Value, path: &mut Vec<Seg>) -> Option<(Vec<Seg>, String)> {
    let b = branch(schema, value);
    match value {
        Value::Array(items) => {
            let allowed = match b.get("type") {
                None => true,
                Some(Value::String(t)) => t == "array",
                Some(Value::Array(ts)) => ts.iter().any(|t| t == "array"),
                Some(_) => true,
            };
            if !allowed {
                return Some((path.clone(), "invalid type: an array".into()));
            }
            let item = b.get("items").filter(|i| i.is_object())?;
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                if let Some(found) = misfit(item, v, path) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        Value::Object(obj) => {
            if let Some(k) = unknown_key(schema, value) {
                path.push(Seg::Key(k.to_string()));
                return Some((path.clone(), format!("unknown field `{k}`")));
            }
            let props = b.get("properties").and_then(Value::as_object)?;
            for (k, v) in obj {
                let Some(p) = props.get(k) else { continue };
                path.push(Seg::Key(k.clone()));
                if let Some(found) = misfit(p, v, path) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

/// The first key of an object its (closed) schema does not allow.
fn unknown_key<'v>(schema: &Value, value: &'v Value) -> Option<&'v str> {
    let obj = value.as_object()?;
    let b = branch(schema, value);
    if b.get("additionalProperties") != Some(&Value::Bool(false)) {
        return None;
    }
    let props = b.get("properties").and_then(Value::as_object);
    obj.keys()
        .find(|k| !props.is_some_and(|p| p.contains_key(*k)))
        .map(String::as_str)
}

/// The first required property, in the schema's order, that an object lacks.
fn missing_key<'s>(schema: &'s Value, value: &Value) -> Option<&'s str> {
    let obj = value.as_object()?;
    branch(schema, value)
        .get("required")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|k| !obj.contains_key(*k))
}

/// The field at fault, from the path serde stopped at.
fn locate<T: DeserializeOwned>(
    schema: &Value,
    value: &Value,
    mut path: Vec<Seg>,
) -> Option<String> {
    // Follow the path as far as the body goes (an unknown field's path ends past it).
    let (mut node, mut node_schema) = (value, Some(schema));
    for (i, seg) in path.iter().enumerate() {
        match value_at(node, seg) {
            Some(next) => {
                node_schema = node_schema.and_then(|s| child(s, node, seg));
                node = next;
            }
            None => {
                path.truncate(i + 1);
                return render(&path);
            }
        }
    }
    let Some(node_schema) = node_schema else {
        return render(&path);
    };
    if path.is_empty() && value.is_object() {
        match tagging(schema, value) {
            Tagging::None => {}
            // No variant has this tag (or the tag is missing): the tag is at fault.
            Tagging::Unmatched(tag) => return Some(tag.to_string()),
            // serde's path stops at an internally tagged enum, whatever the field.
            Tagging::Matched(tags) => {
                let search = Search::<T> {
                    tags,
                    _t: std::marker::PhantomData,
                };
                if let Some(found) = search.within(&mut Vec::new(), value, schema, 0) {
                    return render(&found);
                }
            }
        }
    }
    if let Some(k) = missing_key(node_schema, node) {
        path.push(Seg::Key(k.to_string()));
    }
    render(&path)
}

/// The trials of an internally tagged enum's fields.
struct Search<T> {
    tags: Map<String, Value>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Search<T> {
    /// Whether `leaf`, placed at `path` in a body of its own, decodes: the sentinel, which
    /// serde reads after it at every level, is then all it refuses.
    fn passes(&self, path: &[Seg], leaf: Value) -> bool {
        let mut v = leaf;
        for seg in path.iter().rev() {
            v = match seg {
                Seg::Key(k) => {
                    let mut m = Map::new();
                    m.insert(k.clone(), v);
                    m.insert(SENTINEL.to_string(), Value::Null);
                    Value::Object(m)
                }
                Seg::Index(_) => Value::Array(vec![v]),
            };
        }
        let mut body = match v {
            Value::Object(m) => m,
            _ => return false,
        };
        for (k, t) in &self.tags {
            body.insert(k.clone(), t.clone());
        }
        match T::deserialize(&Value::Object(body)) {
            Ok(_) => true,
            // The error must be about the sentinel key itself: a value may hold its text
            // (the call_body fuzz target put it into a `period`).
            Err(e) => e
                .to_string()
                .starts_with(&format!("unknown field `{SENTINEL}`")),
        }
    }

    /// The path of the first field in `node` (at `path`) that fails on its own, searched
    /// into; `None` when each of them decodes.
    fn within(
        &self,
        path: &mut Vec<Seg>,
        node: &Value,
        schema: &Value,
        depth: usize,
    ) -> Option<Vec<Seg>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let empty = match node {
            Value::Object(_) => {
                Value::Object([(SENTINEL.to_string(), Value::Null)].into_iter().collect())
            }
            Value::Array(_) => Value::Array(Vec::new()),
            _ => return None,
        };
        // A node that fails even empty (a map of numbers refuses the sentinel's null; a
        // struct without `deny_unknown_fields` misses a field) cannot be searched this way.
        if !path.is_empty() && !self.passes(path, empty) {
            return None;
        }
        let items: Vec<(Seg, &Value)> = match node {
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !(path.is_empty() && self.tags.contains_key(*k)))
                .map(|(k, v)| (Seg::Key(k.clone()), v))
                .collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), v))
                .collect(),
            _ => Vec::new(),
        };
        let closed = branch(schema, node).get("additionalProperties") == Some(&Value::Bool(false));
        let props = branch(schema, node)
            .get("properties")
            .and_then(Value::as_object);
        for (seg, v) in items {
            if let Seg::Key(k) = &seg
                && closed
                && !props.is_some_and(|p| p.contains_key(k))
            {
                path.push(seg);
                return Some(path.clone());
            }
            let leaf = match &seg {
                Seg::Key(k) => {
                    let mut m = Map::new();
                    m.insert(k.clone(), v.clone());
                    m.insert(SENTINEL.to_string(), Value::Null);
                    Value::Object(m)
                }
                Seg::Index(_) => Value::Array(vec![v.clone()]),
            };
            if self.passes(path, leaf) {
                continue;
            }
            let sub = child(schema, node, &seg).cloned();
            path.push(seg);
            let inner = sub
                .as_ref()
                .and_then(|s| self.within(path, v, s, depth + 1));
            if inner.is_some() {
                return inner;
            }
            if let Some(m) = sub.as_ref().and_then(|s| missing_key(s, v)) {
                path.push(Seg::Key(m.to_string()));
            }
            return Some(path.clone());
        }
        None
    }
}
