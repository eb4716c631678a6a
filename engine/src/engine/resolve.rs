//! Ids may be given as unique prefixes (with or without dashes), as in git and docker.

use super::{Engine, EngineError, Result};
use crate::ids::*;
use crate::store::Page;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Dataset,
    Job,
    Model,
    /// A file inside a model artifact.
    ModelFile,
    Notification,
    Sweep,
    Webhook,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dataset => "dataset",
            Self::Job => "job",
            Self::Model => "model",
            Self::ModelFile => "model file",
            Self::Notification => "notification",
            Self::Sweep => "sweep",
            Self::Webhook => "webhook",
        })
    }
}

/// Picks the one id that `query` is a prefix of.
pub(crate) fn pick<T: Copy + fmt::Display>(
    kind: IdKind,
    query: &str,
    ids: impl IntoIterator<Item = T>,
) -> Result<T> {
    let q: String = query
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if q.is_empty() {
        return Err(EngineError::Invalid(format!("an empty {kind} id")));
    }
    let matches: Vec<T> = ids
        .into_iter()
        .filter(|id| id.to_string().replace('-', "").starts_with(&q))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(EngineError::NotFound {
            kind,
            query: query.to_string(),
        }),
        many => Err(EngineError::Ambiguous {
            kind,
            query: query.to_string(),
            candidates: many
                .iter()
                .take(5)
                .map(|id| id.to_string()[..8].to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

impl Engine {
    /// A dataset by id prefix or, when no id matches, by its unique name (any case): people
    /// remember "support chats", not 3f2a.
    pub fn resolve_dataset(&self, query: &str) -> Result<DatasetId> {
        let all = self.inner.store.datasets(self.user, None, Page::ALL)?;
        match pick(IdKind::Dataset, query, all.iter().map(|d| d.id)) {
            Err(EngineError::NotFound { .. }) => {
                let q = query.trim();
                let named: Vec<DatasetId> = all
                    .iter()
                    .filter(|d| d.name.trim().eq_ignore_ascii_case(q))
                    .map(|d| d.id)
                    .collect();
                match named.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(EngineError::NotFound {
                        kind: IdKind::Dataset,
                        query: query.to_string(),
                    }),
                    many => Err(EngineError::Ambiguous {
                        kind: IdKind::Dataset,
                        query: query.to_string(),
                        candidates: many
                            .iter()
                            .take(5)
                            .map(|id| id.to_string()[..8].to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_pick_one_or_explain() {
        let a: DatasetId = "aaaa1111-0000-4000-8000-000000000000".parse().unwrap();
        let b: DatasetId = "aaaa2222-0000-4000-8000-000000000000".parse().unwrap();
        assert_eq!(pick(IdKind::Dataset, "aaaa1", [a, b]).unwrap(), a);
        assert_eq!(pick(IdKind::Dataset, "AAAA-2", [a, b]).unwrap(), b);
        let e = pick(IdKind::Dataset, "aaaa", [a, b]).unwrap_err();
        assert!(e.to_string().contains("several datasets"), "{e}");
        let e = pick(IdKind::Dataset, "b", [a, b]).unwrap_err();
        assert_eq!(e.to_string(), "no dataset matches `b`");
    }
}
