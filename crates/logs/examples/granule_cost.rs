//! Micro-benchmark of the format-3 text granules ([`opsloop_logs::storage::granules`]): the CPU
//! per byte of the bloom filters, of a block's whole text section (cut, compress, filters) and of
//! decoding it (all granules, and a literal search that skips by the filters), over 1 MiB blocks
//! of a text file's lines (one event a line), e.g. the logs benchmark's text (`--keep`).
//!
//! `cargo run --release -p opsloop-logs --example granule_cost -- FILE [MB] [NEEDLE]`; run it under
//! `perf stat -e task-clock` or callgrind for CPU measures.

use std::hint::black_box;

use opsloop_logs::storage::granules::{self, Granules, Probe, FOLD};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: granule_cost FILE [MB] [NEEDLE]");
    let mb: usize = args.next().map_or(64, |s| s.parse().expect("MB"));
    let needle = args.next().unwrap_or_else(|| "ERROR".to_owned());
    let mut data = std::fs::read(&path).expect("read the text file");
    data.truncate(mb << 20);
    // 1 MiB blocks of whole lines (the segment writer's block size)
    let mut blocks: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
    let (mut text, mut ends) = (Vec::new(), Vec::new());
    for line in data.split(|b| *b == b'\n') {
        text.extend_from_slice(line);
        ends.push(text.len() as u32);
        if text.len() >= 1 << 20 || ends.len() >= 16_384 {
            blocks.push((std::mem::take(&mut text), std::mem::take(&mut ends)));
        }
    }
    if !ends.is_empty() {
        blocks.push((text, ends));
    }
    let bytes: usize = blocks.iter().map(|b| b.0.len()).sum();
    let per = |t: Cpu| t.elapsed() / bytes as f64;

    let t = Cpu::now();
    for (text, _) in &blocks {
        for g in text.chunks(granules::GRANULE_BYTES) {
            black_box(bloom_lib(g));
        }
    }
    println!("bloom     {:.3} ns/byte", per(t));

    for (name, f) in [("foldsum", foldsum as fn(&[u8]) -> [u64; 8])] {
        let t = Cpu::now();
        for (text, _) in &blocks {
            for g in text.chunks(granules::GRANULE_BYTES) {
                black_box(f(g));
            }
        }
        println!("{name}   {:.3} ns/byte", per(t));
    }

    let t = Cpu::now();
    let mut sections = Vec::new();
    for (text, ends) in &blocks {
        let mut out = Vec::new();
        granules::encode(text, ends, &mut out).expect("encode");
        sections.push(out);
    }
    let packed: usize = sections.iter().map(Vec::len).sum();
    println!(
        "encode    {:.3} ns/byte (ratio {:.3}x)",
        per(t),
        bytes as f64 / packed as f64
    );

    let mut g = Granules::default();
    let mut out = Vec::new();
    let t = Cpu::now();
    for (sec, (_, ends)) in sections.iter().zip(&blocks) {
        g.parse(sec, 0, ends.len()).expect("parse");
        out.clear();
        g.decode_all(sec, &mut out).expect("decode");
        black_box(&out);
    }
    println!("decode    {:.3} ns/byte", per(t));

    let (f, p) = (
        memchr::memmem::Finder::new(&needle),
        Probe::new(needle.as_bytes()),
    );
    let mut hits = 0u64;
    let t = Cpu::now();
    for (sec, (_, ends)) in sections.iter().zip(&blocks) {
        g.parse(sec, 0, ends.len()).expect("parse");
        g.for_each_hit(sec, ends, &f, &p, |_| hits += 1)
            .expect("search");
    }
    let (probed, decoded) = g.take_counts();
    println!(
        "search    {:.3} ns/byte ({hits} hits of {needle:?}; {decoded} of {probed} granules decoded)",
        per(t)
    );
}

/// This thread's CPU time (`/proc/thread-self/schedstat`, nanoseconds on a CPU): unlike the wall
/// clock, not stretched by the other programs of a loaded machine.
struct Cpu(f64);

impl Cpu {
    fn read() -> f64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("schedstat")
    }
    fn now() -> Cpu {
        Cpu(Cpu::read())
    }
    /// Nanoseconds since `now`.
    fn elapsed(&self) -> f64 {
        Cpu::read() - self.0
    }
}

/// Calibration: one table look-up and one add per byte, the floor of any per-byte gram loop on
/// this machine (a loaded shared machine runs it at ~0.6-1 ns/byte).
#[inline(never)]
fn foldsum(text: &[u8]) -> [u64; 8] {
    let mut m = [0u64; 8];
    for (i, &b) in text.iter().enumerate() {
        m[i & 7] += u64::from(FOLD[b as usize]);
    }
    m
}

#[inline(never)]
fn bloom_lib(text: &[u8]) -> [u64; 8] {
    granules::bloom(text)
}
