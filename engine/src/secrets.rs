//! Secrets (API keys, S3 credentials) come from the environment or from `secrets.toml` with
//! mode 0600, never from `config.toml`, and are never logged: [`Secret`]'s Debug and Display
//! print a mask.

use crate::paths::Paths;
pub use brightrun_api::config::describe_toml_error;
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
                    message: describe_toml_error(&text, &e),
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

    /// Secrets given in code (tests, embedders), as if from the environment.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), (Secret::new(v), "environment")))
                .collect(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-0123456789abcdefSECRET";

    fn describe<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        describe_toml_error(text, &toml::from_str::<T>(text).unwrap_err())
    }

    #[test]
    fn parse_errors_name_the_line_and_key_never_the_value() {
        type Table = BTreeMap<String, String>;
        let unterminated = format!("a = \"x\"\nrunpod_api_key = \"{SECRET}\nb = \"y\"\n");
        let d = describe::<Table>(&unterminated);
        assert!(!d.contains("SECRET") && !d.contains("sk-live"), "{d}");
        assert!(d.contains("line 2") && d.contains("runpod_api_key"), "{d}");
        assert!(d.ends_with("expected `\"`"), "{d}");
        // serde echoes a value of the wrong type.
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Typed {
            port: u32,
        }
        let d = describe::<Typed>(&format!("port = \"{SECRET}\"\n"));
        assert!(!d.contains("SECRET") && !d.contains("sk-live"), "{d}");
        assert!(d.contains("line 1") && d.contains("port"), "{d}");
        // A value that is not even a string.
        let d = describe::<Table>(&format!("key = {SECRET}\n"));
        assert!(!d.contains("SECRET") && !d.contains("sk-live"), "{d}");
    }
}
