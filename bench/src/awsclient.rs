//! A compact CloudWatch client speaking Smithy RPC v2 CBOR over one keep-alive HTTP/1.1 connection,
//! SigV4-signed with `opsloop_wire::sigv4::sign`, shaped like botocore's requests (path
//! `/service/GraniteServiceVersion20100801/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`,
//! `Content-Type`/`Accept: application/cbor`, `x-amzn-query-mode: true` because the model is
//! awsQuery-compatible, timestamps as CBOR tag 1 over integer seconds).
//!
//! Shared by the bench crate and `crates/server/tests/crash.rs` (which includes this file with
//! `#[path]`), so it only uses crates both have: anyhow, bytes, http, http-body-util, hyper,
//! hyper-util, tokio, serde_json and opsloop-wire. It carries its own minimal CBOR encoder and
//! decoder for that reason.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// CloudWatch's RPC v2 service name (the model's `targetPrefix`).
pub const CW_TARGET: &str = "GraniteServiceVersion20100801";
/// CloudWatch's SigV4 signing name.
pub const CW_SIGNING_NAME: &str = "monitoring";

/// Minimal CBOR (RFC 8949): a writer for the shapes the client sends and a decoder into JSON values.
pub mod cbor {
    use anyhow::{bail, Result};
    use serde_json::{Map, Number, Value};

    /// Appends CBOR data items to a buffer. Lengths are definite, as botocore writes them.
    #[derive(Debug, Default)]
    pub struct Enc {
        pub buf: Vec<u8>,
    }

    impl Enc {
        pub fn with_capacity(n: usize) -> Self {
            Enc {
                buf: Vec::with_capacity(n),
            }
        }
        fn head(&mut self, major: u8, v: u64) {
            let m = major << 5;
            if v < 24 {
                self.buf.push(m | v as u8);
            } else if v < 0x100 {
                self.buf.push(m | 24);
                self.buf.push(v as u8);
            } else if v < 0x1_0000 {
                self.buf.push(m | 25);
                self.buf.extend_from_slice(&(v as u16).to_be_bytes());
            } else if v < 0x1_0000_0000 {
                self.buf.push(m | 26);
                self.buf.extend_from_slice(&(v as u32).to_be_bytes());
            } else {
                self.buf.push(m | 27);
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
        }
        pub fn uint(&mut self, v: u64) {
            self.head(0, v);
        }
        pub fn int(&mut self, v: i64) {
            if v >= 0 {
                self.head(0, v as u64);
            } else {
                self.head(1, (-1 - v) as u64);
            }
        }
        pub fn text(&mut self, s: &str) {
            self.head(3, s.len() as u64);
            self.buf.extend_from_slice(s.as_bytes());
        }
        pub fn array(&mut self, len: usize) {
            self.head(4, len as u64);
        }
        pub fn map(&mut self, len: usize) {
            self.head(5, len as u64);
        }
        /// A double (botocore writes every `double` shape as a 64-bit float).
        pub fn f64(&mut self, v: f64) {
            self.buf.push(0xfb);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
        pub fn bool(&mut self, v: bool) {
            self.buf.push(if v { 0xf5 } else { 0xf4 });
        }
        /// An epoch-seconds timestamp: tag 1 over an integer.
        pub fn timestamp(&mut self, secs: i64) {
            self.head(6, 1);
            self.int(secs);
        }
    }

    /// Decode one CBOR data item (the whole input) into a JSON value. Tags are dropped (a tag-1
    /// timestamp becomes its number of seconds), byte strings become lowercase hex strings, and
    /// non-finite floats, `null` and `undefined` become `null`.
    pub fn decode(input: &[u8]) -> Result<Value> {
        let mut d = Dec { b: input, pos: 0 };
        let v = d.item(0)?;
        if d.pos != input.len() {
            bail!("{} trailing bytes after the CBOR item", input.len() - d.pos);
        }
        Ok(v)
    }

    struct Dec<'a> {
        b: &'a [u8],
        pos: usize,
    }

    enum Head {
        Item(u8, u8, u64),
        Break,
    }

    impl Dec<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8]> {
            if self.b.len() - self.pos < n {
                bail!("truncated CBOR at byte {}", self.pos);
            }
            let s = &self.b[self.pos..self.pos + n];
            self.pos += n;
            Ok(s)
        }
        fn be(&mut self, n: usize) -> Result<u64> {
            Ok(self
                .take(n)?
                .iter()
                .fold(0u64, |acc, &x| (acc << 8) | x as u64))
        }
        /// (major, additional info, argument); the argument is 0 for indefinite lengths (info 31).
        fn head(&mut self) -> Result<Head> {
            let ib = self.take(1)?[0];
            if ib == 0xff {
                return Ok(Head::Break);
            }
            let (major, info) = (ib >> 5, ib & 0x1f);
            let arg = match info {
                0..=23 => info as u64,
                24 => self.be(1)?,
                25 => self.be(2)?,
                26 => self.be(4)?,
                27 => self.be(8)?,
                31 => 0,
                _ => bail!("reserved CBOR additional info {info}"),
            };
            Ok(Head::Item(major, info, arg))
        }
        fn len(&self, n: u64) -> Result<usize> {
            // Every item takes at least one byte, so a count beyond the input is malformed.
            if n > (self.b.len() - self.pos) as u64 {
                bail!("CBOR length {n} exceeds the input");
            }
            Ok(n as usize)
        }
        fn string_chunks(&mut self, major: u8, info: u8, arg: u64) -> Result<Vec<u8>> {
            if info != 31 {
                let n = self.len(arg)?;
                return Ok(self.take(n)?.to_vec());
            }
            let mut out = Vec::new();
            loop {
                match self.head()? {
                    Head::Break => return Ok(out),
                    Head::Item(m, i, a) if m == major && i != 31 => {
                        let n = self.len(a)?;
                        out.extend_from_slice(self.take(n)?);
                    }
                    Head::Item(..) => bail!("bad chunk in an indefinite-length CBOR string"),
                }
            }
        }
        fn item(&mut self, depth: usize) -> Result<Value> {
            match self.head()? {
                Head::Break => bail!("unexpected CBOR break"),
                Head::Item(major, info, arg) => self.body(major, info, arg, depth),
            }
        }
        fn body(&mut self, major: u8, info: u8, arg: u64, depth: usize) -> Result<Value> {
            if depth > 64 {
                bail!("CBOR nested too deeply");
            }
            Ok(match major {
                0 => Value::Number(arg.into()),
                1 => {
                    let v = -1 - arg as i128;
                    i64::try_from(v)
                        .map(|v| Value::Number(v.into()))
                        .unwrap_or_else(|_| float_value(v as f64))
                }
                2 => {
                    let b = self.string_chunks(2, info, arg)?;
                    Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
                }
                3 => {
                    let b = self.string_chunks(3, info, arg)?;
                    Value::String(
                        String::from_utf8(b)
                            .map_err(|_| anyhow::anyhow!("invalid UTF-8 in CBOR text"))?,
                    )
                }
                4 => {
                    let mut out = Vec::new();
                    if info == 31 {
                        loop {
                            match self.head()? {
                                Head::Break => break,
                                Head::Item(m, i, a) => out.push(self.body(m, i, a, depth + 1)?),
                            }
                        }
                    } else {
                        for _ in 0..self.len(arg)? {
                            out.push(self.item(depth + 1)?);
                        }
                    }
                    Value::Array(out)
                }
                5 => {
                    let mut out = Map::new();
                    let mut entry = |d: &mut Self, k: Value| -> Result<()> {
                        let key = match k {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        let v = d.item(depth + 1)?;
                        out.insert(key, v);
                        Ok(())
                    };
                    if info == 31 {
                        loop {
                            match self.head()? {
                                Head::Break => break,
                                Head::Item(m, i, a) => {
                                    let k = self.body(m, i, a, depth + 1)?;
                                    entry(self, k)?;
                                }
                            }
                        }
                    } else {
                        for _ in 0..self.len(arg)? {
                            let k = self.item(depth + 1)?;
                            entry(self, k)?;
                        }
                    }
                    Value::Object(out)
                }
                6 => self.item(depth + 1)?,
                7 => match info {
                    20 => Value::Bool(false),
                    21 => Value::Bool(true),
                    22 | 23 => Value::Null,
                    25 => float_value(half_to_f64(arg as u16)),
                    26 => float_value(f32::from_bits(arg as u32) as f64),
                    27 => float_value(f64::from_bits(arg)),
                    _ => bail!("unsupported CBOR simple value {info}"),
                },
                _ => unreachable!("major type is 3 bits"),
            })
        }
    }

    fn float_value(v: f64) -> Value {
        Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }

    fn half_to_f64(h: u16) -> f64 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = ((h >> 10) & 0x1f) as i32;
        let frac = (h & 0x3ff) as f64;
        sign * match exp {
            0 => frac * 2f64.powi(-24),
            31 if frac == 0.0 => f64::INFINITY,
            31 => f64::NAN,
            e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
        }
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    /// `Host` header value (`ip:port`).
    pub host: String,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn {
            sender,
            host: addr.to_string(),
        })
    }

    /// Send a request (its `Host` header must be set) and read the whole answer.
    pub async fn send(&mut self, req: http::Request<Bytes>) -> Result<(u16, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let resp = self.sender.send_request(req.map(Full::new)).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// An unsigned `GET path`.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes)> {
        let req = http::Request::get(path)
            .header(http::header::HOST, &self.host)
            .body(Bytes::new())?;
        self.send(req).await
    }
}

/// `GET /_opsloop/health` on a fresh connection, bounded by `timeout`: true on a 200.
pub async fn health_ok(addr: SocketAddr, timeout: Duration) -> bool {
    let probe = async {
        let mut c = HttpConn::connect(addr).await?;
        c.get("/_opsloop/health").await
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Ok((200, _))))
}

/// Static credentials and the region to sign for.
#[derive(Debug, Clone)]
pub struct Creds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

/// A CloudWatch client on one connection.
pub struct CwClient {
    pub conn: HttpConn,
    pub creds: Creds,
}

impl CwClient {
    pub async fn connect(addr: SocketAddr, creds: Creds) -> Result<Self> {
        Ok(CwClient {
            conn: HttpConn::connect(addr).await?,
            creds,
        })
    }

    /// A signed RPC v2 CBOR request for `operation` with `body`, as botocore builds it.
    pub fn request(&self, operation: &str, body: Vec<u8>) -> Result<http::Request<Bytes>> {
        cbor_request(&self.conn.host, &self.creds, operation, body)
    }

    /// Sign and send; `(status, body)`.
    pub async fn call(&mut self, operation: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let req = self.request(operation, body)?;
        self.conn.send(req).await
    }

    /// Run GetMetricStatistics; errors on a non-200 answer.
    pub async fn get_metric_statistics(&mut self, q: &StatsQuery<'_>) -> Result<Vec<StatPoint>> {
        let (status, body) = self.call("GetMetricStatistics", q.encode()).await?;
        if status != 200 {
            bail!(
                "GetMetricStatistics answered {}",
                error_summary(status, &body)
            );
        }
        decode_statistics(&body)
    }
}

/// A signed CloudWatch RPC v2 CBOR request for `operation` to `host`.
pub fn cbor_request(
    host: &str,
    creds: &Creds,
    operation: &str,
    body: Vec<u8>,
) -> Result<http::Request<Bytes>> {
    let body = Bytes::from(body);
    let mut req = http::Request::post(format!("/service/{CW_TARGET}/operation/{operation}"))
        .header(http::header::HOST, host)
        .header("smithy-protocol", "rpc-v2-cbor")
        .header(http::header::ACCEPT, "application/cbor")
        .header(http::header::CONTENT_TYPE, "application/cbor")
        .header("x-amzn-query-mode", "true")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)?;
    opsloop_wire::sigv4::sign(
        &mut req,
        &creds.access_key_id,
        &creds.secret_access_key,
        &creds.region,
        CW_SIGNING_NAME,
        SystemTime::now(),
    );
    Ok(req)
}

/// Streams a PutMetricData input (`Namespace`, `MetricData`) into CBOR, one datum at a time.
pub struct PutMetricData {
    enc: cbor::Enc,
    remaining: usize,
}

impl PutMetricData {
    /// Start an input with exactly `datums` data to follow.
    pub fn new(namespace: &str, datums: usize, capacity: usize) -> Self {
        let mut enc = cbor::Enc::with_capacity(capacity);
        enc.map(2);
        enc.text("Namespace");
        enc.text(namespace);
        enc.text("MetricData");
        enc.array(datums);
        PutMetricData {
            enc,
            remaining: datums,
        }
    }

    /// Append one datum: `values` at `ts_s` (epoch seconds) with optional `counts`.
    pub fn datum<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        metric_name: &str,
        dimensions: &[(K, V)],
        ts_s: i64,
        values: &[f64],
        counts: Option<&[f64]>,
    ) {
        assert!(self.remaining > 0, "more datums than announced");
        self.remaining -= 1;
        let e = &mut self.enc;
        e.map(4 + usize::from(counts.is_some()));
        e.text("MetricName");
        e.text(metric_name);
        e.text("Dimensions");
        e.array(dimensions.len());
        for (k, v) in dimensions {
            e.map(2);
            e.text("Name");
            e.text(k.as_ref());
            e.text("Value");
            e.text(v.as_ref());
        }
        e.text("Timestamp");
        e.timestamp(ts_s);
        e.text("Values");
        e.array(values.len());
        for &v in values {
            e.f64(v);
        }
        if let Some(counts) = counts {
            e.text("Counts");
            e.array(counts.len());
            for &c in counts {
                e.f64(c);
            }
        }
    }

    pub fn finish(self) -> Vec<u8> {
        assert_eq!(self.remaining, 0, "fewer datums than announced");
        self.enc.buf
    }
}

/// A GetMetricStatistics input.
#[derive(Debug, Clone)]
pub struct StatsQuery<'a> {
    pub namespace: &'a str,
    pub metric_name: &'a str,
    pub dimensions: &'a [(&'a str, &'a str)],
    pub start_s: i64,
    pub end_s: i64,
    pub period_s: u64,
    pub statistics: &'a [&'a str],
    pub extended_statistics: &'a [&'a str],
}

impl StatsQuery<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = cbor::Enc::with_capacity(256);
        let n = 5
            + usize::from(!self.statistics.is_empty())
            + usize::from(!self.extended_statistics.is_empty());
        e.map(n + usize::from(!self.dimensions.is_empty()));
        e.text("Namespace");
        e.text(self.namespace);
        e.text("MetricName");
        e.text(self.metric_name);
        if !self.dimensions.is_empty() {
            e.text("Dimensions");
            e.array(self.dimensions.len());
            for (k, v) in self.dimensions {
                e.map(2);
                e.text("Name");
                e.text(k);
                e.text("Value");
                e.text(v);
            }
        }
        e.text("StartTime");
        e.timestamp(self.start_s);
        e.text("EndTime");
        e.timestamp(self.end_s);
        e.text("Period");
        e.uint(self.period_s);
        for (name, list) in [
            ("Statistics", self.statistics),
            ("ExtendedStatistics", self.extended_statistics),
        ] {
            if !list.is_empty() {
                e.text(name);
                e.array(list.len());
                for s in list {
                    e.text(s);
                }
            }
        }
        e.buf
    }
}

/// One GetMetricStatistics datapoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatPoint {
    pub timestamp_s: f64,
    pub sample_count: Option<f64>,
    pub average: Option<f64>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub extended: Vec<(String, f64)>,
}

/// Parse a GetMetricStatistics CBOR answer.
pub fn decode_statistics(body: &[u8]) -> Result<Vec<StatPoint>> {
    let v = cbor::decode(body)?;
    let Some(points) = v.get("Datapoints") else {
        return Ok(Vec::new()); // An empty list may be omitted.
    };
    let points = points
        .as_array()
        .ok_or_else(|| anyhow!("Datapoints is not a list"))?;
    let f = |p: &serde_json::Value, k: &str| p.get(k).and_then(|x| x.as_f64());
    points
        .iter()
        .map(|p| {
            Ok(StatPoint {
                timestamp_s: f(p, "Timestamp")
                    .ok_or_else(|| anyhow!("datapoint without Timestamp"))?,
                sample_count: f(p, "SampleCount"),
                average: f(p, "Average"),
                sum: f(p, "Sum"),
                minimum: f(p, "Minimum"),
                maximum: f(p, "Maximum"),
                extended: p
                    .get("ExtendedStatistics")
                    .and_then(|m| m.as_object())
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// `"<status> <__type>: <message>"` from an error answer (CBOR, else the raw text, truncated).
pub fn error_summary(status: u16, body: &[u8]) -> String {
    if let Ok(v) = cbor::decode(body) {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let msg = if s("message").is_empty() {
            s("Message")
        } else {
            s("message")
        };
        return format!("{status} {}: {msg}", s("__type"));
    }
    let text = String::from_utf8_lossy(body);
    format!("{status} {}", text.chars().take(300).collect::<String>())
}

/// A free loopback port (bound then released; a race with another process is possible but rare).
pub fn free_loopback_addr() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}
