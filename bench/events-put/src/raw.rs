//! The sending side of the benchmark, kept as cheap as possible because it shares the machine with
//! the server: requests are pre-built, pre-signed raw HTTP/1.1 bytes (real SigV4, re-signed every
//! minute, well inside SigV4's 15-minute window), written straight to keep-alive TCP connections,
//! optionally pipelined; answers are framed by `Content-Length` and really checked (status 200, and
//! for PutEvents `"FailedEntryCount":N` read as a number).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use opsloop_bench::procs::{BENCH_AKID, BENCH_SECRET};

/// How long a signed request is reused before it is signed again.
pub const RESIGN_EVERY: Duration = Duration::from_secs(60);

/// The raw bytes of one SigV4-signed awsJson 1.1 request (`target`: `X-Amz-Target`).
pub fn signed_bytes(host: &str, target: &str, region: &str, body: &[u8]) -> Result<Vec<u8>> {
    let mut req = http::Request::post("/")
        .header(http::header::HOST, host)
        .header("x-amz-target", target)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(Bytes::copy_from_slice(body))?;
    let service = if target.starts_with("AWSEvents.") {
        "events"
    } else {
        bail!("unknown target {target}")
    };
    opsloop_wire::sigv4::sign(
        &mut req,
        BENCH_AKID,
        BENCH_SECRET,
        region,
        service,
        SystemTime::now(),
    );
    let mut out = Vec::with_capacity(body.len() + 512);
    out.extend_from_slice(b"POST / HTTP/1.1\r\n");
    for (k, v) in req.headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// What an answer must say to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A PutEvents answer: 200 and its `FailedEntryCount`.
    PutEvents,
    /// Any 200 answer (the floor measurement).
    Ok200,
}

/// One parsed answer at the front of `buf`: (bytes it takes, status, body range).
fn frame(buf: &[u8]) -> Result<Option<(usize, u16, std::ops::Range<usize>)>> {
    let Some(head_end) = memfind(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            bail!("answer head longer than 64 KiB");
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    // "HTTP/1.1 200 OK"
    let status: u16 = std::str::from_utf8(status_line.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {:?}", String::from_utf8_lossy(status_line)))?;
    let mut len = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            len = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok());
        }
    }
    let Some(len) = len else {
        bail!("answer without Content-Length (status {status})")
    };
    let start = head_end + 4;
    if buf.len() < start + len {
        return Ok(None);
    }
    Ok(Some((start + len, status, start..start + len)))
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Failed entries a PutEvents answer reports (`"FailedEntryCount":N`).
pub fn failed_entries(body: &[u8]) -> Result<u64> {
    const KEY: &[u8] = b"\"FailedEntryCount\":";
    let at = memfind(body, KEY)
        .with_context(|| format!("no FailedEntryCount in {}", String::from_utf8_lossy(body)))?;
    let digits: &[u8] = &body[at + KEY.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|s| s.parse().ok())
        .context("FailedEntryCount is not a number")
}

/// Counters of one connection.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    pub requests: u64,
    pub failed_entries: u64,
    pub latencies_ms: Vec<f64>,
}

/// Requests one connection cycles through, re-signed when older than [`RESIGN_EVERY`].
pub struct Requests {
    host: String,
    target: &'static str,
    region: &'static str,
    bodies: Vec<Vec<u8>>,
    signed: Vec<(Instant, Vec<u8>)>,
    next: usize,
}

impl Requests {
    pub fn new(
        host: &str,
        target: &'static str,
        region: &'static str,
        bodies: Vec<Vec<u8>>,
    ) -> Result<Requests> {
        let signed = bodies
            .iter()
            .map(|b| Ok((Instant::now(), signed_bytes(host, target, region, b)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Requests {
            host: host.into(),
            target,
            region,
            bodies,
            signed,
            next: 0,
        })
    }

    /// Append the next request's bytes to `out`.
    fn push_next(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let i = self.next % self.signed.len();
        self.next += 1;
        if self.signed[i].0.elapsed() >= RESIGN_EVERY {
            self.signed[i] = (
                Instant::now(),
                signed_bytes(&self.host, self.target, self.region, &self.bodies[i])?,
            );
        }
        out.extend_from_slice(&self.signed[i].1);
        Ok(())
    }
}

/// Drive one connection until `stop`: keep `depth` requests outstanding (HTTP/1.1 pipelining when
/// `depth > 1`), count answers while `measuring`.
pub async fn drive(
    addr: SocketAddr,
    mut reqs: Requests,
    depth: usize,
    check: Check,
    entries_per_request: u64,
    shared: &crate::Shared,
) -> Result<Tally> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let mut tally = Tally::default();
    let mut sent_at = std::collections::VecDeque::with_capacity(depth);
    let mut out = Vec::with_capacity(depth * 4096);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut filled = 0usize;
    for _ in 0..depth {
        reqs.push_next(&mut out)?;
        sent_at.push_back(Instant::now());
    }
    stream.write_all(&out).await?;
    loop {
        if buf.len() < filled + 16 * 1024 {
            buf.resize(filled + 32 * 1024, 0);
        }
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        filled += n;
        let mut used = 0;
        out.clear();
        let stopping = shared.stop.load(Relaxed);
        while let Some((len, status, body)) = frame(&buf[used..filled])? {
            let body = &buf[used + body.start..used + body.end];
            if status != 200 {
                bail!("answer {status}: {}", String::from_utf8_lossy(body));
            }
            let failed = match check {
                Check::PutEvents => failed_entries(body)?,
                Check::Ok200 => 0,
            };
            let at = sent_at.pop_front().context("an answer nobody asked for")?;
            if shared.measuring.load(Relaxed) {
                tally.requests += 1;
                tally.failed_entries += failed;
                tally.latencies_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                shared.events.fetch_add(
                    entries_per_request - failed.min(entries_per_request),
                    Relaxed,
                );
            }
            used += len;
            if !stopping {
                reqs.push_next(&mut out)?;
                sent_at.push_back(Instant::now());
            }
        }
        if used > 0 {
            buf.copy_within(used..filled, 0);
            filled -= used;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        if stopping && sent_at.is_empty() {
            return Ok(tally);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_checks_answers() {
        let a = b"HTTP/1.1 200 OK\r\ncontent-type: x\r\nContent-Length: 44\r\n\r\n{\"Entries\":[{}],\"FailedEntryCount\":12,\"x\":1}HTTP/1.1 2";
        let (len, status, body) = frame(a).unwrap().unwrap();
        assert_eq!(status, 200);
        assert_eq!(failed_entries(&a[body]).unwrap(), 12);
        assert_eq!(frame(&a[len..]).unwrap(), None);
        assert!(failed_entries(b"{\"Entries\":[]}").is_err());
        assert!(frame(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn signed_requests_carry_sigv4() {
        let r = signed_bytes("127.0.0.1:1", "AWSEvents.PutEvents", "us-east-1", b"{}").unwrap();
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("POST / HTTP/1.1\r\n"));
        assert!(s.contains("authorization: AWS4-HMAC-SHA256 Credential=AKIAOPSLOOPBENCH0001/"));
        assert!(s.ends_with("\r\n\r\n{}"));
    }
}
