use super::*;
use stored::Persisted;

pub(crate) fn dataset(user: UserId, name: &str, status: DatasetStatus) -> Dataset {
    let t = now();
    Dataset {
        id: DatasetId::new(),
        user_id: user,
        name: name.into(),
        description: None,
        file_name: format!("{name}.jsonl"),
        file_size: 10,
        format: Some(DatasetFormat::OpenaiChat),
        status,
        storage_bucket: "lora-datasets".into(),
        storage_path: format!("{user}/{name}"),
        sha256: None,
        statistics: None,
        total_training_pairs: None,
        total_validation_pairs: None,
        total_tokens: None,
        training_ready: false,
        validated_at: None,
        validation_errors: vec![],
        sample_data: vec![],
        error_message: None,
        source_path: None,
        created_at: t,
        updated_at: t,
        deleted_at: None,
    }
}

fn open(dir: &tempfile::TempDir) -> (Store, broadcast::Receiver<Arc<Sequenced>>) {
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let rx = store.subscribe_changes();
    (store, rx)
}

#[test]
fn records_round_trip_and_publish_events() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut rx) = open(&dir);
    let user = UserId::new();
    let d = dataset(user, "a", DatasetStatus::Uploading);
    store.put(&d).unwrap();
    assert_eq!(store.dataset(d.id).unwrap(), Some(d.clone()));
    let change = rx.try_recv().unwrap();
    assert_eq!(change.seq, 1);
    match &change.event {
        EngineEvent::Dataset(got) => assert_eq!(**got, d),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn status_index_follows_updates() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let mut d = dataset(user, "a", DatasetStatus::Validating);
    store.put(&d).unwrap();
    let validating = store
        .datasets(user, Some(DatasetStatus::Validating), Page::ALL)
        .unwrap();
    assert_eq!(validating.len(), 1);
    d.status = DatasetStatus::Ready;
    store.put(&d).unwrap();
    assert!(
        store
            .datasets(user, Some(DatasetStatus::Validating), Page::ALL)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .datasets(user, Some(DatasetStatus::Ready), Page::ALL)
            .unwrap()[0]
            .id,
        d.id
    );
    // Other users see nothing.
    assert!(
        store
            .datasets(UserId::new(), None, Page::ALL)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn lists_are_newest_first_and_paginated() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let base = now();
    let mut ids = Vec::new();
    for i in 0..25 {
        let mut d = dataset(user, &format!("d{i}"), DatasetStatus::Ready);
        d.created_at = base + chrono::Duration::seconds(i);
        ids.push(d.id);
        store.put(&d).unwrap();
    }
    let first = store.datasets(user, None, Page::first(10)).unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].id, ids[24]);
    let third = store
        .datasets(
            user,
            None,
            Page {
                offset: 20,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(
        third.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids[..5].iter().rev().copied().collect::<Vec<_>>()
    );
}

#[test]
fn a_failed_transaction_changes_nothing_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut rx) = open(&dir);
    let user = UserId::new();
    let d = dataset(user, "a", DatasetStatus::Ready);
    let r: Result<(), StoreError> = store.write(|w| {
        w.put(&d)?;
        Err(StoreError::Decode {
            table: "x".into(),
            message: "abort".into(),
        })
    });
    assert!(r.is_err());
    assert_eq!(store.dataset(d.id).unwrap(), None);
    assert!(rx.try_recv().is_err());
}

#[test]
fn metrics_are_unique_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let job = JobId::new();
    let point = |step: u64, loss: f64| MetricsPoint {
        job_id: job,
        timestamp: now(),
        epoch: 0.0,
        step,
        training_loss: Some(loss),
        validation_loss: None,
        learning_rate: None,
        gradient_norm: None,
        throughput: None,
        gpu_utilization: None,
        preference: None,
    };
    let batch: Vec<_> = (1..=10).map(|s| point(s, 1.0)).collect();
    assert_eq!(store.write(|w| w.put_metrics(&batch)).unwrap(), 10);
    // A replay of steps 8..=12 adds only 11 and 12.
    let replay: Vec<_> = (8..=12).map(|s| point(s, 2.0)).collect();
    assert_eq!(store.write(|w| w.put_metrics(&replay)).unwrap(), 2);
    let all = store.metrics(job, 0, usize::MAX).unwrap();
    assert_eq!(
        all.iter().map(|p| p.step).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(store.metrics(job, 11, 10).unwrap().len(), 2);
    assert!(store.metrics(JobId::new(), 0, 10).unwrap().is_empty());
}

#[test]
fn schema_1_is_upgraded_with_its_indexes_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let user = UserId::new();
    let d = dataset(user, "old", DatasetStatus::Ready);
    {
        let db_ = redb::Database::create(&path).unwrap();
        schema::write_v1(&db_, std::slice::from_ref(&d)).unwrap();
        assert_eq!(schema::read_version(&db_).unwrap(), 1);
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let ready = store
        .datasets(user, Some(DatasetStatus::Ready), Page::ALL)
        .unwrap();
    assert_eq!(ready, vec![d]);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let db_ = redb::Database::create(&path).unwrap();
        let txn = db_.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 99u64)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path).err().unwrap();
    assert!(err.to_string().contains("schema 99"), "{err}");
}

#[test]
fn a_second_opener_is_told_who_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _rx) = open(&dir);
    let err = Store::open(&dir.path().join("db.redb")).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("in use by another BrightRun process"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
}

#[test]
fn every_change_gets_the_next_seq_in_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut rx) = open(&dir);
    let user = UserId::new();
    let a = dataset(user, "a", DatasetStatus::Uploading);
    let b = dataset(user, "b", DatasetStatus::Uploading);
    store.put(&a).unwrap();
    store
        .write(|w| {
            w.put(&a)?;
            w.put(&b)
        })
        .unwrap();
    // A failed transaction writes nothing to the log and publishes nothing.
    let failed: Result<(), StoreError> = store.write(|w| {
        w.put(&b)?;
        Err(StoreError::Decode {
            table: "x".into(),
            message: "abort".into(),
        })
    });
    assert!(failed.is_err());
    let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|c| c.seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(store.last_seq().unwrap(), 3);
    let replay: Vec<u64> = store
        .changes_after(1, 10)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(replay, vec![2, 3]);
    // The log outlives the process: a reopened store continues the numbering.
    drop(rx);
    drop(store);
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    store.put(&a).unwrap();
    assert_eq!(store.last_seq().unwrap(), 4);
    match &store.changes_after(3, 1).unwrap()[0].event {
        EngineEvent::Dataset(d) => assert_eq!(d.id, a.id),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn compaction_keeps_what_a_durable_consumer_has_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    for i in 0..10 {
        store
            .put(&dataset(user, &format!("d{i}"), DatasetStatus::Ready))
            .unwrap();
    }
    store.ack_changes("mirror", 4).unwrap();
    let later = now() + chrono::Duration::seconds(1);
    assert_eq!(store.compact_changes(later).unwrap(), 4);
    assert_eq!(store.change_bounds().unwrap().first, 5);
    store.ack_changes("mirror", 10).unwrap();
    // Everything acknowledged and old: all but the last go, so the numbering survives.
    assert_eq!(store.compact_changes(later).unwrap(), 5);
    let bounds = store.change_bounds().unwrap();
    assert_eq!((bounds.first, bounds.last), (10, 10));
    store
        .put(&dataset(user, "next", DatasetStatus::Ready))
        .unwrap();
    assert_eq!(store.last_seq().unwrap(), 11);
    // Nothing newer than the cutoff is removed.
    assert_eq!(
        store
            .compact_changes(now() - chrono::Duration::hours(1))
            .unwrap(),
        0
    );
}

#[test]
fn live_events_are_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let mut live = store.subscribe_live();
    store.publish(EngineEvent::BackendHealth {
        backend: "local".into(),
        reachable: true,
    });
    assert!(matches!(
        live.try_recv().unwrap(),
        EngineEvent::BackendHealth { .. }
    ));
    assert_eq!(store.last_seq().unwrap(), 0);
}

fn job(user: UserId, status: JobStatus) -> TrainingJob {
    let hp = crate::training::presets::list(&crate::config::TrainingConfig::default())[0]
        .hyperparameters
        .clone();
    let gpu = GpuConfig {
        gpu_type: "A10G".into(),
        gpu_count: 1,
        price_per_gpu_hour: 1.0,
        backend: "local".into(),
    };
    let mut j = TrainingJob::new_queued(
        user,
        DatasetId::new(),
        PresetId::Fast,
        hp,
        gpu,
        10,
        1.0,
        None,
    );
    j.status = status;
    j
}

/// The counts the index scans give, for comparing with the kept ones.
fn scanned_jobs(store: &Store, user: UserId, status: Option<JobStatus>) -> usize {
    store.jobs(user, status, Page::ALL).unwrap().len()
}

#[test]
fn job_counts_follow_inserts_and_status_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let (a, b) = (UserId::new(), UserId::new());
    let mut jobs: Vec<TrainingJob> = (0..7).map(|_| job(a, JobStatus::Queued)).collect();
    jobs.push(job(b, JobStatus::Running));
    store
        .write(|w| jobs.iter().try_for_each(|j| w.put(j)))
        .unwrap();
    // Moves: two queued jobs start, one of them completes; a re-put changes nothing.
    for (i, s) in [(0, JobStatus::Running), (1, JobStatus::Running)] {
        jobs[i].status = s;
        store.put(&jobs[i]).unwrap();
    }
    jobs[0].status = JobStatus::Completed;
    store.put(&jobs[0]).unwrap();
    store.put(&jobs[0]).unwrap();
    let expect = [
        (a, None, 7),
        (a, Some(JobStatus::Queued), 5),
        (a, Some(JobStatus::Running), 1),
        (a, Some(JobStatus::Completed), 1),
        (a, Some(JobStatus::Failed), 0),
        (b, None, 1),
        (b, Some(JobStatus::Running), 1),
        (UserId::new(), None, 0),
    ];
    for (user, status, n) in expect {
        assert_eq!(store.count_jobs(user, status).unwrap(), n, "{status:?}");
        assert_eq!(scanned_jobs(&store, user, status), n, "{status:?}");
    }
}

#[test]
fn dataset_counts_leave_out_deleted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let mut ds: Vec<Dataset> = (0..4)
        .map(|i| dataset(user, &format!("d{i}"), DatasetStatus::Ready))
        .collect();
    for d in &ds {
        store.put(d).unwrap();
    }
    ds[0].deleted_at = Some(now());
    store.put(&ds[0]).unwrap();
    ds[1].status = DatasetStatus::Error;
    store.put(&ds[1]).unwrap();
    assert_eq!(store.count_datasets(user, None).unwrap(), 3);
    assert_eq!(
        store
            .count_datasets(user, Some(DatasetStatus::Ready))
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_datasets(user, Some(DatasetStatus::Error))
            .unwrap(),
        1
    );
    assert_eq!(store.datasets(user, None, Page::ALL).unwrap().len(), 3);
}

#[test]
fn schema_3_is_upgraded_with_its_counts_recounted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let user = UserId::new();
    let jobs = [
        job(user, JobStatus::Completed),
        job(user, JobStatus::Completed),
        job(user, JobStatus::Failed),
    ];
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|w| jobs.iter().try_for_each(|j| w.put(j)))
            .unwrap();
        store
            .put(&dataset(user, "d", DatasetStatus::Ready))
            .unwrap();
    }
    // As schema 3 left it: the same records (jobs in their layout of then), no counts.
    {
        let db_ = redb::Database::create(&path).unwrap();
        let txn = db_.begin_write().unwrap();
        {
            let mut t = txn.open_table(JOBS).unwrap();
            for j in &jobs {
                let v1 = crate::store::stored::v3::v1_of(j);
                t.insert(j.key().as_slice(), encode(&v1).as_slice())
                    .unwrap();
            }
        }
        txn.delete_table(COUNTS).unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 3u64)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.count_jobs(user, None).unwrap(), 3);
    assert_eq!(
        store.count_jobs(user, Some(JobStatus::Completed)).unwrap(),
        2
    );
    assert_eq!(store.count_datasets(user, None).unwrap(), 1);
}

/// A store with one dataset at `path`, closed again.
fn store_with_a_record(path: &Path) {
    let store = Store::open(path).unwrap();
    store
        .put(&dataset(UserId::new(), "kept", DatasetStatus::Ready))
        .unwrap();
}

/// Opens a damaged `path`, which must fail (never panic) with an error naming it.
fn unreadable(path: &Path) -> (String, String) {
    match Store::open(path) {
        Err(StoreError::Unreadable {
            path: p,
            problem,
            advice,
        }) => {
            assert_eq!(p, path);
            let err = StoreError::Unreadable {
                path: p,
                problem: problem.clone(),
                advice,
            };
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            (problem, msg)
        }
        Err(other) => panic!("not an Unreadable error: {other:?}"),
        Ok(_) => panic!("a damaged store opened"),
    }
}

#[test]
fn a_store_with_the_wrong_magic_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_with_a_record(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..9].copy_from_slice(b"NOTREDB!!");
    std::fs::write(&path, bytes).unwrap();
    let (problem, msg) = unreadable(&path);
    assert!(problem.contains("magic"), "{problem}");
    assert!(msg.contains("brightrun backup restore"), "{msg}");
    assert!(msg.contains("brightrun backup list"), "{msg}");
}

#[test]
fn a_truncated_store_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_with_a_record(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(100).unwrap();
    drop(file);
    assert!(len > 100);
    let (_, msg) = unreadable(&path);
    assert!(msg.contains("backup restore"), "{msg}");
    // The damaged file is left as it was for the person to keep.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
}

#[test]
fn a_store_in_an_old_file_format_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    store_with_a_record(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // The version byte of both commit slots (redb's header layout).
    bytes[64] = 2;
    bytes[64 + 128] = 2;
    std::fs::write(&path, bytes).unwrap();
    let (problem, _) = unreadable(&path);
    assert!(problem.contains("file format"), "{problem}");
}

#[test]
fn a_directory_where_the_store_should_be_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    std::fs::create_dir(&path).unwrap();
    let (problem, msg) = unreadable(&path);
    assert_eq!(problem, "is a directory, not a database file");
    assert!(msg.contains("move it aside"), "{msg}");
}

#[test]
fn a_store_without_permission_says_to_fix_its_owner_or_mode() {
    // Built from the error redb gives, since a test run as root opens any file.
    let path = Path::new("/data/brightrun.redb");
    let e = redb::DatabaseError::Storage(redb::StorageError::Io(std::io::Error::from(
        std::io::ErrorKind::PermissionDenied,
    )));
    let msg = open_error(path, e).to_string();
    assert!(msg.contains("/data/brightrun.redb"), "{msg}");
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(msg.contains("mode 0600"), "{msg}");
}

#[test]
fn an_upgrade_keeps_a_backup_of_the_old_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let d = dataset(UserId::new(), "old", DatasetStatus::Ready);
    {
        let db_ = redb::Database::create(&path).unwrap();
        schema::write_v1(&db_, std::slice::from_ref(&d)).unwrap();
    }
    drop(Store::open(&path).unwrap());
    let backups = backup::list(&path).unwrap();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(backups[0].schema_version, 1);
    assert_eq!(backups[0].reason, "before-upgrade-from-v1");
    // The copy is the old store as it was: schema 1, the record inside.
    let old = redb::Database::create(&backups[0].path).unwrap();
    assert_eq!(schema::read_version(&old).unwrap(), 1);
    drop(old);
    // A store already up to date is not copied again.
    drop(Store::open(&path).unwrap());
    assert_eq!(backup::list(&path).unwrap().len(), 1);
}

/// Rewrites the raw value of `key` in `table` with `f`, as a damaged disk would.
pub(crate) fn damage(
    store: &Store,
    table: Bytes,
    key: &[u8],
    f: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let txn = store.db.begin_write().unwrap();
    let raw = {
        let mut t = txn.open_table(table).unwrap();
        let mut raw = t.get(key).unwrap().unwrap().value().to_vec();
        f(&mut raw);
        t.insert(key, raw.as_slice()).unwrap();
        raw
    };
    txn.commit().unwrap();
    raw
}

/// Flips one bit inside the name of a stored dataset (its value still decodes without the
/// checksum), for tests outside the store.
pub(crate) fn damage_dataset_name(store: &Store, d: &Dataset) {
    damage(store, DATASETS, &d.id.bytes(), |raw| {
        let at = find(raw, d.name.as_bytes());
        raw[at] ^= 0x01;
    });
}

/// Where `needle` first occurs in `raw`.
pub(crate) fn find(raw: &[u8], needle: &[u8]) -> usize {
    raw.windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are in the value")
}

fn is_corrupt(err: StoreError, table: &str, id: &str) -> String {
    match &err {
        StoreError::Corrupt {
            table: t, id: i, ..
        } => {
            assert_eq!((t.as_str(), i.as_str()), (table, id), "{err}");
        }
        other => panic!("not a corrupt record: {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(table) && msg.contains(id), "{msg}");
    assert!(msg.contains("brightrun doctor --repair"), "{msg}");
    msg
}

/// A dataset created `ms` milliseconds from now: lists order by creation time (to the
/// millisecond).
fn dataset_at(user: UserId, name: &str, status: DatasetStatus, ms: i64) -> Dataset {
    let mut d = dataset(user, name, status);
    d.created_at += chrono::Duration::milliseconds(ms);
    d
}

/// Three live datasets of one user, the middle one (`target`) about to be damaged; returns
/// it and the others as a list shows them (newest first).
fn three_datasets(store: &Store, user: UserId) -> (Dataset, Vec<Dataset>) {
    let a = dataset_at(user, "alpha", DatasetStatus::Ready, 0);
    let target = dataset_at(user, "target-name", DatasetStatus::Ready, 1);
    let c = dataset_at(user, "gamma", DatasetStatus::Validating, 2);
    for d in [&a, &target, &c] {
        store.put(d).unwrap();
    }
    (target, vec![c, a])
}

/// After the damaged dataset is quarantined: gone from its table and indexes, counted out,
/// its raw bytes kept.
fn assert_quarantined(store: &Store, user: UserId, target: &Dataset, raw: &[u8]) {
    let moved = store.quarantine_corrupt().unwrap();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        (moved[0].table.as_str(), moved[0].id.clone()),
        ("datasets", target.id.to_string())
    );
    assert_eq!(store.quarantined().unwrap(), moved);
    assert_eq!(
        store
            .quarantined_bytes("datasets", &target.id.bytes())
            .unwrap()
            .as_deref(),
        Some(raw)
    );
    assert_eq!(store.dataset(target.id).unwrap(), None);
    assert_eq!(store.count::<Dataset>().unwrap(), 2);
    assert_eq!(store.count_datasets(user, None).unwrap(), 2);
    assert_eq!(
        store
            .count_datasets(user, Some(DatasetStatus::Ready))
            .unwrap(),
        1
    );
    assert_eq!(store.count_by(DATASETS_BY_USER, &user.bytes()).unwrap(), 2);
    assert_eq!(
        store
            .count_by(
                DATASETS_BY_USER_STATUS,
                &keys::join(&[&user.bytes(), &[DatasetStatus::Ready as u8]])
            )
            .unwrap(),
        1
    );
    assert!(store.corrupt_records().unwrap().is_empty());
    assert!(store.quarantine_corrupt().unwrap().is_empty(), "moved once");
}

#[test]
fn a_flipped_byte_inside_a_string_is_named_left_out_of_lists_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let (target, others) = three_datasets(&store, user);
    let raw = damage(&store, DATASETS, &target.id.bytes(), |raw| {
        let at = find(raw, b"target-name");
        raw[at] ^= 0x01; // `t` becomes `u`: still a valid string
    });
    // Without its checksum the value would read as another name, silently.
    let body = &raw[..raw.len() - checksum::CRC_LEN];
    let (silent, _): (Dataset, usize) = bincode::serde::decode_from_slice(body, ENCODING).unwrap();
    assert_eq!(silent.name, "uarget-name");

    let err = store.dataset(target.id).unwrap_err();
    let msg = is_corrupt(err, "datasets", &target.id.to_string());
    assert!(msg.contains("checksum"), "{msg}");
    assert_eq!(store.datasets(user, None, Page::ALL).unwrap(), others);
    assert_eq!(
        store
            .datasets(user, Some(DatasetStatus::Ready), Page::ALL)
            .unwrap(),
        vec![others[1].clone()]
    );
    assert_eq!(
        store.datasets(user, None, Page::first(1)).unwrap(),
        vec![others[0].clone()]
    );
    assert_eq!(store.scan::<Dataset>(None, 100).unwrap().items.len(), 2);
    let found = store.corrupt_records().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].table.as_str(), found[0].id.clone()),
        ("datasets", target.id.to_string())
    );
    // Nothing was changed by reading.
    assert_eq!(store.count::<Dataset>().unwrap(), 3);
    assert_quarantined(&store, user, &target, &raw);
    assert_eq!(store.datasets(user, None, Page::ALL).unwrap(), others);
}

#[test]
fn a_damaged_length_byte_is_named_left_out_of_lists_and_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let (target, others) = three_datasets(&store, user);
    let raw = damage(&store, DATASETS, &target.id.bytes(), |raw| {
        // bincode's varint length of the name: the byte just before it.
        let at = find(raw, b"target-name") - 1;
        assert_eq!(raw[at] as usize, "target-name".len());
        raw[at] = 200;
    });
    is_corrupt(
        store.dataset(target.id).unwrap_err(),
        "datasets",
        &target.id.to_string(),
    );
    assert_eq!(store.datasets(user, None, Page::ALL).unwrap(), others);
    assert_eq!(store.record_owners().unwrap().get(&user), Some(&2));
    assert_quarantined(&store, user, &target, &raw);
}

#[test]
fn a_truncated_job_is_left_out_of_every_job_list_and_its_counts_fixed_by_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let (kept, lost) = (job(user, JobStatus::Queued), job(user, JobStatus::Queued));
    store.put(&kept).unwrap();
    store.put(&lost).unwrap();
    damage(&store, JOBS, &lost.id.bytes(), |raw| {
        raw.truncate(raw.len() / 2)
    });
    is_corrupt(
        store.job(lost.id).unwrap_err(),
        "training_jobs",
        &lost.id.to_string(),
    );
    let ids = |v: Vec<TrainingJob>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.jobs_in_status(JobStatus::Queued, 10).unwrap()),
        [kept.id]
    );
    assert_eq!(ids(store.jobs(user, None, Page::ALL).unwrap()), [kept.id]);
    assert_eq!(
        ids(store.jobs_for_dataset(lost.dataset_id).unwrap()),
        Vec::<JobId>::new()
    );
    // A change decided from a damaged record would be worse than none.
    let mut update = lost.clone();
    update.status = JobStatus::Running;
    assert!(matches!(
        store.put(&update).unwrap_err(),
        StoreError::Corrupt { .. }
    ));
    assert_eq!(
        store.count_jobs(user, None).unwrap(),
        2,
        "until quarantined"
    );
    assert_eq!(store.quarantine_corrupt().unwrap().len(), 1);
    assert_eq!(store.count_jobs(user, None).unwrap(), 1);
    assert_eq!(store.count_jobs(user, Some(JobStatus::Queued)).unwrap(), 1);
    assert_eq!(store.count_jobs_in_status(JobStatus::Queued).unwrap(), 1);
    assert_eq!(
        store
            .count_by(JOBS_BY_DATASET, &lost.dataset_id.bytes())
            .unwrap(),
        0
    );
}

#[test]
fn a_value_with_a_good_checksum_that_does_not_decode_is_quarantined_once_read() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let (target, others) = three_datasets(&store, user);
    damage(&store, DATASETS, &target.id.bytes(), |raw| {
        *raw = checksum::seal(vec![0xff; 5]);
    });
    assert!(
        store.corrupt_records().unwrap().is_empty(),
        "the checksum pass alone cannot tell"
    );
    let msg = is_corrupt(
        store.dataset(target.id).unwrap_err(),
        "datasets",
        &target.id.to_string(),
    );
    assert!(msg.contains("cannot decode"), "{msg}");
    assert_eq!(store.corrupt_records().unwrap().len(), 1, "remembered");
    assert_eq!(store.quarantine_corrupt().unwrap().len(), 1);
    assert_eq!(store.datasets(user, None, Page::ALL).unwrap(), others);
    assert_eq!(store.count_datasets(user, None).unwrap(), 2);
}

#[test]
fn a_damaged_metrics_point_is_skipped_and_named_by_job_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let job = JobId::new();
    let points: Vec<_> = (1..=3)
        .map(|step| MetricsPoint {
            job_id: job,
            timestamp: now(),
            epoch: 0.0,
            step,
            training_loss: Some(1.0),
            validation_loss: None,
            learning_rate: None,
            gradient_norm: None,
            throughput: None,
            gpu_utilization: None,
            preference: None,
        })
        .collect();
    store.write(|w| w.put_metrics(&points)).unwrap();
    damage(&store, METRICS, &metric_key(&points[1]), |raw| {
        raw[3] ^= 0x40
    });
    let steps = |v: Vec<MetricsPoint>| v.into_iter().map(|p| p.step).collect::<Vec<_>>();
    assert_eq!(steps(store.metrics(job, 0, 10).unwrap()), [1, 3]);
    assert_eq!(steps(store.scan_metrics(None, 10).unwrap().items), [1, 3]);
    let moved = store.quarantine_corrupt().unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].table, "metrics_points");
    assert_eq!(moved[0].id, format!("job {job} step 2"));
    assert_eq!(steps(store.metrics(job, 0, 10).unwrap()), [1, 3]);
}

#[test]
fn schema_4_records_get_their_checksums_and_undecodable_ones_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let user = UserId::new();
    let (a, b) = (
        dataset_at(user, "old-a", DatasetStatus::Ready, 0),
        dataset_at(user, "old-b", DatasetStatus::Ready, 1),
    );
    let j = job(user, JobStatus::Completed);
    let broken = dataset(user, "broken", DatasetStatus::Ready);
    {
        let db_ = redb::Database::create(&path).unwrap();
        schema::write_v4(
            &db_,
            &[a.clone(), b.clone(), broken.clone()],
            std::slice::from_ref(&j),
        )
        .unwrap();
        // One v4 record that no longer decodes: the upgrade must not fail on it.
        let txn = db_.begin_write().unwrap();
        txn.open_table(DATASETS)
            .unwrap()
            .insert(
                broken.id.bytes().as_slice(),
                [0xffu8, 0xff, 0xff].as_slice(),
            )
            .unwrap();
        txn.commit().unwrap();
        assert_eq!(schema::read_version(&db_).unwrap(), 4);
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.dataset(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.job(j.id).unwrap(), Some(j.clone()));
    assert_eq!(
        store.datasets(user, None, Page::ALL).unwrap(),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(store.count_datasets(user, None).unwrap(), 2);
    assert_eq!(store.count_jobs(user, None).unwrap(), 1);
    {
        let txn = store.db.begin_read().unwrap();
        let t = txn.open_table(DATASETS).unwrap();
        for d in [&a, &b] {
            let v = t.get(d.id.bytes().as_slice()).unwrap().unwrap();
            assert!(checksum::unseal(v.value()).is_ok(), "sealed");
        }
    }
    let q = store.quarantined().unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(
        (q[0].table.as_str(), q[0].id.clone()),
        ("datasets", broken.id.to_string())
    );
    assert_eq!(store.count_by(DATASETS_BY_USER, &user.bytes()).unwrap(), 2);
    assert!(store.corrupt_records().unwrap().is_empty());
    let backups = backup::list(&path).unwrap();
    assert_eq!(backups[0].reason, "before-upgrade-from-v4");
}

/// A layout change as a later version will make one: `DatasetV5` → a `DatasetV6` with one
/// more field. [`quarantine::restore`] rewrites every record of the table (checksum kept), and
/// one that does not decode as `DatasetV5` is quarantined instead of stopping the upgrade.
#[test]
fn a_layout_change_rewrites_every_record_through_its_upgrade_step() {
    use stored::Convert;
    use stored::v5::DatasetV5;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct DatasetV6 {
        v5: DatasetV5,
        method: String,
    }
    impl Convert<DatasetV6> for DatasetV5 {
        fn convert(self) -> DatasetV6 {
            DatasetV6 {
                v5: self,
                method: "sft".into(),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, _rx) = open(&dir);
    let user = UserId::new();
    let (target, others) = three_datasets(&store, user);
    // The target's value no longer decodes (a damaged length byte, checksum made to match).
    damage(&store, DATASETS, &target.id.bytes(), |raw| {
        raw.truncate(raw.len() - checksum::CRC_LEN - 3);
        *raw = checksum::seal(std::mem::take(raw));
    });
    let txn = store.db.begin_write().unwrap();
    let quarantined = quarantine::restore::<DatasetV5, DatasetV6>(&txn, "datasets").unwrap();
    txn.commit().unwrap();
    assert_eq!(quarantined, 1);
    assert_eq!(store.quarantined().unwrap()[0].id, target.id.to_string());
    let txn = store.db.begin_read().unwrap();
    let table = txn.open_table(DATASETS).unwrap();
    for d in &others {
        let raw = table.get(d.id.bytes().as_slice()).unwrap().unwrap();
        let body = checksum::unseal(raw.value()).unwrap();
        let (v2, _): (DatasetV6, usize) =
            bincode::serde::decode_from_slice(body, ENCODING).unwrap();
        assert_eq!(v2.method, "sft");
        assert_eq!(&Dataset::from_stored(v2.v5), d);
    }
}
