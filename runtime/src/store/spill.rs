//! Large execution fields kept outside the record.
//!
//! A record must stay well below a NATS message (1 MiB by default), yet an input,
//! an output and the logs may each be about 1 MiB (and more once JSON escapes
//! them). A field longer than [`INLINE_MAX`] bytes is written as raw chunks of at
//! most [`CHUNK`] bytes in the `execution_data` bucket, and the record keeps a
//! [`Blob`] reference with its size. The chunks are written before the record that
//! names them, under keys no other write uses (`<id>.input.<n>`, and
//! `<id>.<field>.a<attempt>.<n>` for what an attempt produced), so a record never
//! names a missing chunk and a stale attempt's chunks can be removed without
//! touching the winner's.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::buckets;
use crate::model::Execution;
use crate::ports::KvWrite;
use crate::{Error, Result};

/// Longest field kept inside the record (bytes).
pub const INLINE_MAX: usize = 32 * 1024;

/// Largest chunk of a spilled field (bytes).
pub const CHUNK: usize = 256 * 1024;

/// A field written as chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    /// Key prefix of the chunks (`<prefix>.<n>`).
    pub key: String,
    /// Length of the field in bytes.
    pub bytes: u64,
    /// Number of chunks.
    pub chunks: u32,
}

/// Which fields of a record live in chunks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spill {
    /// The input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Blob>,
    /// Captured stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Blob>,
    /// Captured stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Blob>,
    /// `result` is the spilled output parsed as JSON.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub result_from_output: bool,
}

impl Spill {
    fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.logs.is_none()
    }
}

/// The form of an execution in the key-value store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredExecution {
    /// The record, with spilled fields emptied.
    #[serde(flatten)]
    pub exec: Execution,
    /// Where the spilled fields are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spill: Option<Spill>,
}

impl StoredExecution {
    /// Bytes of the input, output and logs, spilled or not.
    pub fn sizes(&self) -> (u64, u64, u64) {
        let spill = self.spill.clone().unwrap_or_default();
        let size = |b: &Option<Blob>, inline: Option<&String>| {
            b.as_ref()
                .map_or_else(|| inline.map_or(0, |s| s.len() as u64), |b| b.bytes)
        };
        (
            size(&spill.input, Some(&self.exec.input)),
            size(&spill.output, self.exec.output.as_ref()),
            size(&spill.logs, self.exec.logs.as_ref()),
        )
    }
}

/// Splits `e` into the record to store and the chunk writes it needs. The input's
/// chunks are written only when `with_input` (at creation: the input never changes).
pub fn split(e: &Execution, with_input: bool) -> (StoredExecution, Vec<KvWrite>) {
    let mut exec = e.clone();
    let mut spill = Spill::default();
    let mut writes = Vec::new();
    if e.input.len() > INLINE_MAX {
        let blob = blob(&e.id, "input", e.input.as_bytes());
        if with_input {
            writes.extend(chunk_writes(&blob, e.input.as_bytes()));
        }
        spill.input = Some(blob);
        exec.input = String::new();
    }
    let tag = format!("a{}", e.attempt);
    if let Some(out) = e.output.as_ref().filter(|o| o.len() > INLINE_MAX) {
        let blob = blob(&e.id, &format!("output.{tag}"), out.as_bytes());
        writes.extend(chunk_writes(&blob, out.as_bytes()));
        spill.output = Some(blob);
        spill.result_from_output = exec.result.take().is_some();
        exec.output = None;
    }
    if let Some(logs) = e.logs.as_ref().filter(|l| l.len() > INLINE_MAX) {
        let blob = blob(&e.id, &format!("logs.{tag}"), logs.as_bytes());
        writes.extend(chunk_writes(&blob, logs.as_bytes()));
        spill.logs = Some(blob);
        exec.logs = None;
    }
    let spill = (!spill.is_empty()).then_some(spill);
    (StoredExecution { exec, spill }, writes)
}

/// Keys of the chunks `writes` creates.
pub fn written_keys(writes: &[KvWrite]) -> Vec<String> {
    writes
        .iter()
        .filter_map(|w| match w {
            KvWrite::Put { bucket, key, .. } if bucket == buckets::EXECUTION_DATA => {
                Some(key.clone())
            }
            _ => None,
        })
        .collect()
}

/// Every chunk key a stored record names.
pub fn chunk_keys(spill: &Spill) -> Vec<String> {
    [&spill.input, &spill.output, &spill.logs]
        .into_iter()
        .flatten()
        .flat_map(|b| (0..b.chunks).map(|n| chunk_key(&b.key, n)))
        .collect()
}

fn blob(id: &str, field: &str, bytes: &[u8]) -> Blob {
    Blob {
        key: format!("{id}.{field}"),
        bytes: bytes.len() as u64,
        chunks: bytes.len().div_ceil(CHUNK) as u32,
    }
}

fn chunk_key(prefix: &str, n: u32) -> String {
    format!("{prefix}.{n:05}")
}

fn chunk_writes(blob: &Blob, bytes: &[u8]) -> Vec<KvWrite> {
    bytes
        .chunks(CHUNK)
        .enumerate()
        .map(|(n, c)| {
            KvWrite::put(
                buckets::EXECUTION_DATA,
                &chunk_key(&blob.key, n as u32),
                Bytes::copy_from_slice(c),
            )
        })
        .collect()
}

/// Reassembles one spilled field from its chunks, read with `get`.
pub async fn join<F, Fut>(blob: &Blob, get: F) -> Result<String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Bytes>>>,
{
    let mut bytes = Vec::with_capacity(blob.bytes as usize);
    for n in 0..blob.chunks {
        let key = chunk_key(&blob.key, n);
        let chunk = get(key.clone())
            .await?
            .ok_or_else(|| Error::Internal(format!("execution data {key} is missing")))?;
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| Error::Internal(format!("{} is not UTF-8", blob.key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExecutionStatus, Function};

    fn exec(input_len: usize) -> Execution {
        let f = Function::fixture("o");
        Execution::pending(&f, format!("\"{}\"", "x".repeat(input_len)))
    }

    #[test]
    fn small_records_stay_inline() {
        let (stored, writes) = split(&exec(10), true);
        assert!(stored.spill.is_none() && writes.is_empty());
    }

    #[test]
    fn large_fields_become_chunks_with_distinct_keys_per_attempt() {
        let mut e = exec(600 * 1024);
        let (stored, writes) = split(&e, true);
        let blob = stored.spill.as_ref().unwrap().input.clone().unwrap();
        assert_eq!(blob.chunks, 3);
        assert_eq!(writes.len(), 3);
        assert!(stored.exec.input.is_empty());
        let (_, again) = split(&e, false);
        assert!(again.is_empty(), "the input is written once");
        e.status = ExecutionStatus::Completed;
        e.attempt = 2;
        e.output = Some("y".repeat(INLINE_MAX + 1));
        e.result = Some(serde_json::json!("y"));
        let (stored, writes) = split(&e, false);
        let spill = stored.spill.unwrap();
        assert!(spill.result_from_output && stored.exec.result.is_none());
        assert_eq!(
            written_keys(&writes),
            vec![format!("{}.output.a2.00000", e.id)]
        );
    }
}
