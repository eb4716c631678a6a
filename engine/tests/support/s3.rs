//! A real S3 server for tests: s3s-fs on a free loopback port over a temporary folder,
//! started (and restarted) by the test, killed when dropped. The binary comes from
//! `BRIGHTRUN_S3S_FS` (scripts/test.sh sets it) or scripts/s3-server.sh (installs it once).
#![allow(dead_code)]

use brightrun_engine::config::S3Config;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "brightrun-test-key";
pub const SECRET_KEY: &str = "brightrun-test-secret-0123456789";

pub fn s3s_fs() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIGHTRUN_S3S_FS").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    // The workspace root: this file serves the engine's tests and the binary's.
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("scripts/s3-server.sh"))
        .find(|p| p.exists())
        .expect("scripts/s3-server.sh in the workspace");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/s3-server.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim(),
    )
}

pub struct S3Server {
    pub root: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl S3Server {
    /// Starts a server with the buckets `buckets` made (as folders, which is how s3s-fs keeps
    /// them).
    pub fn start(buckets: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        for b in buckets {
            std::fs::create_dir_all(root.path().join(b)).unwrap();
        }
        let port = free_port();
        let mut s = Self {
            root,
            port,
            child: None,
        };
        s.resume();
        s
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A store config for this server.
    pub fn config(&self) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint()),
            force_path_style: true,
            part_size_mb: 5,
            concurrency: 4,
            retry_for_secs: 30,
            ..S3Config::default()
        }
    }

    /// The AWS CLI at `bin`, pointed at this server with the test keys and no config of the
    /// machine's; asserts it succeeded.
    pub fn aws(&self, bin: &Path, args: &[&str]) -> std::process::Output {
        let out = Command::new(bin)
            .args(["--endpoint-url", &self.endpoint()])
            .args(args)
            .args(if matches!(args.get(1), Some(&"cp") | Some(&"rm")) {
                &["--only-show-errors"][..]
            } else {
                &[]
            })
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and folder.
    pub fn resume(&mut self) {
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
