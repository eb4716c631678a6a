//! Where BrightRun keeps things. XDG by default; `BRIGHTRUN_HOME=DIR` puts config, data and
//! logs under one folder (tests use it). The trainer environment stays in the user's cache dir
//! so every profile and every BRIGHTRUN_HOME shares one ~6 GB venv.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
}

impl Paths {
    /// Resolves from the environment: `BRIGHTRUN_HOME`, then XDG.
    pub fn from_env() -> Self {
        match std::env::var_os("BRIGHTRUN_HOME").filter(|v| !v.is_empty()) {
            Some(home) => Self::under(Path::new(&home)),
            None => {
                let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
                let config = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
                let data = dirs::data_dir().unwrap_or_else(|| home.join(".local/share"));
                let state = dirs::state_dir().unwrap_or_else(|| data.clone());
                Self {
                    config_dir: config.join("brightrun"),
                    data_dir: data.join("brightrun"),
                    state_dir: state.join("brightrun"),
                    cache_dir: Self::default_cache_dir(),
                }
            }
        }
    }

    /// Everything under one folder, except the shared trainer cache.
    pub fn under(home: &Path) -> Self {
        Self {
            config_dir: home.join("config"),
            data_dir: home.join("data"),
            state_dir: home.join("state"),
            cache_dir: Self::default_cache_dir(),
        }
    }

    fn default_cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("BRIGHTRUN_CACHE_DIR").filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
        dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("brightrun")
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
    pub fn secrets_file(&self) -> PathBuf {
        self.config_dir.join("secrets.toml")
    }
    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join("brightrun.redb")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join("brightrun.lock")
    }
    pub fn objects_dir(&self) -> PathBuf {
        self.data_dir.join("objects")
    }
    pub fn jobs_dir(&self) -> PathBuf {
        self.data_dir.join("jobs")
    }
    /// Where `brightrun serve` (or an embedded dashboard) answers other clients of this home.
    pub fn socket_file(&self) -> PathBuf {
        self.state_dir.join("engine.sock")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// Creates the folders that must exist before anything is written, private to the user
    /// (0700) whatever the umask: they hold datasets, models, tokens and logs.
    pub fn ensure(&self) -> std::io::Result<()> {
        for d in [
            &self.config_dir,
            &self.data_dir,
            &self.state_dir,
            &self.objects_dir(),
            &self.jobs_dir(),
            &self.log_dir(),
        ] {
            crate::private::create_dir_all(d)?;
        }
        Ok(())
    }
}
