//! A CloudWatch Logs client for the benchmark: JSON 1.1 requests (`X-Amz-Target:
//! Logs_20140328.<Op>`) SigV4-signed for `logs` over one keep-alive HTTP/1.1 connection
//! ([`opsloop_bench::awsclient::HttpConn`]), as the AWS SDKs send them, plus a PutLogEvents body
//! builder that writes the JSON directly from message bytes (no intermediate document).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use opsloop_bench::awsclient::{Creds, HttpConn};
use serde_json::{json, Value};

pub struct LogsClient {
    pub conn: HttpConn,
    pub creds: Creds,
}

impl LogsClient {
    pub async fn connect(addr: SocketAddr, creds: Creds) -> Result<Self> {
        Ok(LogsClient {
            conn: HttpConn::connect(addr).await?,
            creds,
        })
    }

    /// Sign and send a raw JSON body; `(status, body)`.
    pub async fn send(&mut self, op: &str, body: Vec<u8>) -> Result<(u16, Bytes)> {
        let body = Bytes::from(body);
        let req = self.request(op, body.len()).body(body)?;
        self.sign_and_send(req).await
    }

    /// [`LogsClient::send`] for a body whose SHA-256 (lower-case hex) is known: it goes out as
    /// `x-amz-content-sha256`, so signing does not hash the body again (the server still does).
    pub async fn send_hashed(
        &mut self,
        op: &str,
        body: Bytes,
        sha256_hex: &str,
    ) -> Result<(u16, Bytes)> {
        let req = self
            .request(op, body.len())
            .header("x-amz-content-sha256", sha256_hex)
            .body(body)?;
        self.sign_and_send(req).await
    }

    fn request(&self, op: &str, len: usize) -> http::request::Builder {
        http::Request::post("/")
            .header(http::header::HOST, &self.conn.host)
            .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Logs_20140328.{op}"))
            .header(http::header::CONTENT_LENGTH, len)
    }

    async fn sign_and_send(&mut self, mut req: http::Request<Bytes>) -> Result<(u16, Bytes)> {
        opsloop_wire::sigv4::sign(
            &mut req,
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
            &self.creds.region,
            "logs",
            SystemTime::now(),
        );
        self.conn.send(req).await
    }

    /// Call `op` with `input`; errors on a non-200 answer.
    pub async fn call(&mut self, op: &str, input: &Value) -> Result<Value> {
        let (status, body) = self.send(op, serde_json::to_vec(input)?).await?;
        if status != 200 {
            bail!(
                "{op} answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(400)
                    .collect::<String>()
            );
        }
        if body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body).with_context(|| format!("{op} answer is not JSON"))
    }

    /// StartQuery, then GetQueryResults until it is no longer running. Returns the final answer
    /// and the time from StartQuery to the answer that said `Complete`.
    pub async fn run_query(
        &mut self,
        group: &str,
        query: &str,
        start_s: i64,
        end_s: i64,
        mut during: impl FnMut(),
    ) -> Result<(Value, Duration)> {
        let t = Instant::now();
        let started = self
            .call(
                "StartQuery",
                &json!({"logGroupName": group, "queryString": query, "startTime": start_s, "endTime": end_s, "limit": 10000}),
            )
            .await?;
        let id = started["queryId"].clone();
        loop {
            let r = self
                .call("GetQueryResults", &json!({"queryId": id}))
                .await?;
            match r["status"].as_str().unwrap_or_default() {
                "Running" | "Scheduled" => {
                    during();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                "Complete" => return Ok((r, t.elapsed())),
                other => bail!("query {query:?} ended {other}: {r}"),
            }
        }
    }
}

/// Builds a PutLogEvents body from raw messages.
pub struct PutBody {
    buf: Vec<u8>,
    events: usize,
}

impl PutBody {
    pub fn new(group: &str, stream: &str, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(b"{\"logGroupName\":");
        buf.extend_from_slice(json!(group).to_string().as_bytes());
        buf.extend_from_slice(b",\"logStreamName\":");
        buf.extend_from_slice(json!(stream).to_string().as_bytes());
        buf.extend_from_slice(b",\"logEvents\":[");
        PutBody { buf, events: 0 }
    }

    /// Append one event (`msg` must be UTF-8).
    pub fn event(&mut self, ts: i64, msg: &[u8]) {
        if self.events > 0 {
            self.buf.push(b',');
        }
        self.events += 1;
        self.buf.extend_from_slice(b"{\"timestamp\":");
        self.buf.extend_from_slice(ts.to_string().as_bytes());
        self.buf.extend_from_slice(b",\"message\":\"");
        // most lines need no escaping: one branch-free pass to tell
        let plain = !msg.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if plain {
            self.buf.extend_from_slice(msg);
            self.buf.extend_from_slice(b"\"}");
            return;
        }
        let mut from = 0;
        for (i, &b) in msg.iter().enumerate() {
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\t' => b"\\t",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                0..=0x1f => b"\\u0000",
                _ => continue,
            };
            self.buf.extend_from_slice(&msg[from..i]);
            if esc == b"\\u0000" {
                self.buf.extend_from_slice(format!("\\u{b:04x}").as_bytes());
            } else {
                self.buf.extend_from_slice(esc);
            }
            from = i + 1;
        }
        self.buf.extend_from_slice(&msg[from..]);
        self.buf.extend_from_slice(b"\"}");
    }

    pub fn len(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"]}");
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bodies_are_valid_json() {
        let mut b = PutBody::new("g", "s\"1", 64);
        b.event(5, b"plain");
        b.event(6, b"tab\there \"q\" back\\slash \x01");
        let v: Value = serde_json::from_slice(&b.finish()).unwrap();
        assert_eq!(v["logStreamName"], "s\"1");
        assert_eq!(
            v["logEvents"][0],
            json!({"timestamp": 5, "message": "plain"})
        );
        assert_eq!(
            v["logEvents"][1]["message"],
            "tab\there \"q\" back\\slash \u{1}"
        );
    }
}
