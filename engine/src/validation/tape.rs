//! A JSON document parsed into a flat, reusable tape of borrowed nodes.
//!
//! serde_json does the parsing (strict JSON, a recursion limit, good error positions); this
//! module only decides what is kept: strings are borrowed from the line when they hold no
//! escape and copied into one per-line arena when they do, numbers become `f64`, and arrays
//! and objects become a header node followed by their children. Nothing is allocated per
//! value: the node vector and the arena are reused from one line to the next.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// One node of the tape. An array's or object's `end` is the index just past its subtree; an
/// object's children alternate key (a string node) and value (a subtree).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Node<'a> {
    Null,
    Bool(bool),
    Num(f64),
    /// A string with no escapes, borrowed from the input.
    Str(&'a str),
    /// A string that had escapes, decoded into the arena.
    Owned { start: u32, len: u32 },
    Arr { len: u32, end: u32 },
    Obj { end: u32 },
}

/// Parses `text` (one whole JSON value, whitespace around it allowed) into `nodes`/`arena`.
pub(crate) fn parse<'a>(
    text: &'a str,
    nodes: &mut Vec<Node<'a>>,
    arena: &mut String,
) -> Result<(), serde_json::Error> {
    nodes.clear();
    arena.clear();
    let mut de = serde_json::Deserializer::from_str(text);
    NodeSeed { nodes, arena }.deserialize(&mut de)?;
    de.end()
}

/// Gives back a vector's allocation with another lifetime parameter. The vector is emptied;
/// the in-place `collect` keeps the allocation, so this costs nothing.
pub(crate) fn recycle<'b>(mut v: Vec<Node<'_>>) -> Vec<Node<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

struct NodeSeed<'t, 'a> {
    nodes: &'t mut Vec<Node<'a>>,
    arena: &'t mut String,
}

impl<'a> NodeSeed<'_, 'a> {
    fn child(&mut self) -> NodeSeed<'_, 'a> {
        NodeSeed {
            nodes: self.nodes,
            arena: self.arena,
        }
    }

    fn owned(&mut self, v: &str) {
        let start = self.arena.len() as u32;
        self.arena.push_str(v);
        self.nodes.push(Node::Owned {
            start,
            len: v.len() as u32,
        });
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.nodes.push(Node::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.nodes.push(Node::Num(v as f64));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.nodes.push(Node::Num(v as f64));
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.nodes.push(Node::Num(v));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.nodes.push(Node::Str(v));
        Ok(())
    }

    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        self.owned(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.nodes.len();
        self.nodes.push(Node::Arr { len: 0, end: 0 });
        let mut len = 0u32;
        while seq.next_element_seed(self.child())?.is_some() {
            len += 1;
        }
        let end = self.nodes.len() as u32;
        self.nodes[at] = Node::Arr { len, end };
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.nodes.len();
        self.nodes.push(Node::Obj { end: 0 });
        while map.next_key_seed(self.child())?.is_some() {
            map.next_value_seed(self.child())?;
        }
        let end = self.nodes.len() as u32;
        self.nodes[at] = Node::Obj { end };
        Ok(())
    }
}

/// A read-only view of a parsed tape.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'t, 'a> {
    pub nodes: &'t [Node<'a>],
    pub arena: &'t str,
}

impl<'t, 'a: 't> Doc<'t, 'a> {
    /// The index just past the subtree at `i`.
    #[inline]
    pub fn skip(&self, i: usize) -> usize {
        match self.nodes[i] {
            Node::Arr { end, .. } | Node::Obj { end } => end as usize,
            _ => i + 1,
        }
    }

    #[inline]
    pub fn str_at(&self, i: usize) -> Option<&'t str> {
        match self.nodes[i] {
            Node::Str(s) => Some(s),
            Node::Owned { start, len } => {
                Some(&self.arena[start as usize..(start as usize + len as usize)])
            }
            _ => None,
        }
    }

    #[inline]
    pub fn is_obj(&self, i: usize) -> bool {
        matches!(self.nodes[i], Node::Obj { .. })
    }

    /// The `(key, value index)` pairs of the object at `i` (nothing when it is no object).
    #[inline]
    pub fn entries(&self, i: usize) -> Entries<'t, 'a> {
        let end = match self.nodes[i] {
            Node::Obj { end } => end as usize,
            _ => i + 1,
        };
        Entries {
            doc: *self,
            at: i + 1,
            end,
        }
    }

    /// The element indices of the array at `i` (nothing when it is no array).
    #[inline]
    pub fn elements(&self, i: usize) -> Elements<'t, 'a> {
        let end = match self.nodes[i] {
            Node::Arr { end, .. } => end as usize,
            _ => i + 1,
        };
        Elements {
            doc: *self,
            at: i + 1,
            end,
        }
    }

    /// The value of `key` in the object at `i` (the last one when the key repeats).
    pub fn get(&self, i: usize, key: &str) -> Option<usize> {
        let mut found = None;
        for (k, v) in self.entries(i) {
            if k == key {
                found = Some(v);
            }
        }
        found
    }

    /// "a string", "an array", … for messages.
    pub fn kind(&self, i: usize) -> &'static str {
        match self.nodes[i] {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(_) => "a number",
            Node::Str(_) | Node::Owned { .. } => "a string",
            Node::Arr { .. } => "an array",
            Node::Obj { .. } => "an object",
        }
    }

    /// A short JSON rendering of a scalar for messages (`"bot"`, `0.5`, `true`, `null`).
    pub fn show(&self, i: usize) -> String {
        match self.nodes[i] {
            Node::Null => "null".into(),
            Node::Bool(b) => b.to_string(),
            Node::Num(n) => n.to_string(),
            Node::Str(_) | Node::Owned { .. } => {
                let s = self.str_at(i).unwrap_or_default();
                let short: String = s.chars().take(40).collect();
                let more = if short.len() < s.len() { "…" } else { "" };
                format!("{:?}{more}", short)
            }
            Node::Arr { .. } => "an array".into(),
            Node::Obj { .. } => "an object".into(),
        }
    }
}

pub(crate) struct Entries<'t, 'a> {
    doc: Doc<'t, 'a>,
    at: usize,
    end: usize,
}

impl<'t, 'a: 't> Iterator for Entries<'t, 'a> {
    type Item = (&'t str, usize);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let key = self.doc.str_at(self.at).unwrap_or_default();
        let value = self.at + 1;
        self.at = self.doc.skip(value);
        Some((key, value))
    }
}

pub(crate) struct Elements<'t, 'a> {
    doc: Doc<'t, 'a>,
    at: usize,
    end: usize,
}

impl<'t, 'a: 't> Iterator for Elements<'t, 'a> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.at >= self.end {
            return None;
        }
        let i = self.at;
        self.at = self.doc.skip(i);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_round_trip() {
        let text = r#"{"a": [1, "x\ny", {"b": null}], "c": true, "d": "plain"}"#;
        let mut nodes = Vec::new();
        let mut arena = String::new();
        parse(text, &mut nodes, &mut arena).unwrap();
        let doc = Doc {
            nodes: &nodes,
            arena: &arena,
        };
        let keys: Vec<_> = doc.entries(0).map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "c", "d"]);
        let a = doc.get(0, "a").unwrap();
        let els: Vec<_> = doc.elements(a).collect();
        assert_eq!(els.len(), 3);
        assert_eq!(doc.str_at(els[1]), Some("x\ny"));
        assert_eq!(doc.kind(els[2]), "an object");
        assert_eq!(doc.str_at(doc.get(0, "d").unwrap()), Some("plain"));
        assert_eq!(doc.kind(doc.get(0, "c").unwrap()), "a boolean");
        let nodes = recycle(nodes);
        assert!(nodes.is_empty());
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        let mut nodes = Vec::new();
        let mut arena = String::new();
        assert!(parse("{} x", &mut nodes, &mut arena).is_err());
        assert!(parse("  {}  ", &mut nodes, &mut arena).is_ok());
    }
}
