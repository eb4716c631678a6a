//! The daemon as a real process (`brightrun serve` on a temporary home's socket and a loopback
//! TCP port) with real clients: CLIs and dashboards attach to it, two users' tokens see only
//! their own records over every route, and a `kill -9` of the daemon mid-training is survived
//! by every client, which resumes from its last seq with nothing missed and nothing twice.

mod common;

use brightrun_engine::api::{EngineAddress, EngineApi, ErrorCode, RemoteApi, Reply, Request};
use common::tmux::Tmux;
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::time::Duration;

/// A running `brightrun serve`; killed (SIGKILL) on drop if still running.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Daemon {
    fn start(home: &Home, port: u16) -> Daemon {
        let child = home
            .std_cmd()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { child, port };
        let sock = home.path().join("state/engine.sock");
        home.wait_until(30, "the daemon's socket", || {
            sock.exists() && std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        d
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn kill9(&mut self) {
        // SAFETY: killing the child we spawned.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling the child we spawned.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// `brightrun ARGS --json` against the daemon over TCP with a token.
fn as_user(home: &Home, d: &Daemon, token: &str, args: &[&str], code: i32) -> Value {
    let out = home
        .cmd()
        .env("BRIGHTRUN_ENGINE", d.base())
        .env("BRIGHTRUN_TOKEN", token)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[test]
fn two_users_over_tcp_see_only_their_own_records_on_every_route() {
    let home = Home::new(0);
    // Refused before anything is bound: a non-loopback address with no token.
    let out = home
        .cmd()
        .args(["serve", "--listen", &format!("0.0.0.0:{}", free_port())])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no token exists"),
        "{out:?}"
    );
    let d = Daemon::start(&home, free_port());
    // Only the owner can reach the socket.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.path().join("state/engine.sock")), 0o600);
    assert_eq!(mode(&home.path().join("state")), 0o700);
    let alice = home.json(&["tokens", "create", "--user", "alice", "--json"], 0);
    let bob = home.json(&["tokens", "create", "--user", "bob", "--json"], 0);
    let (ta, tb) = (
        alice["token"].as_str().unwrap().to_string(),
        bob["token"].as_str().unwrap().to_string(),
    );
    assert_ne!(alice["user_id"], bob["user_id"]);
    // Only hashes are stored: the token text is nowhere in the data dir.
    let store = std::fs::read(home.path().join("data/brightrun.redb")).unwrap();
    assert!(!store.windows(ta.len()).any(|w| w == ta.as_bytes()));

    // Alice works over TCP: her file's bytes stream to the daemon (no shared path).
    let file = home.arith_file("alice.jsonl", 30);
    let ds = as_user(
        &home,
        &d,
        &ta,
        &[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ],
        0,
    );
    assert_eq!(ds["status"], "ready", "{ds:#}");
    assert_eq!(ds["file_size"], std::fs::metadata(&file).unwrap().len());
    let dsid = ds["id"].as_str().unwrap().to_string();
    let args = tiny_job_args(&dsid, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let job = as_user(&home, &d, &ta, &args, 0);
    let jid = job["id"].as_str().unwrap().to_string();
    let done = as_user(&home, &d, &ta, &["jobs", "watch", &jid, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let mid = done["artifact_id"].as_str().unwrap().to_string();
    let notes = as_user(&home, &d, &ta, &["notifications", "--json"], 0);
    let nid = notes[0]["id"].as_str().unwrap().to_string();
    // Alice downloads her adapter over TCP, sha256-checked.
    let out_dir = home.path().join("alice-adapter");
    as_user(
        &home,
        &d,
        &ta,
        &[
            "models",
            "download",
            &mid,
            "--to",
            out_dir.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert!(out_dir.join("adapter_config.json").exists());

    let http = reqwest::blocking::Client::new();
    let req = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut r = http.request(method.parse().unwrap(), format!("{}{path}", d.base()));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap_or(Value::Null);
        (status, body)
    };
    // Alice's own view, in the seed's shapes.
    let (s, b) = req("GET", "/api/datasets?page=1&limit=10", Some(&ta), None);
    assert_eq!(s, 200);
    assert_eq!(b["success"], true);
    assert_eq!(
        (b["data"]["total"].clone(), b["data"]["totalPages"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(b["data"]["datasets"][0]["id"], dsid.as_str());
    // Every route with one of Alice's ids, as Bob: 404, never 403, never her data.
    let job_body = json!({"dataset_id": dsid, "preset": "fast", "gpu_type": "A10G"});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/api/datasets/{dsid}"), None),
        (
            "PATCH",
            format!("/api/datasets/{dsid}"),
            Some(json!({"name": "stolen"})),
        ),
        ("DELETE", format!("/api/datasets/{dsid}"), None),
        ("POST", format!("/api/datasets/{dsid}/confirm"), None),
        ("POST", "/api/jobs".into(), Some(job_body.clone())),
        ("POST", "/api/jobs/estimate".into(), Some(job_body)),
        ("GET", format!("/api/jobs/{jid}"), None),
        ("POST", format!("/api/jobs/{jid}/cancel"), None),
        ("POST", format!("/api/jobs/{jid}/retry"), None),
        ("GET", format!("/api/jobs/{jid}/metrics"), None),
        ("GET", format!("/api/jobs/{jid}/logs"), None),
        ("GET", format!("/api/models/{mid}"), None),
        ("GET", format!("/api/models/{mid}/download"), None),
        (
            "GET",
            format!("/api/models/{mid}/file?path=adapter_config.json"),
            None,
        ),
        ("POST", format!("/api/notifications/{nid}/read"), None),
        (
            "POST",
            "/api/v1/call".into(),
            Some(json!({"op": "get_job", "id": jid})),
        ),
    ];
    for (m, path, body) in &routes {
        let (s, b) = req(m, path, Some(&tb), body.clone());
        assert_eq!(s, 404, "{m} {path}: {b}");
        assert!(b["error"].is_string(), "{m} {path}: {b}");
        assert_eq!(b["code"], "not_found", "{m} {path}: {b}");
    }
    for (list, key) in [
        ("/api/datasets", "datasets"),
        ("/api/jobs", "jobs"),
        ("/api/models", "models"),
        ("/api/notifications", "notifications"),
    ] {
        let (s, b) = req("GET", list, Some(&tb), None);
        assert_eq!(
            (s, b["data"]["total"].clone()),
            (200, json!(0)),
            "{list}: {b}"
        );
        assert_eq!(b["data"][key], json!([]), "{list}");
    }
    // Alice's records are untouched by Bob's attempts.
    let (_, b) = req("GET", &format!("/api/datasets/{dsid}"), Some(&ta), None);
    assert_eq!(b["data"]["name"], "alice", "{b}");
    // Bad input is a 400 naming the field.
    let (s, b) = req(
        "PATCH",
        &format!("/api/datasets/{dsid}"),
        Some(&ta),
        Some(json!({"colour": 1})),
    );
    assert_eq!((s, b["field"].clone()), (400, json!("colour")), "{b}");
    let (s, b) = req("GET", "/api/jobs?limit=1000", Some(&ta), None);
    assert_eq!((s, b["field"].clone()), (400, json!("limit")), "{b}");
    let (s, b) = req(
        "POST",
        "/api/v1/call",
        Some(&ta),
        Some(json!({"op": "list_jobs", "page": {"offset": "x"}})),
    );
    assert_eq!((s, b["field"].clone()), (400, json!("page.offset")), "{b}");
    // No token, a wrong token, a revoked token: 401.
    assert_eq!(req("GET", "/api/jobs", None, None).0, 401);
    assert_eq!(req("GET", "/api/jobs", Some("brt_wrong"), None).0, 401);
    home.json(
        &["tokens", "revoke", bob["id"].as_str().unwrap(), "--json"],
        0,
    );
    let (s, b) = req("GET", "/api/jobs", Some(&tb), None);
    assert_eq!((s, b["code"].clone()), (401, json!("unauthorized")));
    // A token holder cannot make the daemon read a file of its machine by path.
    let (s, b) = req(
        "POST",
        "/api/v1/call",
        Some(&ta),
        Some(json!({"op": "import_dataset", "path": "/etc/passwd"})),
    );
    assert_eq!((s, b["code"].clone()), (401, json!("unauthorized")), "{b}");
    // Only the owner manages tokens, even with a valid token over TCP.
    let (s, _) = req(
        "POST",
        "/api/v1/call",
        Some(&ta),
        Some(json!({"op": "list_tokens"})),
    );
    assert_eq!(s, 401);
    // Metrics are served in Prometheus text: Alice's own figures only.
    let text = http
        .get(format!("{}/metrics", d.base()))
        .bearer_auth(&ta)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("brightrun_jobs{status=\"completed\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("brightrun_api_request_seconds_count"),
        "{text}"
    );
    // Failed authentication is rate-limited per address, but a valid token is never refused
    // for it.
    let codes: Vec<u16> = (0..12)
        .map(|_| req("GET", "/api/jobs", Some("brt_guess"), None).0)
        .collect();
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    assert_eq!(req("GET", "/api/jobs", Some(&ta), None).0, 200);
    assert!(d.stop().success(), "SIGTERM stops the daemon cleanly");
    assert!(
        !home.path().join("state/engine.sock").exists(),
        "the socket is removed"
    );
}

/// `GET path` (or `POST path` with `body`) over TCP with `token`: the status and the JSON body
/// (or the text, as a JSON string).
fn http_req(d: &Daemon, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}{path}", d.base());
    let r = match body {
        Some(b) => http.post(url).json(&b),
        None => http.get(url),
    };
    let resp = r.bearer_auth(token).send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Issue 22: expiring tokens, their last use, a valid token never locked out by others'
/// failures from the same address (everyone is 127.0.0.1 through an SSH tunnel), owner-only
/// requests that say so, and non-owners kept to their own figures.
#[test]
fn tokens_expire_record_their_use_and_are_never_locked_out_by_others_failures() {
    let home = Home::new(0);
    let d = Daemon::start(&home, free_port());
    let owner = home.json(&["tokens", "create", "--json"], 0);
    let alice = home.json(
        &[
            "tokens",
            "create",
            "--user",
            "alice",
            "--expires",
            "30d",
            "--json",
        ],
        0,
    );
    let token = |v: &Value| v["token"].as_str().unwrap().to_string();
    let (to, ta) = (token(&owner), token(&alice));
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(alice["expires_at"].clone()).unwrap();
    let days = (expires - chrono::Utc::now()).num_hours();
    assert!((29 * 24..=30 * 24).contains(&days), "{alice:#}");
    // A bad --expires is a usage error.
    for bad in ["soon", "2020-01-01"] {
        let out = home
            .cmd()
            .args(["tokens", "create", "--expires", bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--expires"),
            "{bad}: {out:?}"
        );
    }
    let listed = home.json(&["tokens", "list", "--json"], 0);
    let find = |list: &Value, id: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == *id)
            .cloned()
            .unwrap()
    };
    let a = find(&listed, &alice["id"]);
    assert_eq!(a["expires_at"], alice["expires_at"], "{a:#}");
    assert_eq!(a["last_used_at"], Value::Null, "{a:#}");
    assert_eq!(find(&listed, &owner["id"])["expires_at"], Value::Null);

    // Alice's use is recorded.
    assert_eq!(http_req(&d, "/api/jobs", &ta, None).0, 200);
    let a = find(&home.json(&["tokens", "list", "--json"], 0), &alice["id"]);
    assert!(a["last_used_at"].is_string(), "{a:#}");

    // Someone guesses from 127.0.0.1 until the address is over its limit: the guesses are
    // answered 429, every valid token from the same address still works.
    let codes: Vec<u16> = (0..12)
        .map(|_| http_req(&d, "/api/jobs", "brt_guess", None).0)
        .collect();
    assert_eq!(&codes[..10], &[401; 10], "{codes:?}");
    assert_eq!(&codes[10..], &[429; 2], "{codes:?}");
    assert_eq!(http_req(&d, "/api/jobs", &ta, None).0, 200);
    assert_eq!(http_req(&d, "/api/jobs", &to, None).0, 200);
    assert_eq!(http_req(&d, "/api/jobs", "brt_guess", None).0, 429);
    assert_eq!(http_req(&d, "/api/jobs", &ta, None).0, 200);

    // Owner-only requests say what they are; the code and reason are for clients.
    let (s, b) = http_req(
        &d,
        "/api/v1/call",
        &ta,
        Some(json!({"op": "doctor", "repair": false})),
    );
    assert_eq!((s, b["code"].clone()), (401, json!("unauthorized")), "{b}");
    assert_eq!(b["reason"], "owner_only", "{b}");
    let msg = b["error"].as_str().unwrap();
    assert!(
        msg.starts_with("`doctor` is for the engine's owner: run it on the engine's machine"),
        "{msg}"
    );
    assert!(!msg.contains("may manage tokens"), "{msg}");
    // Even the owner's own token over TCP is not the owner's socket.
    let (s, b) = http_req(
        &d,
        "/api/v1/call",
        &to,
        Some(json!({"op": "create_backup"})),
    );
    assert_eq!((s, b["reason"].clone()), (401, json!("owner_only")), "{b}");

    // Alice sees her own figures: her job counts, no request rates, no change-log seq, no
    // storage settings or paths, no mirror seq.
    let (_, text) = http_req(&d, "/metrics", &ta, None);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("brightrun_jobs{status=\"queued\"} 0"),
        "{text}"
    );
    for hidden in [
        "brightrun_api_request_seconds",
        "brightrun_change_log_seq",
        "brightrun_event_subscribers",
    ] {
        assert!(!text.contains(hidden), "{hidden}: {text}");
    }
    // The owner's token sees the engine's.
    let (_, text) = http_req(&d, "/metrics", &to, None);
    assert!(
        text.as_str()
            .unwrap()
            .contains("brightrun_api_request_seconds_count"),
        "{text}"
    );
    let config = as_user(&home, &d, &ta, &["config", "show", "--json"], 0);
    assert_eq!(config["config"]["storage"], Value::Null, "{config:#}");
    assert_eq!(config["paths"], json!({}), "{config:#}");
    assert_eq!(config["secrets"], json!([]), "{config:#}");
    assert!(config["config"]["training"].is_object(), "{config:#}");
    let owners = as_user(&home, &d, &to, &["config", "show", "--json"], 0);
    assert!(owners["config"]["storage"].is_object(), "{owners:#}");
    assert!(owners["paths"]["secrets_file"].is_string(), "{owners:#}");
    let m = as_user(&home, &d, &ta, &["mirror", "status", "--json"], 0);
    assert_eq!(
        (m["last_seq"].clone(), m["acked_seq"].clone()),
        (json!(0), json!(0)),
        "{m:#}"
    );

    // Sam's token expires: refused with its reason and a message that says what to do.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339();
    let sam = home.json(
        &[
            "tokens",
            "create",
            "--user",
            "sam",
            "--expires",
            &soon,
            "--json",
        ],
        0,
    );
    let ts = token(&sam);
    assert_eq!(http_req(&d, "/api/jobs", &ts, None).0, 200);
    std::thread::sleep(Duration::from_secs(4));
    let (s, b) = http_req(&d, "/api/jobs", &ts, None);
    assert_eq!((s, b["code"].clone()), (401, json!("unauthorized")), "{b}");
    assert_eq!(b["reason"], "token_expired", "{b}");
    let msg = b["error"].as_str().unwrap();
    assert!(
        msg.contains("expired at") && msg.contains("tokens create"),
        "{msg}"
    );
    let listed = home.json(&["tokens", "list", "--json"], 0);
    assert_eq!(find(&listed, &sam["id"])["revoked_at"], Value::Null);
    assert!(d.stop().success());
}

/// Follows the change log like a dashboard does, reconnecting from its last seq; returns
/// every seq it saw.
/// Stops once it has seen the seq sent on `until`.
async fn follow(api: RemoteApi, until: tokio::sync::watch::Receiver<Option<u64>>) -> Vec<u64> {
    let done = |last: u64| until.borrow().is_some_and(|t| last >= t);
    let mut seen = Vec::new();
    let mut last = api
        .call(brightrun_engine::api::Request::Hello)
        .await
        .map(|r| match r {
            brightrun_engine::api::Reply::Hello(i) => i.last_seq,
            _ => 0,
        })
        .unwrap_or(0);
    while !done(last) {
        match api.changes(last).await {
            Ok(mut feed) => loop {
                tokio::select! {
                    c = feed.next() => match c {
                        Some(Ok(c)) => {
                            last = c.seq;
                            seen.push(c.seq);
                            if done(last) { return seen; }
                        }
                        Some(Err(e)) => { assert_eq!(e.code, ErrorCode::Unavailable, "{e}"); break; }
                        None => break,
                    },
                    // The target may be set while the feed is quiet.
                    _ = tokio::time::sleep(Duration::from_millis(200)) => if done(last) { return seen; },
                }
            },
            Err(e) => {
                assert_eq!(e.code, ErrorCode::Unavailable, "{e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    seen
}

#[test]
fn clients_stay_live_and_survive_a_killed_daemon() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(40);
    let port = free_port();
    let mut d = Daemon::start(&home, port);
    let bin = assert_cmd::cargo::cargo_bin("brightrun");
    let python = trainer_python();
    let env: Vec<(&str, &OsStr)> = vec![
        ("BRIGHTRUN_HOME", home.path().as_os_str()),
        ("BRIGHTRUN_TRAINER_PYTHON", python.as_os_str()),
        ("HF_HUB_OFFLINE", OsStr::new("1")),
    ];
    let boards: Vec<Tmux> = (0..2)
        .map(|_| Tmux::start(home.path(), 120, 40, &env, &bin))
        .collect();
    for b in &boards {
        b.wait_for_all(
            "the attached dashboard",
            Duration::from_secs(30),
            &["attached", "arith"],
        );
    }
    // Two CLIs at once while both dashboards watch: both see each dataset appear.
    let files = [
        home.arith_file("left.jsonl", 12),
        home.arith_file("right.jsonl", 12),
    ];
    let adds: Vec<_> = files
        .iter()
        .map(|f| {
            home.std_cmd()
                .args(["datasets", "add", f.to_str().unwrap(), "--wait"])
                .output()
        })
        .collect();
    for a in adds {
        assert!(a.unwrap().status.success());
    }
    for b in &boards {
        b.wait_for_all(
            "both new datasets",
            Duration::from_secs(10),
            &["left", "right"],
        );
    }
    // A client of the change log that reconnects, like the dashboards do.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(None);
    let sock = home.path().join("state/engine.sock");
    let follower = rt.spawn(follow(
        RemoteApi::new(EngineAddress::Unix(sock), None).unwrap(),
        stop_rx,
    ));
    // batch 2 over 36 training examples: 36 steps.
    let job = home.tiny_job(&dataset, &["epochs=2", "batch_size=2"]);
    // A laptop's `jobs watch` over TCP, which must outlive the daemon's restart.
    let token = home.json(&["tokens", "create", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = d.base();
    let over_tcp = |args: &[&str]| {
        let mut c = home.std_cmd();
        c.env("BRIGHTRUN_ENGINE", &base)
            .env("BRIGHTRUN_TOKEN", &token)
            .args(args);
        c
    };
    let tcp_watch = over_tcp(&["jobs", "watch", &job, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    home.wait_until(180, "the first metrics", || home.metric_lines(&job) >= 3);
    d.kill9();
    for b in &boards {
        b.wait_for_all(
            "the lost connection",
            Duration::from_secs(10),
            &["reconnecting"],
        );
    }
    // The trainer goes on alone; a new daemon picks the job up where its events left off.
    let seen = home.metric_lines(&job);
    home.wait_until(120, "the trainer to go on alone", || {
        home.metric_lines(&job) > seen
    });
    // A dashboard started over TCP while the daemon is down waits for it, saying so.
    let tcp_env: Vec<(&str, &OsStr)> = env
        .iter()
        .copied()
        .chain([
            ("BRIGHTRUN_ENGINE", OsStr::new(base.as_str())),
            ("BRIGHTRUN_TOKEN", OsStr::new(token.as_str())),
        ])
        .collect();
    let late = Tmux::start(home.path(), 120, 40, &tcp_env, &bin);
    late.wait_for_all(
        "the dashboard waiting for the daemon",
        Duration::from_secs(20),
        &["waiting for the engine"],
    );
    let d2 = Daemon::start(&home, port);
    late.wait_for_all(
        "the late dashboard, attached",
        Duration::from_secs(30),
        &["attached", "arith"],
    );
    let boards: Vec<Tmux> = boards.into_iter().chain([late]).collect();
    // The TCP watch reconnected to the new daemon and saw the job to its end.
    let watched = tcp_watch.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&watched.stderr);
    assert_eq!(watched.status.code(), Some(0), "{err}");
    assert!(
        err.contains("reconnecting") && err.contains("reconnected"),
        "{err}"
    );
    let done: Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(done["status"], "completed", "{done:#}");
    let done = home.json(&["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let metrics = home.json(&["jobs", "metrics", &job, "--json"], 0);
    let steps: Vec<u64> = metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=36).collect::<Vec<_>>());
    for b in &boards {
        b.keys(&["3"]);
        b.wait_for_all("the finished job", Duration::from_secs(20), &["completed"]);
        assert!(!b.capture().contains("reconnecting"), "{}", b.capture());
    }
    let sock = home.path().join("state/engine.sock");
    let last = rt.block_on(async {
        match RemoteApi::new(EngineAddress::Unix(sock), None)
            .unwrap()
            .call(Request::Hello)
            .await
        {
            Ok(Reply::Hello(i)) => i.last_seq,
            other => panic!("{other:?}"),
        }
    });
    // The follower stops once it has received the last change (or the test fails after 60 s).
    stop_tx.send(Some(last)).unwrap();
    let seqs = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(60), follower).await })
        .expect("the follower reaches the last seq")
        .unwrap();
    assert_eq!(seqs.last(), Some(&last), "the follower is caught up");
    let contiguous: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(
        seqs, contiguous,
        "every change once, in order, across the kill"
    );
    // SIGTERM stops the daemon even with dashboards attached to it (their streams end);
    // they show the lost connection and still quit cleanly.
    assert!(d2.stop().success());
    for b in boards {
        b.wait_for_all(
            "the lost connection",
            Duration::from_secs(10),
            &["reconnecting"],
        );
        b.keys(&["q"]);
        let screen = b.wait_for_exit(Duration::from_secs(10));
        assert!(screen.contains("[exited 0]"), "{screen}");
    }
}
