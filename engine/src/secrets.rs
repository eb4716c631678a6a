//! Secrets (API keys, S3 credentials) come from the environment or from `secrets.toml` with
//! mode 0600, never from `config.toml`, and are never logged: [`Secret`]'s Debug and Display
//! print a mask.

use crate::paths::Paths;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A value that must not be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The real value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// What may be shown: the last 4 characters at most, when the secret is long.
    pub fn masked(&self) -> String {
        let n = self.0.chars().count();
        if n >= 16 {
            let tail: String = self.0.chars().skip(n - 4).collect();
            format!("****{tail}")
        } else {
            "****".into()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "{path} has mode {mode:o}; secrets files must be private: run `chmod 600 {path}`",
        path = path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// Named secrets, e.g. `runpod_api_key`, `s3_secret_access_key`.
#[derive(Clone, Debug, Default)]
pub struct Secrets {
    values: BTreeMap<String, (Secret, &'static str)>,
}

impl Secrets {
    /// Loads `secrets.toml` (refused unless mode 0600) and then `BRIGHTRUN_<NAME>` variables,
    /// which win.
    pub fn load(paths: &Paths) -> Result<Self, SecretsError> {
        let mut out = Secrets::default();
        let path = paths.secrets_file();
        if path.exists() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(&path).map_err(|source| SecretsError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretsError::TooOpen { path, mode });
                }
            }
            let text = std::fs::read_to_string(&path).map_err(|source| SecretsError::Read {
                path: path.clone(),
                source,
            })?;
            let table: BTreeMap<String, String> =
                toml::from_str(&text).map_err(|e| SecretsError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            for (k, v) in table {
                out.values.insert(k, (Secret::new(v), "secrets.toml"));
            }
        }
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("BRIGHTRUN_SECRET_") {
                out.values
                    .insert(name.to_ascii_lowercase(), (Secret::new(v), "environment"));
            }
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name).map(|(s, _)| s)
    }

    /// Name → (masked value, where it came from), for `config show`.
    pub fn describe(&self) -> Vec<(String, String, &'static str)> {
        self.values
            .iter()
            .map(|(k, (s, src))| (k.clone(), s.masked(), *src))
            .collect()
    }
}
