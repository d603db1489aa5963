//! The ingest phase of the benchmark: every line of the generated text becomes one log event, in
//! PutLogEvents batches of ~`--batch-bytes` as AWS counts them (message + 26 bytes per event,
//! ≤ 10,000 events), one stream and one keep-alive connection per `--connections`.
//!
//! [`prepare`] builds every request body (JSON 1.1) and its SHA-256 before the clock starts, so the
//! measured rate is the server's and not the bench's JSON writer sharing the two cores; [`send`]
//! then signs each request (SigV4 with the precomputed `x-amz-content-sha256`, fresh
//! `X-Amz-Date`) and sends it, and the rate is raw message bytes over the time until the last batch
//! was acknowledged (durable). The server still receives, hashes and verifies every real signed
//! request. Bodies are held in memory: about 1.3× the text size.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use opsloop_bench::awsclient::Creds;
use sha2::{Digest, Sha256};

use crate::client::{LogsClient, PutBody};
use crate::gen;

/// One request, ready to sign and send.
pub struct Request {
    pub body: Bytes,
    /// Lower-case hex SHA-256 of `body`.
    pub sha256: String,
    pub events: u64,
}

/// The requests of each connection, in order.
pub struct Prepared {
    pub per_connection: Vec<Vec<Request>>,
    pub took: Duration,
}

/// What [`send`] did.
pub struct Sent {
    pub events: u64,
    pub body_bytes: u64,
    pub elapsed: Duration,
}

fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn finish(body: PutBody) -> Request {
    let events = body.len() as u64;
    let body = body.finish();
    let sha256 = hex(&Sha256::digest(&body));
    Request {
        body: Bytes::from(body),
        sha256,
        events,
    }
}

/// Build the batches of `text` (one event per line, timestamps from [`gen::ts_of`]) for
/// `connections` streams `i-0000`…, dealt out round-robin.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    text: &Path,
    group: &str,
    lines: u64,
    ts0: i64,
    span_ms: i64,
    connections: usize,
    batch_bytes: usize,
) -> Result<Prepared> {
    let t = Instant::now();
    let k = connections.max(1);
    let batch_bytes = batch_bytes.min(1_048_576);
    let mut r = std::io::BufReader::with_capacity(8 << 20, std::fs::File::open(text)?);
    let mut line = Vec::with_capacity(1024);
    let mut out: Vec<Vec<Request>> = (0..k).map(|_| Vec::new()).collect();
    let new_body = |b: usize| {
        PutBody::new(
            group,
            &format!("i-{:04}", b % k),
            batch_bytes + batch_bytes / 4,
        )
    };
    let (mut i, mut batch, mut size) = (0u64, 0usize, 0usize);
    let mut body = new_body(0);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if body.len() == 10_000 || size + line.len() + 26 > batch_bytes {
            let full = std::mem::replace(&mut body, new_body(batch + 1));
            out[batch % k].push(finish(full));
            batch += 1;
            size = 0;
        }
        body.event(gen::ts_of(i, lines, ts0, span_ms), &line);
        size += line.len() + 26;
        i += 1;
    }
    if !body.is_empty() {
        out[batch % k].push(finish(body));
    }
    Ok(Prepared {
        per_connection: out,
        took: t.elapsed(),
    })
}

/// Send every prepared request, one connection per stream, all at once; fails on any answer but
/// 200 or on rejected events.
pub async fn send(prepared: Prepared, addr: SocketAddr, creds: &Creds) -> Result<Sent> {
    // connect first: the clock measures requests, not handshakes
    let mut clients = Vec::new();
    for _ in &prepared.per_connection {
        clients.push(LogsClient::connect(addr, creds.clone()).await?);
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (i, (mut c, requests)) in clients.into_iter().zip(prepared.per_connection).enumerate() {
        tasks.push(tokio::spawn(async move {
            let (mut events, mut bytes) = (0u64, 0u64);
            for req in requests {
                bytes += req.body.len() as u64;
                let (status, answer) = c.send_hashed("PutLogEvents", req.body, &req.sha256).await?;
                if status != 200 {
                    bail!(
                        "PutLogEvents on stream {i} answered {status}: {}",
                        String::from_utf8_lossy(&answer)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    );
                }
                if contains(&answer, b"rejectedLogEventsInfo") {
                    bail!("events rejected: {}", String::from_utf8_lossy(&answer));
                }
                events += req.events;
            }
            Ok::<(u64, u64), anyhow::Error>((events, bytes))
        }));
    }
    let (mut events, mut body_bytes) = (0, 0);
    for task in tasks {
        let (e, b) = task.await??;
        events += e;
        body_bytes += b;
    }
    Ok(Sent {
        events,
        body_bytes,
        elapsed: t.elapsed(),
    })
}

/// CPU seconds (user + system) of this process's exited and reaped children (`/proc/self/stat`
/// fields 16 and 17, in clock ticks of `tck` per second): read before and after reaping the
/// server, the difference is the server's whole-life CPU time.
pub fn reaped_children_cpu(tck: u64) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // the slice starts at field 3: fields 16/17 are at indexes 13/14
    let ticks: u64 = f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?;
    Some(ticks as f64 / tck.max(1) as f64)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_limits_and_hash_their_bodies() {
        let dir = std::env::temp_dir().join(format!("obl-ingest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        let line = "x".repeat(974); // 1000 bytes as AWS counts
        let text: String = (0..2500).map(|_| format!("{line}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let p = prepare(&path, "g", 2500, 1_000, 10_000, 2, 1_000_000).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let all: Vec<&Request> = p.per_connection.iter().flatten().collect();
        assert_eq!(all.iter().map(|r| r.events).sum::<u64>(), 2500);
        assert_eq!(all.len(), 3, "1000 events per ~1 MB batch");
        assert_eq!(p.per_connection[0].len(), 2);
        for r in all {
            assert_eq!(r.sha256, hex(&Sha256::digest(&r.body)));
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["logEvents"].as_array().unwrap().len() as u64, r.events);
        }
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
    }
}
