//! Prometheus remote write 1.0 on the client side: the protobuf `WriteRequest` encoded by hand
//! (`WriteRequest { repeated TimeSeries timeseries = 1 }`, `TimeSeries { repeated Label labels = 1;
//! repeated Sample samples = 2 }`, `Label { string name = 1; string value = 2 }`,
//! `Sample { double value = 1; int64 timestamp = 2 }`), snappy block-compressed, and the request
//! headers the protocol asks for.

use bytes::Bytes;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Field key: `(field << 3) | wire type` (0 varint, 1 fixed64, 2 length-delimited).
fn put_key(buf: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(buf, ((field as u64) << 3) | wire_type as u64);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(buf, field, 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Builds an uncompressed `WriteRequest`, one time series at a time.
#[derive(Debug, Default)]
pub struct WriteRequest {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    label: Vec<u8>,
}

impl WriteRequest {
    pub fn with_capacity(n: usize) -> Self {
        WriteRequest {
            buf: Vec::with_capacity(n),
            scratch: Vec::with_capacity(4096),
            label: Vec::with_capacity(128),
        }
    }

    /// Append a series. `labels` must be sorted by name (remote write requires it); `samples` are
    /// `(timestamp ms, value)`.
    pub fn series<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        labels: &[(K, V)],
        samples: &[(i64, f64)],
    ) {
        self.scratch.clear();
        for (name, value) in labels {
            self.label.clear();
            put_bytes(&mut self.label, 1, name.as_ref().as_bytes());
            put_bytes(&mut self.label, 2, value.as_ref().as_bytes());
            put_bytes(&mut self.scratch, 1, &self.label);
        }
        for &(ts, v) in samples {
            // A Sample is 1 + 8 bytes of value and 1 + up to 10 bytes of timestamp: length < 128.
            let mut sample = [0u8; 20];
            let mut n = 0;
            sample[n] = (1 << 3) | 1;
            n += 1;
            sample[n..n + 8].copy_from_slice(&v.to_le_bytes());
            n += 8;
            sample[n] = 2 << 3;
            n += 1;
            let mut t = ts as u64;
            while t >= 0x80 {
                sample[n] = (t as u8) | 0x80;
                t >>= 7;
                n += 1;
            }
            sample[n] = t as u8;
            n += 1;
            put_bytes(&mut self.scratch, 2, &sample[..n]);
        }
        put_bytes(&mut self.buf, 1, &self.scratch);
    }

    /// The encoded protobuf.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The snappy (block format) compressed body.
    pub fn into_snappy(self) -> Bytes {
        let raw = self.buf;
        Bytes::from(
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy compression of an in-memory buffer"),
        )
    }
}

/// A remote-write POST to `/api/v1/write` with the protocol's headers.
pub fn request(host: &str, body: Bytes) -> http::Request<Bytes> {
    http::Request::post("/api/v1/write")
        .header(http::header::HOST, host)
        .header(http::header::CONTENT_ENCODING, "snappy")
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .header(http::header::USER_AGENT, "opsloop-bench")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .expect("static request parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_protobuf_wire_format() {
        let mut w = WriteRequest::with_capacity(64);
        w.series(&[("a", "b")], &[(5, 1.0)]);
        let label = [0x0a, 0x01, b'a', 0x12, 0x01, b'b'];
        let sample = [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05];
        let mut ts = vec![0x0a, label.len() as u8];
        ts.extend_from_slice(&label);
        ts.extend_from_slice(&[0x12, sample.len() as u8]);
        ts.extend_from_slice(&sample);
        let mut want = vec![0x0a, ts.len() as u8];
        want.extend_from_slice(&ts);
        assert_eq!(w.into_bytes(), want);
    }

    #[test]
    fn multi_byte_varints_and_snappy_round_trip() {
        let mut w = WriteRequest::with_capacity(64);
        let ts = 1_700_000_000_123i64;
        w.series(
            &[("__name__", "m"), ("host", "h")],
            &[(ts, 2.5), (ts + 1, -3.0)],
        );
        let raw = w.into_bytes();
        // The timestamp varint: 7-bit groups, least significant first.
        let mut v = Vec::new();
        put_varint(&mut v, ts as u64);
        assert_eq!(v.len(), 6);
        assert!(raw.windows(v.len()).any(|win| win == v.as_slice()));
        let mut w = WriteRequest::with_capacity(64);
        w.series(
            &[("__name__", "m"), ("host", "h")],
            &[(ts, 2.5), (ts + 1, -3.0)],
        );
        let compressed = w.into_snappy();
        let back = snap::raw::Decoder::new()
            .decompress_vec(&compressed)
            .unwrap();
        assert_eq!(back, raw);
    }
}
