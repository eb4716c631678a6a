//! The object-store contract, run against the local folder store and against the S3 store on a
//! real S3 server (s3s-fs on loopback): the same behaviour from both. Then what only S3 has:
//! presigned URLs, resumed multipart uploads, a server that goes away mid-upload, and a
//! clear message for each misconfiguration.

mod support;

use brightrun_engine::secrets::Secrets;
use brightrun_engine::storage::journal::{MemoryJournal, UploadJournal};
use brightrun_engine::storage::{
    Bucket, CheckFailure, LocalStore, ObjectStore, S3Store, StorageError,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use support::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use tokio::io::AsyncReadExt;

fn secrets() -> Secrets {
    Secrets::from_pairs([
        ("s3_access_key_id", ACCESS_KEY),
        ("s3_secret_access_key", SECRET_KEY),
    ])
}

fn s3_store(server: &S3Server, journal: Arc<dyn UploadJournal>) -> S3Store {
    S3Store::new(server.config(), &secrets(), journal)
}

/// A file of `n` bytes whose content depends on its position (so misplaced parts show).
fn file_of(dir: &Path, name: &str, n: usize) -> std::path::PathBuf {
    let p = dir.join(name);
    let data: Vec<u8> = (0..n).map(|i| ((i * 31 + i / 7919) % 251) as u8).collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn sha(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// What every store must do.
async fn contract(store: &dyn ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    // One small object and one of several parts (with S3's 5 MiB parts).
    for (name, n) in [
        ("small.jsonl", 10_000usize),
        ("big.bin", 12 * 1024 * 1024 + 3),
    ] {
        let src = file_of(dir.path(), name, n);
        let path = format!("u1/d1/{name}");
        let stored = store
            .put_file(Bucket::Datasets, &path, &src, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(stored.size, n as u64);
        assert_eq!(stored.sha256, sha(&src), "{name}: recorded sha256");
        assert_eq!(
            store.size(Bucket::Datasets, &path).await.unwrap(),
            Some(n as u64)
        );
        let mut back = Vec::new();
        store
            .open(Bucket::Datasets, &path)
            .await
            .unwrap()
            .read_to_end(&mut back)
            .await
            .unwrap();
        assert_eq!(back, std::fs::read(&src).unwrap(), "{name}: read back");
        let dest = dir.path().join("out").join(name);
        let got = store
            .get_to_file(Bucket::Datasets, &path, &dest, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(got.sha256, stored.sha256);
        assert_eq!(sha(&dest), stored.sha256);
        store.delete(Bucket::Datasets, &path).await.unwrap();
        assert_eq!(store.size(Bucket::Datasets, &path).await.unwrap(), None);
    }
    // A stream of several parts.
    let data: Vec<u8> = (0..11 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let mut reader: &[u8] = &data;
    let stored = store
        .put_reader(Bucket::Models, "u1/m1/adapter.bin", &mut reader, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(stored.size, data.len() as u64);
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
    // Missing objects are `NotFound`, not some other failure.
    let missing = store.open(Bucket::Models, "u1/m1/nothing").await;
    assert!(matches!(missing, Err(StorageError::NotFound { .. })));
    // Over the bucket's limit: refused before a byte moves (a sparse file reads nothing).
    let huge = dir.path().join("huge.jsonl");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(Bucket::Datasets.max_object_size() + 1)
        .unwrap();
    let err = store
        .put_file(Bucket::Datasets, "u1/d2/huge.jsonl", &huge, &|_, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
    assert_eq!(
        store
            .size(Bucket::Datasets, "u1/d2/huge.jsonl")
            .await
            .unwrap(),
        None
    );
    // Paths cannot escape the bucket.
    assert!(store.size(Bucket::Datasets, "../x").await.is_err());
    // The check passes.
    let steps = store.check(true).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
}

#[tokio::test]
async fn the_local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&LocalStore::new(dir.path().join("objects"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_keeps_the_contract() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    contract(&s3_store(&server, Arc::new(MemoryJournal::default()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_work_without_credentials() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let store = s3_store(&server, Arc::new(MemoryJournal::default()));
    let ttl = std::time::Duration::from_secs(3600);
    let put = store
        .presign_put(Bucket::Models, "u/m/adapter.safetensors", ttl)
        .await
        .unwrap()
        .unwrap();
    let http = reqwest::Client::new();
    let body = b"weights".repeat(1000);
    let r = http.put(&put).body(body.clone()).send().await.unwrap();
    assert!(r.status().is_success(), "PUT {}", r.status());
    let get = store
        .presign_get(Bucket::Models, "u/m/adapter.safetensors", ttl)
        .await
        .unwrap()
        .unwrap();
    let got = http.get(&get).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(got.as_ref(), body.as_slice());
    // A URL for another object is refused: the signature covers the key.
    let forged = get.replace("adapter.safetensors", "other.safetensors");
    assert!(
        !http
            .get(&forged)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_without_resending_parts() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let journal = Arc::new(MemoryJournal::default());
    let dir = tempfile::tempdir().unwrap();
    let src = file_of(dir.path(), "d.jsonl", 26 * 1024 * 1024);
    // The first try is cut off after two parts, as a kill would.
    {
        let store = s3_store(&server, journal.clone());
        let upload = store.put_file(Bucket::Datasets, "u/d/d.jsonl", &src, &|_, _| {});
        tokio::pin!(upload);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            tokio::select! {
                r = &mut upload => panic!("finished before it was cut off: {:?}", r.map(|o| o.size)),
                _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
            }
            let parts = journal
                .all()
                .unwrap()
                .first()
                .map(|u| u.parts.len())
                .unwrap_or(0);
            if parts >= 2 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no parts stored");
        }
    }
    let before = journal.all().unwrap()[0].parts.clone();
    assert!(
        before.len() >= 2 && before.len() < 6,
        "{} parts",
        before.len()
    );
    let store = s3_store(&server, journal.clone());
    let stored = store
        .put_file(Bucket::Datasets, "u/d/d.jsonl", &src, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(stored.sha256, sha(&src));
    assert!(
        journal.all().unwrap().is_empty(),
        "the journal forgets a finished upload"
    );
    let mut back = Vec::new();
    store
        .open(Bucket::Datasets, "u/d/d.jsonl")
        .await
        .unwrap()
        .read_to_end(&mut back)
        .await
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&back)), stored.sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_mid_upload_is_waited_for() {
    let mut server = S3Server::start(&["lora-datasets", "lora-models"]);
    let journal = Arc::new(MemoryJournal::default());
    let store = Arc::new(s3_store(&server, journal.clone()));
    let dir = tempfile::tempdir().unwrap();
    let src = file_of(dir.path(), "d.jsonl", 31 * 1024 * 1024);
    let task = {
        let store = store.clone();
        let src = src.clone();
        tokio::spawn(async move {
            store
                .put_file(Bucket::Datasets, "u/d/d.jsonl", &src, &|_, _| {})
                .await
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while journal
        .all()
        .unwrap()
        .first()
        .map(|u| u.parts.len())
        .unwrap_or(0)
        < 1
    {
        assert!(std::time::Instant::now() < deadline, "no part stored");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.stop();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(!task.is_finished(), "the upload gave up while retries last");
    server.resume();
    let stored = task.await.unwrap().unwrap();
    assert_eq!(stored.sha256, sha(&src));
    assert_eq!(
        store.size(Bucket::Datasets, "u/d/d.jsonl").await.unwrap(),
        Some(stored.size)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_misconfiguration_gets_its_own_verdict() {
    let server = S3Server::start(&["lora-datasets"]);
    // The models bucket is missing.
    let store = s3_store(&server, Arc::new(MemoryJournal::default()));
    let steps = store.check(false).await;
    let missing = steps
        .iter()
        .find(|s| s.what == "bucket lora-models")
        .unwrap();
    assert_eq!(missing.failure, Some(CheckFailure::NoBucket), "{steps:?}");
    assert!(
        missing.detail.contains("--create-buckets"),
        "{}",
        missing.detail
    );
    // … and made with the flag.
    let steps = store.check(true).await;
    assert!(steps.iter().all(|s| s.ok), "{steps:?}");
    // Wrong credentials.
    let wrong = S3Store::new(
        server.config(),
        &Secrets::from_pairs([
            ("s3_access_key_id", ACCESS_KEY),
            ("s3_secret_access_key", "nope"),
        ]),
        Arc::new(MemoryJournal::default()),
    );
    let steps = wrong.check(false).await;
    assert_eq!(steps[0].failure, Some(CheckFailure::Denied), "{steps:?}");
    assert!(
        steps[0].detail.contains("s3_secret_access_key"),
        "{}",
        steps[0].detail
    );
    assert!(
        !steps[0].detail.contains("nope"),
        "the secret is never shown"
    );
    // Nothing listens.
    let mut cfg = server.config();
    cfg.endpoint = Some(format!("http://127.0.0.1:{}", support::s3::free_port()));
    cfg.retry_for_secs = 0;
    let away = S3Store::new(cfg, &secrets(), Arc::new(MemoryJournal::default()));
    let steps = away.check(false).await;
    assert_eq!(
        steps.len(),
        1,
        "one verdict for an unreachable server: {steps:?}"
    );
    assert_eq!(steps[0].failure, Some(CheckFailure::Unreachable));
    assert!(steps[0].detail.contains("127.0.0.1"), "{}", steps[0].detail);
}

/// An upload the server no longer knows (lost in a restart, aborted by a cleanup): s3s-fs
/// answers AccessDenied for its id where AWS says NoSuchUpload. Neither is the credentials'
/// fault: the upload starts afresh and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_server_forgot_starts_afresh_without_blaming_the_credentials() {
    use brightrun_engine::storage::journal::{PendingUpload, SourceStamp};
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let journal = Arc::new(MemoryJournal::default());
    let store = s3_store(&server, journal.clone());
    let dir = tempfile::tempdir().unwrap();
    let src = file_of(dir.path(), "d.jsonl", 12 * 1024 * 1024);
    let meta = std::fs::metadata(&src).unwrap();
    journal
        .begin(&PendingUpload {
            bucket: Bucket::Datasets,
            path: "u/d/d.jsonl".into(),
            upload_id: uuid::Uuid::new_v4().to_string(),
            source: SourceStamp::of(&src, &meta),
            part_size: server.config().part_size_mb * 1024 * 1024,
            checksums: true,
            parts: Vec::new(),
            started_at: chrono::Utc::now(),
        })
        .unwrap();
    let stored = store
        .put_file(Bucket::Datasets, "u/d/d.jsonl", &src, &|_, _| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.sha256, sha(&src));
    assert!(journal.all().unwrap().is_empty());
}
