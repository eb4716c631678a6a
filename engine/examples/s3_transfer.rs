//! Uploads a file to an S3 server and downloads it back through BrightRun's S3 store, printing
//! wall seconds and CPU seconds of each way. Used by bench/s3.sh against s3s-fs, beside
//! `aws s3 cp` and `rclone copy` on the same server.
//!
//! cargo run --release -p brightrun-engine --example s3_transfer -- ENDPOINT FILE [PART_MB] [CONCURRENCY]

use brightrun_engine::config::S3Config;
use brightrun_engine::secrets::Secrets;
use brightrun_engine::storage::journal::MemoryJournal;
use brightrun_engine::storage::{Bucket, ObjectStore, S3Store};
use std::sync::Arc;
use std::time::Instant;

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args.get(1).expect("ENDPOINT").clone();
    let file = std::path::PathBuf::from(args.get(2).expect("FILE"));
    let part_mb: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(16);
    let concurrency: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(8);
    let secrets = Secrets::from_pairs([
        (
            "s3_access_key_id",
            std::env::var("AWS_ACCESS_KEY_ID").unwrap().leak() as &str,
        ),
        (
            "s3_secret_access_key",
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap().leak() as &str,
        ),
    ]);
    let store = S3Store::new(
        S3Config {
            endpoint: Some(endpoint),
            force_path_style: true,
            part_size_mb: part_mb,
            concurrency,
            ..S3Config::default()
        },
        &secrets,
        Arc::new(MemoryJournal::default()),
    );
    let size = std::fs::metadata(&file).unwrap().len();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let up = store
        .put_file(Bucket::Models, "bench/object.bin", &file, &|_, _| {})
        .await
        .unwrap();
    let (up_s, up_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let dest = file.with_extension("brightrun-back");
    let _ = std::fs::remove_file(&dest);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let down = store
        .get_to_file(Bucket::Models, "bench/object.bin", &dest, &|_, _| {})
        .await
        .unwrap();
    let (down_s, down_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    assert_eq!(
        up.sha256, down.sha256,
        "the download differs from the upload"
    );
    let _ = std::fs::remove_file(&dest);
    let mb = size as f64 / 1e6;
    println!(
        "brightrun upload   {up_s:6.2} s  {:7.1} MB/s  cpu {up_cpu:5.2} s (sha256 included)",
        mb / up_s
    );
    println!(
        "brightrun download {down_s:6.2} s  {:7.1} MB/s  cpu {down_cpu:5.2} s (sha256 included)",
        mb / down_s
    );
}
