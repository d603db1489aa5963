//! Log-file tailing into CloudWatch Logs. Files are tracked by identity (device, inode), not by
//! name: a file renamed away by rotation keeps its position and is read to its end (while its new
//! name still matches the glob, or until drained), a new file at the old name starts at 0, and a
//! file that shrinks (truncation) restarts at 0. The committed position of every file — the byte
//! after the last event the server acknowledged — is kept in `<state_dir>/log-positions.json`
//! (written to a temporary file, fsynced and renamed) after every acknowledged PutLogEvents, so a
//! restart resumes exactly there: no line is lost and none is sent twice (except when the process
//! dies between the acknowledgement and the rename, when that one batch is sent again).
//! Multi-line events (`multi_line_start_pattern`) and `timestamp_format` apply per file; batches
//! honour PutLogEvents' limits (1,048,576 bytes counting 26 bytes per event, 10,000 events, 24 h).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::LogFileConfig;
use crate::glob;
use crate::sink::{Sink, SinkError};
use crate::timestamp::TimestampParser;

/// PutLogEvents limits.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 3600 * 1000;
pub const EVENT_OVERHEAD: usize = 26;
/// The longest message sent; longer events are truncated (the CloudWatch agent's 256 KiB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024 - EVENT_OVERHEAD;
/// The most bytes read from one file per poll.
const READ_CHUNK: u64 = 4 * 1024 * 1024;

const STATE_FILE: &str = "log-positions.json";

type FileId = (u64, u64);

/// One log event with the file range it came from.
#[derive(Debug, Clone)]
struct Event {
    timestamp: i64,
    message: String,
    end: u64,
}

struct Tracked {
    path: PathBuf,
    file: File,
    committed: u64,
    last_size: u64,
    /// Which collect_list entry.
    entry: usize,
}

/// One collect_list entry, compiled.
struct Entry {
    cfg: LogFileConfig,
    stream: String,
    ts: Option<TimestampParser>,
    /// Group and stream known to exist.
    ready: bool,
}

/// The tailer of every configured file.
pub struct Tailer {
    entries: Vec<Entry>,
    files: HashMap<FileId, Tracked>,
    state_path: PathBuf,
    /// Positions loaded at start, consumed as files are first seen.
    saved: HashMap<FileId, u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `{instance_id}`, `{hostname}`, `{ip_address}` in a stream-name template.
pub fn stream_name(template: &str, instance_id: &str) -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    template
        .replace("{instance_id}", instance_id)
        .replace("{hostname}", &host)
        .replace("{local_hostname}", &host)
        .replace("{ip_address}", "127.0.0.1")
}

fn truncate_utf8(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl Tailer {
    /// A tailer for `logs`, resuming from the positions saved in `state_dir`.
    pub fn new(
        logs: &[LogFileConfig],
        instance_id: &str,
        state_dir: &Path,
    ) -> std::io::Result<Tailer> {
        fs::create_dir_all(state_dir)?;
        let state_path = state_dir.join(STATE_FILE);
        let mut saved = HashMap::new();
        match fs::read(&state_path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(doc) => {
                    for f in doc["files"].as_array().into_iter().flatten() {
                        if let (Some(d), Some(i), Some(o)) =
                            (f["dev"].as_u64(), f["ino"].as_u64(), f["offset"].as_u64())
                        {
                            saved.insert((d, i), o);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %state_path.display(), error = %e, "log position file unreadable; starting over")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let entries = logs
            .iter()
            .map(|c| Entry {
                stream: stream_name(&c.log_stream_name, instance_id),
                ts: c
                    .timestamp_format
                    .as_deref()
                    .and_then(|f| TimestampParser::new(f).ok()),
                cfg: c.clone(),
                ready: false,
            })
            .collect();
        Ok(Tailer {
            entries,
            files: HashMap::new(),
            state_path,
            saved,
        })
    }

    fn save(&self) -> std::io::Result<()> {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|((d, i), t)| json!({"dev": d, "ino": i, "path": t.path.display().to_string(), "offset": t.committed}))
            .collect();
        let tmp = self.state_path.with_extension("json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&json!({ "files": files }))?)?;
        f.sync_all()?;
        fs::rename(&tmp, &self.state_path)?;
        if let Some(dir) = self.state_path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Find new files, then read and send what every file has gained. A retryable sink error
    /// stops the poll (positions stay at the last acknowledged event); the caller backs off.
    pub async fn poll(&mut self, sink: &dyn Sink) -> Result<usize, SinkError> {
        let mut seen: HashMap<FileId, PathBuf> = HashMap::new();
        for (idx, e) in self.entries.iter().enumerate() {
            for path in glob::expand(&e.cfg.file_path) {
                let Ok(meta) = fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let id = (meta.dev(), meta.ino());
                seen.insert(id, path.clone());
                if let Some(t) = self.files.get_mut(&id) {
                    t.path = path;
                    continue;
                }
                let Ok(file) = File::open(&path) else {
                    continue;
                };
                let mut committed = self.saved.remove(&id).unwrap_or(0);
                if committed > meta.len() {
                    committed = 0;
                }
                tracing::debug!(path = %path.display(), offset = committed, "tailing log file");
                self.files.insert(
                    id,
                    Tracked {
                        path,
                        file,
                        committed,
                        last_size: u64::MAX,
                        entry: idx,
                    },
                );
            }
        }
        let mut sent = 0;
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            let gone = !seen.contains_key(&id);
            sent += self.pump(id, sink, gone).await?;
            if gone {
                // Renamed out of the glob or deleted, and now drained.
                self.files.remove(&id);
                self.save()
                    .map_err(|e| SinkError::network(format!("saving log positions: {e}")))?;
            }
        }
        Ok(sent)
    }

    /// Read new events of one file and send them. `drain` also sends a final unterminated line.
    async fn pump(&mut self, id: FileId, sink: &dyn Sink, drain: bool) -> Result<usize, SinkError> {
        let Some(t) = self.files.get_mut(&id) else {
            return Ok(0);
        };
        let size = t.file.metadata().map(|m| m.len()).unwrap_or(0);
        if size < t.committed {
            tracing::info!(path = %t.path.display(), "log file truncated; reading from the start");
            t.committed = 0;
        }
        let stable = size == t.last_size;
        t.last_size = size;
        if size == t.committed {
            return Ok(0);
        }
        let mut buf = Vec::new();
        if t.file.seek(SeekFrom::Start(t.committed)).is_err() {
            return Ok(0);
        }
        let _ = (&t.file).take(READ_CHUNK).read_to_end(&mut buf);
        let entry = &self.entries[t.entry];
        let events = split_events(
            &buf,
            t.committed,
            entry,
            drain || stable,
            drain || buf.len() as u64 >= READ_CHUNK,
        );
        let entry_idx = t.entry;
        if events.is_empty() {
            return Ok(0);
        }
        let (path, committed_before) = (t.path.clone(), t.committed);
        let mut sent = 0;
        let mut start = 0;
        while start < events.len() {
            let n = batch_len(&events[start..]);
            let batch = &events[start..start + n];
            match self.send(entry_idx, batch, sink).await {
                Ok(()) => sent += n,
                Err(e) if e.retryable => return Err(e),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, events = n, "log events rejected; skipped")
                }
            }
            let end = batch.last().map(|e| e.end).unwrap_or(committed_before);
            if let Some(t) = self.files.get_mut(&id) {
                t.committed = end;
            }
            self.save()
                .map_err(|e| SinkError::network(format!("saving log positions: {e}")))?;
            start += n;
        }
        Ok(sent)
    }

    async fn send(
        &mut self,
        entry: usize,
        batch: &[Event],
        sink: &dyn Sink,
    ) -> Result<(), SinkError> {
        let mut sorted: Vec<&Event> = batch.iter().collect();
        sorted.sort_by_key(|e| e.timestamp);
        let e = &self.entries[entry];
        let doc = json!({
            "logGroupName": e.cfg.log_group_name,
            "logStreamName": e.stream,
            "logEvents": sorted.iter().map(|e| json!({"timestamp": e.timestamp, "message": e.message})).collect::<Vec<_>>(),
        });
        if !e.ready {
            self.ensure(entry, sink).await?;
        }
        match sink.put_log_events(doc.clone()).await {
            Err(err) if err.code == "ResourceNotFoundException" => {
                self.ensure(entry, sink).await?;
                sink.put_log_events(doc).await.map(|_| ())
            }
            r => r.map(|_| ()),
        }
    }

    /// Create the group (with retention) and stream if missing.
    async fn ensure(&mut self, entry: usize, sink: &dyn Sink) -> Result<(), SinkError> {
        let e = &self.entries[entry];
        let group = e.cfg.log_group_name.clone();
        let ok = |r: Result<Value, SinkError>| match r {
            Err(err) if err.code != "ResourceAlreadyExistsException" => Err(err),
            _ => Ok(()),
        };
        ok(sink.create_log_group(json!({"logGroupName": group})).await)?;
        if let Some(days) = e.cfg.retention_in_days {
            sink.put_retention_policy(json!({"logGroupName": group, "retentionInDays": days}))
                .await?;
        }
        ok(sink
            .create_log_stream(json!({"logGroupName": group, "logStreamName": e.stream}))
            .await)?;
        self.entries[entry].ready = true;
        Ok(())
    }
}

/// How many leading events fit in one PutLogEvents call.
fn batch_len(events: &[Event]) -> usize {
    let (mut bytes, mut lo, mut hi) = (0usize, i64::MAX, i64::MIN);
    for (i, e) in events.iter().enumerate() {
        let b = e.message.len() + EVENT_OVERHEAD;
        let (nlo, nhi) = (lo.min(e.timestamp), hi.max(e.timestamp));
        if i > 0
            && (i >= MAX_BATCH_EVENTS
                || bytes + b > MAX_BATCH_BYTES
                || nhi - nlo > MAX_BATCH_SPAN_MS)
        {
            return i;
        }
        bytes += b;
        (lo, hi) = (nlo, nhi);
    }
    events.len()
}

/// Split `buf` (file bytes from `base`) into events. The last event is held back unless `flush`
/// (the file stopped growing, or is being drained), since more continuation lines may follow;
/// an unterminated last line is only taken with `take_partial` (draining, or a full chunk).
fn split_events(
    buf: &[u8],
    base: u64,
    entry: &Entry,
    flush: bool,
    take_partial: bool,
) -> Vec<Event> {
    let mut lines: Vec<(String, u64)> = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if take_partial {
                lines.push((
                    String::from_utf8_lossy(&buf[pos..]).into_owned(),
                    base + buf.len() as u64,
                ));
            }
            break;
        };
        let mut line = &buf[pos..pos + nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        pos += nl + 1;
        lines.push((
            String::from_utf8_lossy(line).into_owned(),
            base + pos as u64,
        ));
    }
    let now = now_ms();
    let mut events: Vec<Event> = Vec::new();
    let mut open = false;
    for (text, end) in lines {
        let starts = entry
            .cfg
            .multi_line_start_pattern
            .as_ref()
            .is_none_or(|re| re.is_match(&text));
        if !starts && open {
            if let Some(last) = events.last_mut() {
                last.message.push('\n');
                last.message.push_str(&text);
                last.end = end;
                continue;
            }
        }
        if text.is_empty() && entry.cfg.multi_line_start_pattern.is_none() {
            // Blank lines are not events, but their bytes are consumed with the next one.
            if let Some(last) = events.last_mut() {
                last.end = end;
            }
            continue;
        }
        let timestamp = entry
            .ts
            .as_ref()
            .and_then(|p| p.parse(&text))
            .unwrap_or(now);
        events.push(Event {
            timestamp,
            message: text,
            end,
        });
        open = true;
    }
    if entry.cfg.multi_line_start_pattern.is_some() && !flush {
        events.pop();
    }
    for e in &mut events {
        if e.message.len() > MAX_EVENT_BYTES {
            e.message = truncate_utf8(std::mem::take(&mut e.message), MAX_EVENT_BYTES);
        }
        if e.message.is_empty() {
            e.message = " ".into();
        }
    }
    events
}

#[cfg(test)]
#[path = "tail_tests.rs"]
mod tests;
