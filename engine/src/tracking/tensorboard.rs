//! TensorBoard event files: one folder per job (named by its id) under `[tracking.tensorboard]
//! dir`, holding `events.out.tfevents.<time>.brightrun` with a scalar per metric per step.
//!
//! The format is TensorFlow's TFRecord of `Event` protocol buffers: each record is its length
//! (u64, little-endian), the masked CRC-32C of that, the bytes, and their masked CRC-32C. The
//! few fields written (an event's wall time, step, file version and scalar summaries) are
//! encoded here by hand rather than by a protobuf code generator for three messages.
//!
//! Exactly once: beside each file, `brightrun.pos` records the last change seq written and the
//! file's length then. A replay skips changes at or before that seq, and a file longer than
//! its recorded length (the engine died between writing and recording) is cut back first.

use crate::domain::MetricsPoint;
use crate::events::{EngineEvent, Sequenced};
use crate::follow::Consumer;
use crate::ids::JobId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) struct Tensorboard {
    dir: PathBuf,
}

impl Tensorboard {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait::async_trait]
impl Consumer for Tensorboard {
    fn name(&self) -> &str {
        super::TENSORBOARD_CONSUMER
    }

    async fn apply(&mut self, changes: &[Arc<Sequenced>]) -> Result<(), String> {
        // Each job's points in this batch, with the seq of the change that carried them.
        let mut by_job: BTreeMap<JobId, Vec<(u64, MetricsPoint)>> = BTreeMap::new();
        for c in changes {
            if let EngineEvent::Metrics { job_id, points } = &c.event {
                let v = by_job.entry(*job_id).or_default();
                v.extend(points.iter().map(|p| (c.seq, p.clone())));
            }
        }
        if by_job.is_empty() {
            return Ok(());
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            for (job, points) in by_job {
                write_job(&dir.join(job.to_string()), &points)
                    .map_err(|e| format!("TensorBoard folder {}: {e}", dir.display()))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Position {
    seq: u64,
    len: u64,
    file: String,
}

/// Appends a job's new points to its event file and records the position.
fn write_job(dir: &Path, points: &[(u64, MetricsPoint)]) -> std::io::Result<()> {
    crate::private::create_dir_all(dir)?;
    let pos_file = dir.join("brightrun.pos");
    let mut pos: Position = std::fs::read(&pos_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let fresh: Vec<&(u64, MetricsPoint)> = points.iter().filter(|(s, _)| *s > pos.seq).collect();
    let Some(last) = fresh.last().map(|(s, _)| *s) else {
        return Ok(());
    };
    if pos.file.is_empty() {
        pos.file = format!(
            "events.out.tfevents.{}.brightrun",
            fresh[0].1.timestamp.timestamp()
        );
    }
    let path = dir.join(&pos.file);
    let mut f = crate::private::file_options()
        .truncate(false)
        .append(true)
        .open(&path)?;
    // Cut back whatever a crash left after the recorded position.
    if f.metadata()?.len() > pos.len {
        f.set_len(pos.len)?;
    }
    let mut buf = Vec::new();
    if pos.len == 0 {
        record(
            &mut buf,
            &event(fresh[0].1.timestamp_secs(), 0, Body::Version),
        );
    }
    for (_, p) in &fresh {
        let values = super::scalars(p);
        record(
            &mut buf,
            &event(p.timestamp_secs(), p.step, Body::Scalars(&values)),
        );
    }
    f.write_all(&buf)?;
    f.sync_data()?;
    pos.len = f.metadata()?.len();
    pos.seq = last;
    let tmp = dir.join("brightrun.pos.tmp");
    crate::private::create_file(&tmp)?
        .write_all(&serde_json::to_vec(&pos).expect("a position serialises"))?;
    std::fs::rename(&tmp, &pos_file)
}

trait Seconds {
    fn timestamp_secs(&self) -> f64;
}

impl Seconds for MetricsPoint {
    fn timestamp_secs(&self) -> f64 {
        self.timestamp.timestamp_micros() as f64 / 1e6
    }
}

enum Body<'a> {
    Version,
    Scalars(&'a [(&'static str, f64)]),
}

/// An `Event` message: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
/// summary = 5 (`Summary`: value = 1, each `Value` tag = 1 (string), simple_value = 2 (float)).
fn event(wall_time: f64, step: u64, body: Body<'_>) -> Vec<u8> {
    let mut e = vec![0x09];
    e.extend_from_slice(&wall_time.to_le_bytes());
    e.push(0x10);
    varint(&mut e, step);
    match body {
        Body::Version => bytes_field(&mut e, 0x1a, b"brain.Event:2"),
        Body::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values {
                let mut value = Vec::new();
                bytes_field(&mut value, 0x0a, tag.as_bytes());
                value.push(0x15);
                value.extend_from_slice(&(*v as f32).to_le_bytes());
                bytes_field(&mut summary, 0x0a, &value);
            }
            bytes_field(&mut e, 0x2a, &summary);
        }
    }
    e
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: u64, loss: f64) -> MetricsPoint {
        MetricsPoint {
            job_id: JobId(uuid::Uuid::from_u128(1)),
            timestamp: chrono::DateTime::from_timestamp(1_764_950_400 + step as i64, 0).unwrap(),
            epoch: 0.5,
            step,
            training_loss: Some(loss),
            validation_loss: None,
            learning_rate: Some(1e-4),
            gradient_norm: None,
            throughput: None,
            gpu_utilization: None,
            preference: None,
        }
    }

    /// A replay writes nothing twice, and a file longer than its position (a crash between
    /// the write and the record) is cut back before the next write.
    #[test]
    fn replays_and_crash_leftovers_write_each_point_once() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        write_job(&job, &[(1, point(1, 2.0)), (2, point(2, 1.5))]).unwrap();
        let file = std::fs::read_dir(&job)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("tfevents"))
            .unwrap();
        let once = std::fs::read(&file).unwrap();
        write_job(&job, &[(2, point(2, 1.5))]).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), once, "a replay adds nothing");
        // A crash left half a record behind.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"\x10\x00\x00")
            .unwrap();
        write_job(&job, &[(3, point(3, 1.0))]).unwrap();
        let after = std::fs::read(&file).unwrap();
        assert_eq!(&after[..once.len()], once.as_slice());
        // Exactly one more record: 8 + 4 + data + 4 bytes.
        let len = u64::from_le_bytes(after[once.len()..once.len() + 8].try_into().unwrap());
        assert_eq!(after.len(), once.len() + 16 + len as usize);
    }

    /// TensorFlow's record framing: the masked CRC-32C of a known input.
    #[test]
    fn records_carry_tensorflows_masked_crc32c() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720's check value).
        let crc = crc32c::crc32c(b"123456789");
        assert_eq!(crc, 0xE306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            crc.rotate_right(15).wrapping_add(0xa282_ead8)
        );
        let mut out = Vec::new();
        record(&mut out, b"abc");
        assert_eq!(out.len(), 8 + 4 + 3 + 4);
        assert_eq!(&out[..8], &3u64.to_le_bytes());
    }
}
