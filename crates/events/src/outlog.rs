//! The events outbox log: an append-only log of outbox records in files of its own, written by the
//! outbox writer thread (group commit: one `write` of every record of a group, then one
//! `fdatasync`), with settlement kept in memory and persisted as tombstones that ride along.
//!
//! Layout under `<data_dir>/events/outbox/`: segment files `<20-digit number>.log`, each the
//! 8-byte magic [`MAGIC`] then frames `[len u32 LE][crc32 u32 LE][payload]` (`len` counts the
//! payload; the CRC covers the segment's number, 8 bytes LE, then the payload). A payload is a
//! kind byte and its body:
//! - [`RECORD`]: `[key length u8][key][record bytes]` — one outbox record (its JSON row);
//! - [`TOMBSTONES`]: `([key length u8][key])*` — records settled (delivered, dead-lettered or
//!   turned into retry rows).
//!
//! A tombstone always follows its record (same or a later segment). Segments are removed oldest
//! first, once every record in them and in all older segments is settled, so a tombstone is never
//! lost while its record is still on disk. The open segment is written to until it holds
//! [`SEGMENT_BYTES`]; after a restart writing starts in a new segment.
//!
//! Settled segments are recycled: up to [`SPARES`] of them are kept (renamed `<number>.spare`, so
//! they are not read at open) and renamed to the next segment's number instead of creating a
//! file, and written over from the start. Writing over
//! allocated blocks does not change the file's size, so `fdatasync` writes the data alone, not the
//! inode as well (on the VMs this runs on every block request costs a costly device notification).
//! The old frames left behind the new ones were checksummed with the old number and fail the new
//! one's check, so reading stops where the new frames end.
//!
//! Reading (at open) takes every intact frame of every segment in order; reading a segment stops
//! at its first torn or corrupt frame (the torn tail a crash leaves in the segment being written),
//! which is cut off. Records without a tombstone are handed back to be delivered again: an
//! acknowledged record is never lost (its frame was fsync'd before the answer), while a settled
//! record whose tombstone had not reached the disk is delivered again (at least once).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"OLEVOB01";
/// Frame kind: one record.
pub const RECORD: u8 = 1;
/// Frame kind: keys of settled records.
pub const TOMBSTONES: u8 = 2;
/// A segment is closed (a new one started) once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 16 << 20;
/// Most settled segments kept to be written over.
pub const SPARES: usize = 2;
/// Largest frame payload accepted when reading (a larger length means a torn header).
const MAX_FRAME: usize = 256 << 20;

/// The segment being appended to.
struct Open {
    number: u64,
    file: File,
    len: u64,
}

/// The outbox log of one data directory (used by one thread: the outbox writer).
pub struct OutLog {
    dir: PathBuf,
    /// Whether `dir` exists and is durable.
    dir_made: bool,
    open: Option<Open>,
    /// Segment → records in it not yet settled, oldest segment first (includes the open one).
    live: BTreeMap<u64, usize>,
    /// Unsettled record → its segment.
    at: HashMap<String, u64>,
    next: u64,
    /// Frames of the group being built (records), not yet written, and where each starts (their
    /// checksums are filled in once the segment is known).
    group: Vec<u8>,
    frames: Vec<usize>,
    group_keys: Vec<String>,
    /// Body of the tombstone frame being gathered, and how many keys it holds.
    tombs: Vec<u8>,
    tomb_count: usize,
    /// The last write failed: the next group goes to a new segment.
    broken: bool,
    /// See [`SEGMENT_BYTES`].
    segment_bytes: u64,
    /// Settled segments kept to be written over (numbers of files on disk), and how many at most.
    spares: Vec<u64>,
    max_spares: usize,
}

/// A record read back at open: its key and stored bytes.
pub type Replayed = (String, Vec<u8>);

fn segment_name(n: u64) -> String {
    format!("{n:020}.log")
}

/// A retired segment kept to be written over: not read at open.
fn spare_name(n: u64) -> String {
    format!("{n:020}.spare")
}

fn segment_number(name: &str) -> Option<u64> {
    number_of(name, ".log")
}

fn number_of(name: &str, suffix: &str) -> Option<u64> {
    let stem = name.strip_suffix(suffix)?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Append one frame with `kind` and `body` to `out`, its checksum not yet filled in (see
/// [`seal`]); answers where it starts.
fn push_frame(out: &mut Vec<u8>, kind: u8, body: impl FnOnce(&mut Vec<u8>)) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.push(kind);
    body(out);
    let len = (out.len() - at - 8) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    at
}

/// A frame's checksum in segment `number`.
fn checksum(number: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&number.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Fill in the checksums of the frames of `buf` starting at `starts`, for segment `number`.
fn seal(buf: &mut [u8], starts: &[usize], number: u64) {
    for &at in starts {
        let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        let crc = checksum(number, &buf[at + 8..at + 8 + len]);
        buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

/// `[length u8][key]`; keys are short (the outbox's are 23 digits).
fn push_key(out: &mut Vec<u8>, key: &str) {
    debug_assert!(key.len() <= 255);
    out.push(key.len() as u8);
    out.extend_from_slice(key.as_bytes());
}

fn read_key(body: &[u8]) -> Option<(&str, &[u8])> {
    let (&n, rest) = body.split_first()?;
    let n = n as usize;
    if rest.len() < n {
        return None;
    }
    let key = std::str::from_utf8(&rest[..n]).ok()?;
    Some((key, &rest[n..]))
}

/// What one segment holds: its records (key, byte range in `data`) and tombstoned keys, in order.
enum Entry<'a> {
    Record(&'a str, &'a [u8]),
    Tombstone(&'a str),
}

/// Parse `data` (the whole segment `number`); answers the entries and the length of the intact
/// prefix.
fn parse(data: &[u8], number: u64) -> (Vec<Entry<'_>>, usize) {
    let mut out = Vec::new();
    let mut off = MAGIC.len();
    while off + 8 <= data.len() {
        let len = u32::from_le_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap());
        if !(1..=MAX_FRAME).contains(&len) || off + 8 + len > data.len() {
            break;
        }
        let payload = &data[off + 8..off + 8 + len];
        if checksum(number, payload) != crc {
            break;
        }
        let (kind, mut body) = (payload[0], &payload[1..]);
        let before = out.len();
        match kind {
            RECORD => {
                if let Some((key, rest)) = read_key(body) {
                    out.push(Entry::Record(key, rest));
                }
            }
            TOMBSTONES => {
                while let Some((key, rest)) = read_key(body) {
                    out.push(Entry::Tombstone(key));
                    body = rest;
                }
                if !body.is_empty() {
                    out.truncate(before);
                }
            }
            _ => {}
        }
        if out.len() == before && kind == RECORD {
            break; // a checksummed record frame that does not parse: not ours to guess
        }
        off += 8 + len;
    }
    (out, off.min(data.len()))
}

impl OutLog {
    /// Open the log in `dir` (created when first written): read every segment, cut torn tails,
    /// remove segments whose records are all settled, and answer the unsettled records in the
    /// order they were written.
    pub fn open(dir: &Path) -> io::Result<(OutLog, Vec<Replayed>)> {
        OutLog::open_with(dir, SEGMENT_BYTES, SPARES)
    }

    /// [`OutLog::open`] with segments closed at `segment_bytes` and up to `spares` settled
    /// segments kept to be written over.
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        spares: usize,
    ) -> io::Result<(OutLog, Vec<Replayed>)> {
        let (mut log, replayed) = OutLog::read(dir, segment_bytes, true)?;
        log.max_spares = spares;
        log.spares.sort_unstable();
        while log.spares.len() > spares {
            let n = log.spares.remove(0);
            let _ = std::fs::remove_file(dir.join(spare_name(n)));
        }
        log.remove_settled();
        Ok((log, replayed))
    }

    /// The unsettled records of the log in `dir`, read without changing any file (for tests and
    /// inspection while a writer may be running).
    pub fn peek(dir: &Path) -> io::Result<Vec<Replayed>> {
        Ok(OutLog::read(dir, SEGMENT_BYTES, false)?.1)
    }

    /// Read the log; `repair`: cut torn tails and remove settled segments.
    fn read(dir: &Path, segment_bytes: u64, repair: bool) -> io::Result<(OutLog, Vec<Replayed>)> {
        let mut log = OutLog {
            dir: dir.to_path_buf(),
            dir_made: false,
            open: None,
            live: BTreeMap::new(),
            at: HashMap::new(),
            next: 1,
            group: Vec::new(),
            frames: Vec::new(),
            group_keys: Vec::new(),
            tombs: Vec::new(),
            tomb_count: 0,
            broken: false,
            segment_bytes,
            spares: Vec::new(),
            max_spares: 0,
        };
        let mut numbers = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                log.dir_made = true;
                for e in entries {
                    let e = e?;
                    let name = e.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if let Some(n) = segment_number(name) {
                        numbers.push(n);
                    } else if let Some(n) = number_of(name, ".spare") {
                        log.spares.push(n);
                        log.next = log.next.max(n + 1);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        numbers.sort_unstable();
        // key → (segment, position in `order`); `order` keeps write order.
        let mut order: Vec<Option<(String, u64, Vec<u8>)>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for &n in &numbers {
            let path = dir.join(segment_name(n));
            let data = std::fs::read(&path)?;
            log.next = log.next.max(n + 1);
            if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
                if data.len() >= MAGIC.len() && !MAGIC.starts_with(&data[..MAGIC.len()]) {
                    tracing::error!(file = %path.display(), "not an events outbox segment; left alone");
                    continue;
                }
                // created, but the crash came before its first frame was written
                log.live.insert(n, 0);
                continue;
            }
            let (entries, intact) = parse(&data, n);
            log.live.insert(n, 0);
            for e in entries {
                match e {
                    Entry::Record(key, bytes) => {
                        if let Some(&i) = index.get(key) {
                            // the same key twice: keep the later one
                            if let Some((_, seg, _)) = order[i].take() {
                                *log.live.entry(seg).or_default() -= 1;
                            }
                        }
                        index.insert(key.to_string(), order.len());
                        order.push(Some((key.to_string(), n, bytes.to_vec())));
                        *log.live.entry(n).or_default() += 1;
                    }
                    Entry::Tombstone(key) => {
                        if let Some(i) = index.remove(key) {
                            if let Some((_, seg, _)) = order[i].take() {
                                *log.live.entry(seg).or_default() -= 1;
                            }
                        }
                    }
                }
            }
            if intact < data.len() && repair {
                tracing::warn!(
                    file = %path.display(),
                    intact,
                    total = data.len(),
                    "events outbox: cutting a torn segment tail"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(intact as u64)?;
                f.sync_data()?;
            }
        }
        let mut replayed = Vec::with_capacity(index.len());
        for (key, seg, bytes) in order.into_iter().flatten() {
            log.at.insert(key.clone(), seg);
            replayed.push((key, bytes));
        }
        Ok((log, replayed))
    }

    /// Add a record to the group being built; `write` appends its bytes. Written by [`flush`].
    ///
    /// [`flush`]: OutLog::flush
    pub fn push_record(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let at = push_frame(&mut self.group, RECORD, |out| {
            push_key(out, key);
            write(out);
        });
        self.frames.push(at);
        self.group_keys.push(key.to_string());
    }

    /// Records in the group being built.
    pub fn group_len(&self) -> usize {
        self.group_keys.len()
    }

    /// Tombstones gathered and not yet written.
    pub fn tombstones(&self) -> usize {
        self.tomb_count
    }

    /// Unsettled records in the log.
    pub fn unsettled(&self) -> usize {
        self.at.len()
    }

    /// Segments holding records or tombstones (not counting spares).
    pub fn segments(&self) -> usize {
        self.live.len()
    }

    /// Settled segments kept to be written over.
    pub fn spares(&self) -> usize {
        self.spares.len()
    }

    /// Record `key` is settled: true when it is a record of this log (a tombstone will follow with
    /// the next write), false when the log does not hold it.
    pub fn settle(&mut self, key: &str) -> bool {
        let Some(seg) = self.at.remove(key) else {
            return false;
        };
        if let Some(n) = self.live.get_mut(&seg) {
            *n = n.saturating_sub(1);
        }
        push_key(&mut self.tombs, key);
        self.tomb_count += 1;
        self.remove_settled();
        true
    }

    /// Retire segments, oldest first, whose records are all settled (never the open one): keep
    /// up to `max_spares` to be written over, remove the others.
    fn remove_settled(&mut self) {
        let open = self.open.as_ref().map(|o| o.number);
        while let Some((&n, &count)) = self.live.first_key_value() {
            if count > 0 || Some(n) == open {
                break;
            }
            self.live.pop_first();
            let path = self.dir.join(segment_name(n));
            if self.spares.len() < self.max_spares
                && std::fs::rename(&path, self.dir.join(spare_name(n))).is_ok()
            {
                // (If the rename is lost in a crash, its records are read and delivered again.)
                self.spares.push(n);
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Left on disk: read again (and retired again) at the next open.
                    tracing::error!(file = %path.display(), error = %e, "events outbox: cannot remove a settled segment");
                }
            }
        }
    }

    /// Start a new segment (creating the directory the first time): a spare renamed, or a new
    /// file.
    fn roll(&mut self) -> io::Result<()> {
        if !self.dir_made {
            std::fs::create_dir_all(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
                if let Some(grand) = parent.parent() {
                    sync_dir(grand)?;
                }
            }
            self.dir_made = true;
        }
        let number = self.next;
        self.next += 1;
        let path = self.dir.join(segment_name(number));
        let mut file = None;
        while let Some(spare) = self.spares.pop() {
            let from = self.dir.join(spare_name(spare));
            match std::fs::rename(&from, &path)
                .and_then(|()| OpenOptions::new().write(true).open(&path))
            {
                Ok(f) => {
                    file = Some(f);
                    break;
                }
                Err(e) => {
                    tracing::warn!(file = %from.display(), error = %e, "events outbox: cannot reuse a settled segment");
                    let _ = std::fs::remove_file(&from);
                }
            }
        }
        let file = match file {
            Some(f) => f,
            None => OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?,
        };
        file.write_all_at(MAGIC, 0)?;
        file.sync_data()?;
        sync_dir(&self.dir)?;
        self.live.insert(number, 0);
        self.open = Some(Open {
            number,
            file,
            len: MAGIC.len() as u64,
        });
        Ok(())
    }

    /// Write the group being built and the gathered tombstones in one `write`, then `fdatasync`
    /// when `sync` (always when the group holds records). On success the group's records count
    /// as written; on failure they are dropped (their callers are told) and what was written of
    /// them is cut off.
    pub fn flush(&mut self, sync: bool) -> io::Result<()> {
        if self.group_keys.is_empty() && self.tomb_count == 0 {
            return Ok(());
        }
        if self.tomb_count > 0 {
            let tombs = std::mem::take(&mut self.tombs);
            let at = push_frame(&mut self.group, TOMBSTONES, |out| {
                out.extend_from_slice(&tombs)
            });
            self.frames.push(at);
            self.tombs = tombs;
            self.tombs.clear();
            self.tomb_count = 0;
        }
        let sync = sync || !self.group_keys.is_empty();
        let result = self.write_group(sync);
        self.group.clear();
        self.frames.clear();
        let keys = std::mem::take(&mut self.group_keys);
        match result {
            Ok(number) => {
                if !keys.is_empty() {
                    *self.live.entry(number).or_default() += keys.len();
                    for k in keys {
                        self.at.insert(k, number);
                    }
                }
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    fn write_group(&mut self, sync: bool) -> io::Result<u64> {
        let full = self
            .open
            .as_ref()
            .is_none_or(|o| o.len >= self.segment_bytes || self.broken);
        if full {
            self.open = None;
            self.remove_settled();
            self.roll()?;
            self.broken = false;
        }
        let open = self.open.as_mut().expect("a segment is open");
        seal(&mut self.group, &self.frames, open.number);
        let written = open
            .file
            .write_all_at(&self.group, open.len)
            .and_then(|()| if sync { open.file.sync_data() } else { Ok(()) });
        match written {
            Ok(()) => {
                open.len += self.group.len() as u64;
                Ok(open.number)
            }
            Err(e) => {
                // Cut back what may have been written; the next group starts a new segment.
                let _ = open.file.set_len(open.len);
                Err(e)
            }
        }
    }

    /// Forget everything: remove every segment (the control store was wiped).
    pub fn wipe(&mut self) -> io::Result<()> {
        self.open = None;
        self.group.clear();
        self.frames.clear();
        self.group_keys.clear();
        self.tombs.clear();
        self.tomb_count = 0;
        self.at.clear();
        let mut first_err = None;
        let spares = std::mem::take(&mut self.spares).into_iter().map(spare_name);
        let segments = std::mem::take(&mut self.live).into_keys().map(segment_name);
        for name in segments.chain(spares) {
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
#[path = "outlog_tests.rs"]
mod tests;
