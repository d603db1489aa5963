//! The write-ahead log: `[len u32][crc u32][payload]` records, payload = log group id (u64) followed
//! by the batch's [`Columns`] encoding (sequence numbers already assigned). Appended by the single
//! writer thread ([`Wal::append_columns`]: one `writev` per group of appends, each batch's text
//! written from its own buffer, not copied) and made durable with one fdatasync per group of appends
//! ([`Wal::sync_handle`], used by the writer's sync thread while the next group is written); a
//! failed append is cut off again so later records never follow garbage. Reading stops at the
//! first torn or corrupt record and the file is truncated there.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use super::columns::Columns;
use super::StorageError;

/// Most bytes one record may hold (larger lengths mean a torn header).
const MAX_RECORD: usize = 256 << 20;

pub struct Wal {
    file: Arc<File>,
    len: u64,
}

impl Wal {
    /// Open the WAL at `path`, hand every intact record to `f` and truncate a torn tail.
    pub fn open(path: &Path, f: &mut dyn FnMut(u64, &Columns)) -> Result<Wal, StorageError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let mut off = 0usize;
        let mut cols = Columns::default();
        while off + 8 <= data.len() {
            let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            let crc =
                u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
            if !(8..=MAX_RECORD).contains(&len) || off + 8 + len > data.len() {
                break;
            }
            let payload = &data[off + 8..off + 8 + len];
            if crc32fast::hash(payload) != crc {
                break;
            }
            let mut gid = [0u8; 8];
            gid.copy_from_slice(&payload[..8]);
            if cols.decode_into(&payload[8..]).is_err() {
                break;
            }
            f(u64::from_le_bytes(gid), &cols);
            off += 8 + len;
        }
        if off < data.len() {
            tracing::warn!(valid = off, total = data.len(), "truncating torn wal tail");
            file.set_len(off as u64)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::Start(off as u64))?;
        Ok(Wal {
            file: Arc::new(file),
            len: off as u64,
        })
    }

    /// Append one record to `buf` (not yet written).
    pub fn encode(buf: &mut Vec<u8>, gid: u64, cols: &Columns) {
        let at = buf.len();
        buf.extend_from_slice(&[0u8; 8]);
        buf.extend_from_slice(&gid.to_le_bytes());
        cols.encode(buf);
        let len = (buf.len() - at - 8) as u32;
        let crc = crc32fast::hash(&buf[at + 8..]);
        buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Append one record per `(group id, batch)` without waiting for the disk, in the layout of
    /// [`Wal::encode`] but without copying the batches' text: the small parts (header, group id,
    /// the fixed-width columns) go to one buffer and each text is written from where it lies,
    /// all with `writev`. Failure handling as [`Wal::append`].
    pub fn append_columns<'c>(
        &mut self,
        records: impl Iterator<Item = (u64, &'c mut Columns)>,
    ) -> Result<(), StorageError> {
        let mut meta = Vec::new();
        let mut parts: Vec<(std::ops::Range<usize>, &'c [u8])> = Vec::new();
        for (gid, cols) in records {
            let at = meta.len();
            meta.extend_from_slice(&[0u8; 8]);
            meta.extend_from_slice(&gid.to_le_bytes());
            // the encoding without the text is the encoding's head: the text comes last
            let text = std::mem::take(&mut cols.text);
            cols.encode(&mut meta);
            cols.text = text;
            let text: &'c [u8] = &cols.text;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&meta[at + 8..]);
            crc.update(text);
            let len = u32::try_from(meta.len() - at - 8 + text.len())
                .ok()
                .filter(|l| *l as usize <= MAX_RECORD)
                .ok_or(StorageError::Corrupt("wal record too large"))?;
            meta[at..at + 4].copy_from_slice(&len.to_le_bytes());
            meta[at + 4..at + 8].copy_from_slice(&crc.finalize().to_le_bytes());
            parts.push((at..meta.len(), text));
        }
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(2 * parts.len());
        for (head, text) in &parts {
            slices.push(IoSlice::new(&meta[head.clone()]));
            if !text.is_empty() {
                slices.push(IoSlice::new(text));
            }
        }
        let total: usize = slices.iter().map(|s| s.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let mut rest = &mut slices[..];
        let written = (|| {
            while !rest.is_empty() {
                match (&*self.file).write_vectored(rest) {
                    Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    Ok(n) => IoSlice::advance_slices(&mut rest, n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        if let Err(e) = written {
            self.cut_back();
            return Err(e.into());
        }
        self.len += total as u64;
        Ok(())
    }

    /// Cut the file back to the end of the last complete append.
    fn cut_back(&self) {
        let cut = self
            .file
            .set_len(self.len)
            .and_then(|()| (&*self.file).seek(SeekFrom::Start(self.len)).map(drop));
        if let Err(c) = cut {
            tracing::error!(error = %c, "could not cut a failed wal append back");
        }
    }

    /// Write encoded records and make them durable.
    pub fn commit(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        self.append(buf)?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Write encoded records without waiting for the disk (durable after a sync through
    /// [`Wal::sync_handle`]). On failure the file is cut back to its previous end, so a partly
    /// written record cannot hide the records appended after it from recovery.
    pub fn append(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.file).write_all(buf) {
            self.cut_back();
            return Err(e.into());
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// The file, for fdatasync from another thread (a sync covers every append before it).
    pub fn sync_handle(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log holds no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drop every record (after a checkpoint made them redundant).
    pub fn reset(&mut self) -> Result<(), StorageError> {
        self.file.set_len(0)?;
        (&*self.file).seek(SeekFrom::Start(0))?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_appends_write_what_encode_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut wal = Wal::open(&path, &mut |_, _| {}).unwrap();
        let mut a = Columns::default();
        a.push(1, 2, 3, 4, b"first");
        a.push(5, 6, 7, 8, b"second message");
        let mut b = Columns::default();
        b.push(9, 9, 9, 9, &[b'x'; 5000]);
        let mut want = Vec::new();
        Wal::encode(&mut want, 7, &a);
        Wal::encode(&mut want, 8, &b);
        Wal::encode(&mut want, 9, &Columns::default());
        let mut empty = Columns::default();
        let recs = [(7, &mut a), (8, &mut b), (9, &mut empty)];
        wal.append_columns(recs.into_iter()).unwrap();
        assert_eq!(a.message(1), b"second message", "the text is put back");
        assert_eq!(wal.len(), want.len() as u64);
        wal.append_columns(std::iter::empty()).unwrap();
        drop(wal);
        assert_eq!(std::fs::read(&path).unwrap(), want);
        let mut seen = Vec::new();
        Wal::open(&path, &mut |g, c| seen.push((g, c.clone()))).unwrap();
        assert_eq!(seen, vec![(7, a), (8, b), (9, Columns::default())]);
    }

    #[test]
    fn replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.log");
        let mut seen = Vec::new();
        let mut wal = Wal::open(&path, &mut |g, c| seen.push((g, c.clone()))).unwrap();
        assert!(seen.is_empty());
        let mut c = Columns::default();
        c.push(1, 2, 3, 4, b"first");
        let mut buf = Vec::new();
        Wal::encode(&mut buf, 7, &c);
        Wal::encode(&mut buf, 8, &c);
        wal.commit(&buf).unwrap();
        drop(wal);
        // a torn third record
        let mut data = std::fs::read(&path).unwrap();
        let good = data.len();
        data.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, &data).unwrap();
        let wal = Wal::open(&path, &mut |g, c| seen.push((g, c.clone()))).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, 7);
        assert_eq!(seen[1].1.message(0), b"first");
        assert_eq!(wal.len(), good as u64);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
    }
}
