//! BrightRun on a real S3 server (s3s-fs on loopback), with the AWS CLI as the interop peer:
//! a 300 MB upload killed with SIGKILL half-way resumes on the next `datasets add` without
//! sending the stored parts again; the object reads back through `aws s3 cp` with the same
//! sha256; `storage check` gives its verdicts; a trained model's adapter lands in S3, reads
//! back through the CLI, and an object put there by the CLI downloads through BrightRun.

mod common;
#[path = "../engine/tests/support/s3.rs"]
mod s3;

use common::{Home, aws_bin, sha256_file};
use s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A test home whose store is the S3 server, with 5 MiB parts.
fn s3_home(server: &S3Server) -> Home {
    let home = Home::new(0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config/config.toml"))
        .unwrap();
    write!(
        f,
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nforce_path_style = true\n\
         part_size_mb = 5\nconcurrency = 2\nretry_for_secs = 20\n",
        server.endpoint()
    )
    .unwrap();
    home
}

fn with_keys(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("BRIGHTRUN_SECRET_S3_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("BRIGHTRUN_LOG", "info")
}

/// Runs brightrun with the S3 keys, asserting the exit status; returns stdout as JSON.
fn run_json(home: &Home, args: &[&str], code: i32) -> serde_json::Value {
    let mut c = home.std_cmd();
    with_keys(&mut c);
    common::run_json(c, args, code)
}

/// The AWS CLI from the test tools' environment, pointed at the server.
fn aws(server: &S3Server, args: &[&str]) -> std::process::Output {
    server.aws(&aws_bin(), args)
}

/// Parts s3s-fs holds for unfinished uploads.
fn stored_parts(server: &S3Server) -> usize {
    std::fs::read_dir(server.root.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(".upload_id-") && n.contains(".part-")
        })
        .count()
}

/// Every log line BrightRun wrote in this home.
fn logs(home: &Home) -> String {
    let mut out = String::new();
    let mut stack = vec![home.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("brightrun"))
                && p.extension().is_some_and(|x| x == "log")
            {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// A chat JSONL file of about `mb` megabytes.
fn big_dataset(dir: &Path, mb: usize) -> PathBuf {
    let p = dir.join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let pad = "x".repeat(900);
    let mut n = 0usize;
    let mut written = 0usize;
    while written < mb * 1_000_000 {
        let line = format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"question {n}\"}},{{\"role\":\"assistant\",\"content\":\"answer {n} {pad}\"}}]}}\n"
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
    f.flush().unwrap();
    p
}

#[test]
fn a_killed_300_mb_upload_resumes_and_the_aws_cli_reads_it_back() {
    let server = S3Server::start(&[]);
    let home = s3_home(&server);
    // No buckets yet: the check says which and how to make them, and exits non-zero.
    let check = run_json(&home, &["storage", "check", "--json"], 1);
    assert_eq!(check["ok"], false);
    let missing = check["steps"][0]["detail"].as_str().unwrap();
    assert!(
        missing.contains("lora-datasets") && missing.contains("--create-buckets"),
        "{missing}"
    );
    let check = run_json(
        &home,
        &["storage", "check", "--create-buckets", "--json"],
        0,
    );
    assert_eq!(check["ok"], true, "{check}");

    let data = tempfile::tempdir().unwrap();
    let file = big_dataset(data.path(), 300);
    let size = std::fs::metadata(&file).unwrap().len();
    let total_parts = size.div_ceil(5 * 1024 * 1024) as usize;
    let mut child = with_keys(&mut home.std_cmd())
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--name", "big"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored_parts(&server) < 6 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "datasets add ended before the kill"
        );
        assert!(Instant::now() < deadline, "no parts reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = stored_parts(&server);
    assert!(
        at_kill < total_parts,
        "killed too late: {at_kill} of {total_parts} parts"
    );

    // The same file added again continues that upload: one dataset, ready, the same bytes.
    let d = run_json(
        &home,
        &[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--name",
            "big",
            "--wait",
            "--json",
        ],
        0,
    );
    assert_eq!(d["status"], "ready", "{d}");
    let list = run_json(&home, &["datasets", "list", "--json"], 0);
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "a second dataset was made: {list}"
    );
    let want = sha256_file(&file);
    assert_eq!(d["sha256"], want.as_str());
    // The parts the server already had were not sent again.
    let log = logs(&home);
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("multipart upload: parts sent"))
        .unwrap_or_else(|| panic!("no upload summary in the log:\n{log}"));
    let field = |name: &str| -> usize {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (sent, skipped) = (field("sent"), field("skipped"));
    // A part the server stored is journaled a moment later: the kill can fall between the
    // two for each of the (concurrency = 2) parts in flight, which are then sent again.
    assert!(
        skipped >= 6 - 2 && skipped <= at_kill,
        "{line} (at the kill: {at_kill})"
    );
    assert_eq!(sent + skipped, total_parts, "{line}");
    assert!(!log.contains(SECRET_KEY), "the secret key reached the log");

    // The AWS CLI reads back exactly what was added.
    let back = data.path().join("back.jsonl");
    let key = format!("s3://lora-datasets/{}", d["storage_path"].as_str().unwrap());
    aws(&server, &["s3", "cp", &key, back.to_str().unwrap()]);
    assert_eq!(sha256_file(&back), want);

    // Purged: the object goes; a plain rm would have kept it.
    run_json(
        &home,
        &[
            "datasets",
            "rm",
            d["id"].as_str().unwrap(),
            "--yes",
            "--purge",
            "--json",
        ],
        0,
    );
    let ls = aws(&server, &["s3", "ls", "s3://lora-datasets/", "--recursive"]);
    assert!(String::from_utf8_lossy(&ls.stdout).trim().is_empty());
}

#[test]
fn an_adapter_trained_on_s3_goes_both_ways_with_the_aws_cli() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let home = s3_home(&server);
    let dataset = {
        let f = home.arith_file("arith.jsonl", 40);
        let d = run_json(
            &home,
            &["datasets", "add", f.to_str().unwrap(), "--wait", "--json"],
            0,
        );
        d["id"].as_str().unwrap().to_string()
    };
    let args = common::tiny_job_args(&dataset, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let job = run_json(&home, &args, 0);
    let job_id = job["id"].as_str().unwrap().to_string();
    let out = with_keys(&mut home.std_cmd())
        .args(["jobs", "watch", &job_id, "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "jobs watch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let models = run_json(&home, &["models", "list", "--json"], 0);
    let model = &models[0];
    let model_id = model["id"].as_str().unwrap();
    let weights = model["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(".safetensors"))
        .unwrap()
        .clone();
    let user = model["user_id"].as_str().unwrap();
    let key = format!(
        "s3://lora-models/{user}/{model_id}/{}",
        weights["path"].as_str().unwrap()
    );
    // BrightRun wrote it; the CLI reads the same bytes.
    let tmp = tempfile::tempdir().unwrap();
    let via_cli = tmp.path().join("w.safetensors");
    aws(&server, &["s3", "cp", &key, via_cli.to_str().unwrap()]);
    assert_eq!(sha256_file(&via_cli), weights["sha256"].as_str().unwrap());
    // The CLI writes it (as a remote trainer would); BrightRun downloads and verifies it.
    aws(&server, &["s3", "rm", &key]);
    aws(&server, &["s3", "cp", via_cli.to_str().unwrap(), &key]);
    let to = tmp.path().join("adapter");
    run_json(
        &home,
        &[
            "models",
            "download",
            model_id,
            "--to",
            to.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert_eq!(
        sha256_file(&to.join(weights["path"].as_str().unwrap())),
        weights["sha256"].as_str().unwrap()
    );
    // A presigned URL to share works without credentials.
    let url = run_json(
        &home,
        &["models", "url", model_id, "--expires", "1h", "--json"],
        0,
    );
    let body = reqwest::blocking::get(url["url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(body.len() as u64, weights["size"].as_u64().unwrap());
    // The playground and an evaluation job on this machine fetch the adapter from S3 (once,
    // each file's sha256 checked) and answer with it.
    let chat = run_json(
        &home,
        &[
            "models",
            "chat",
            model_id,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "8",
            "--json",
        ],
        0,
    );
    assert!(chat["tokens"].as_u64().unwrap() > 0, "{chat:#}");
    let prompts = tmp.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"What is 1 plus 1?\", \"completion\": \"2\"}\n",
    )
    .unwrap();
    let c = run_json(
        &home,
        &[
            "models",
            "eval",
            model_id,
            "--prompts",
            prompts.to_str().unwrap(),
            "--max-new-tokens",
            "8",
            "--json",
        ],
        0,
    );
    assert_eq!(
        c["prompts"][0]["answers"].as_array().unwrap().len(),
        2,
        "{c:#}"
    );
    // Different bytes under the key: the download refuses them and keeps nothing.
    std::fs::write(&via_cli, b"not the adapter").unwrap();
    aws(&server, &["s3", "cp", via_cli.to_str().unwrap(), &key]);
    let to2 = tmp.path().join("adapter2");
    let out = with_keys(&mut home.std_cmd())
        .args([
            "models",
            "download",
            model_id,
            "--to",
            to2.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(weights["path"].as_str().unwrap()), "{err}");
    assert!(!to2.join(weights["path"].as_str().unwrap()).exists());
}

#[test]
fn a_dataset_in_s3_is_cleaned_like_a_local_one() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let home = s3_home(&server);
    // 30 good conversations and 2 broken lines.
    let good = home.arith_file("mixed.jsonl", 30);
    let mut text = std::fs::read_to_string(&good).unwrap();
    text.push_str("this line is not json\n{\"not\": \"a conversation\"}\n");
    std::fs::write(&good, text).unwrap();
    let added = run_json(
        &home,
        &[
            "datasets",
            "add",
            good.to_str().unwrap(),
            "--wait",
            "--json",
        ],
        1,
    );
    assert_ne!(added["status"], "ready", "{added:#}");
    let id = added["id"].as_str().unwrap();
    let cleaned = run_json(&home, &["datasets", "clean", id, "--json"], 0);
    assert_eq!(cleaned["dataset"]["status"], "ready", "{cleaned:#}");
    assert_eq!(cleaned["report"]["kept"], 30, "{cleaned:#}");
    assert_eq!(cleaned["report"]["dropped"].as_array().unwrap().len(), 2);
    // The clean file went to the bucket like any other.
    let key = format!(
        "s3://lora-datasets/{}",
        cleaned["dataset"]["storage_path"].as_str().unwrap()
    );
    let back = home.path().join("back.jsonl");
    aws(&server, &["s3", "cp", &key, back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap().lines().count(), 30);
}
