//! The daemon's own OpenAPI document against the real tools, from PyPI:
//!
//! - openapi-spec-validator checks the served document against the OpenAPI 3.0 meta-schema;
//! - schemathesis generates requests from its schemas (valid, edge-case and invalid ones) and
//!   runs every check it has against a live daemon: no server error, every status, content
//!   type and body as documented, valid data accepted, invalid data refused, no route that
//!   answers without the token, 405 with `Allow` for a method a path does not serve
//!   (tests/fixtures/schemathesis.toml says where a valid request may still be refused, and
//!   why). Bounded in time so CI stays short; `BRIGHTRUN_SCHEMATHESIS_SECS` runs it longer.

mod common;

use common::*;
use std::path::PathBuf;

/// The tools' bin folder: `BRIGHTRUN_TOOLS_BIN` (scripts/test.sh sets it), else built by
/// scripts/tools-env.sh (once per machine).
fn tools_bin() -> PathBuf {
    env_or_script("BRIGHTRUN_TOOLS_BIN", "scripts/tools-env.sh")
}

/// A daemon on a loopback port, with a token and a ready dataset; stopped when dropped.
struct Served {
    // Stopped before its home is removed (fields drop in order).
    _daemon: Daemon,
    home: Home,
    port: u16,
    token: String,
}

impl Served {
    fn start() -> Self {
        let home = Home::new(0);
        // The fuzzer sends wrong tokens on purpose: no rate limit here.
        let cfg = home.path().join("config/config.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replace("[engine]\n", "[engine]\nauth_failures_per_minute = 0\n"),
        )
        .unwrap();
        let token = home.json(&["tokens", "create", "--json"], 0)["token"]
            .as_str()
            .unwrap()
            .to_string();
        home.ready_dataset(5);
        let port = free_port();
        let daemon = Daemon::listening(&home, port);
        Self {
            home,
            _daemon: daemon,
            port,
            token,
        }
    }

    fn document_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/openapi.json", self.port)
    }
}

#[test]
fn the_served_document_is_valid_openapi() {
    let d = Served::start();
    let doc = reqwest::blocking::get(d.document_url())
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .unwrap();
    let file = d.home.path().join("openapi.json");
    std::fs::write(&file, &doc).unwrap();
    let out = std::process::Command::new(tools_bin().join("openapi-spec-validator"))
        .args(["--validation-errors", "all", "--schema", "3.0"])
        .arg(&file)
        .output()
        .expect("openapi-spec-validator runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(": OK"),
        "openapi-spec-validator refused the document:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schemathesis_finds_no_failure_with_every_check() {
    let d = Served::start();
    let secs = std::env::var("BRIGHTRUN_SCHEMATHESIS_SECS").unwrap_or_else(|_| "40".into());
    // Where a request the document allows may still be refused, and why.
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schemathesis.toml");
    let out = std::process::Command::new(tools_bin().join("st"))
        .current_dir(d.home.path())
        .arg("--config-file")
        .arg(&config)
        .args([
            "run",
            &d.document_url(),
            "-H",
            &format!("Authorization: Bearer {}", d.token),
            "--checks",
            "all",
            "--max-time",
            &secs,
            "--workers",
            "1",
            // Inspecting the ready dataset runs the trainer's Python (about 6 s to import torch,
            // more on a loaded machine): the one request that may take this long.
            "--request-timeout",
            "60",
            // Streams (server-sent events, uploads) are tested by the other end-to-end tests.
            "--exclude-path",
            "/api/events",
            "--exclude-path",
            "/api/live",
            "--exclude-path",
            "/api/datasets/{id}/upload",
        ])
        .output()
        .expect("schemathesis runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran: it generated and checked cases against every selected operation.
    assert!(text.contains("passed"), "{text}");
    assert!(!text.contains("Rate limited"), "{text}");
    assert!(!text.contains("Undocumented status code"), "{text}");
}
