//! Schemathesis (the real tool, from PyPI) against a live daemon's own OpenAPI document: it
//! generates requests from the schemas (valid, edge-case and invalid ones) and checks that
//! no answer is a server error and every answer conforms to the documented schema. Bounded
//! in time so CI stays short; `BRIGHTRUN_SCHEMATHESIS_SECS` runs it longer.

mod common;

use common::*;
use std::path::PathBuf;

/// The tools' bin folder: `BRIGHTRUN_TOOLS_BIN` (scripts/test.sh sets it), else built by
/// scripts/tools-env.sh (once per machine).
fn tools_bin() -> PathBuf {
    env_or_script("BRIGHTRUN_TOOLS_BIN", "scripts/tools-env.sh")
}

#[test]
fn schemathesis_finds_no_server_error_and_no_reply_off_the_schema() {
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut daemon = home
        .std_cmd()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = home.path().join("state/engine.sock");
    home.wait_until(30, "the daemon", || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    let secs = std::env::var("BRIGHTRUN_SCHEMATHESIS_SECS").unwrap_or_else(|_| "40".into());
    let out = std::process::Command::new(tools_bin().join("st"))
        .current_dir(home.path())
        .args([
            "run",
            &format!("http://127.0.0.1:{port}/api/openapi.json"),
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-time",
            &secs,
            "--workers",
            "1",
            "--request-timeout",
            "10",
            // Streams (server-sent events, uploads) are tested by the other end-to-end tests.
            "--exclude-path",
            "/api/events",
            "--exclude-path",
            "/api/datasets/{id}/upload",
        ])
        .output()
        .expect("schemathesis runs");
    // SAFETY: stopping the child we started.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran: it generated and checked cases against every selected operation.
    assert!(text.contains("passed"), "{text}");
    assert!(!text.contains("Rate limited"), "{text}");
}
