//! The manifest: the single source of truth for which data files are live, which WAL segments
//! are already contained in them, and which series-index snapshot goes with them. It is replaced
//! atomically (write to `MANIFEST.tmp`, fsync, rename, fsync the directory), so every change to
//! the set of files — a checkpoint, a compaction, a wipe — commits in one step.
//!
//! Format: `"OLTSMAN1"` | version u32 | next_file_id u64 | wal_checkpoint u64 | series_gen u64 |
//! n u32 | n × [`FileMeta`] | crc32 of all preceding bytes.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::bits::Cursor;
use crate::datafile::FileMeta;
use crate::TsdbError;

const MAGIC: &[u8; 8] = b"OLTSMAN1";
const VERSION: u32 = 1;
pub(crate) const MANIFEST: &str = "MANIFEST";

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Manifest {
    pub next_file_id: u64,
    /// WAL segments with a sequence number at or below this are fully contained in data files.
    pub wal_checkpoint: u64,
    /// Generation of the series snapshot file (`series-<gen>.idx`; 0 = none).
    pub series_gen: u64,
    pub files: Vec<FileMeta>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48 + self.files.len() * crate::datafile::META_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&self.next_file_id.to_le_bytes());
        b.extend_from_slice(&self.wal_checkpoint.to_le_bytes());
        b.extend_from_slice(&self.series_gen.to_le_bytes());
        b.extend_from_slice(&(self.files.len() as u32).to_le_bytes());
        for f in &self.files {
            f.encode(&mut b);
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Manifest, TsdbError> {
        let bad = |w: &str| TsdbError::Corrupt(format!("manifest: {w}"));
        if b.len() < 44 {
            return Err(bad("too short"));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        let mut c4 = [0u8; 4];
        c4.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(c4) {
            return Err(bad("checksum mismatch"));
        }
        let mut c = Cursor::new(body);
        if c.bytes(8)? != MAGIC {
            return Err(bad("bad magic"));
        }
        if c.u32le()? != VERSION {
            return Err(bad("unknown version"));
        }
        let next_file_id = c.u64le()?;
        let wal_checkpoint = c.u64le()?;
        let series_gen = c.u64le()?;
        let n = c.u32le()? as usize;
        let mut files = Vec::with_capacity(n.min(body.len() / crate::datafile::META_LEN + 1));
        for _ in 0..n {
            files.push(FileMeta::decode(&mut c)?);
        }
        if !c.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Manifest {
            next_file_id,
            wal_checkpoint,
            series_gen,
            files,
        })
    }

    /// Reads the manifest of `dir`, `None` when there is none yet.
    pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>, TsdbError> {
        match fs::read(dir.join(MANIFEST)) {
            Ok(b) => Ok(Some(Manifest::decode(&b)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Atomically replaces the manifest of `dir`.
    pub(crate) fn store(&self, dir: &Path) -> Result<(), TsdbError> {
        write_atomic(dir, MANIFEST, &self.encode())
    }
}

/// Writes `name` in `dir` via a temporary file, fsync and rename, then fsyncs the directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TsdbError> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)?;
    Ok(())
}

/// Makes a directory's entries (creations, renames, deletions) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datafile::Tier;

    fn sample() -> Manifest {
        Manifest {
            next_file_id: 9,
            wal_checkpoint: 4,
            series_gen: 3,
            files: vec![FileMeta {
                id: 8,
                tier: Tier::R300,
                level: 2,
                window_start: -604_800_000,
                min_ts: -5,
                max_ts: 5,
                n_series: 3,
                n_hr: 1,
                n_points: 77,
                bytes: 4096,
                index_offset: 100,
                index_crc: 0xdead_beef,
            }],
        }
    }

    #[test]
    fn store_load_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let m = sample();
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let b = sample().encode();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(
                matches!(Manifest::decode(&c), Err(TsdbError::Corrupt(_))),
                "byte {i}"
            );
        }
        assert!(Manifest::decode(&b[..b.len() - 1]).is_err());
    }
}
