//! Paging GetMetricData results: `ScanBy` ordering, `MaxDatapoints` per response (counted across
//! all results, filled in query order), `StatusCode` (`PartialData` while a result has datapoints
//! beyond this page), and the opaque `NextToken`, which is bound to the request it was issued for.

use opsloop_core::Value;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};

use crate::doc::{f64_value, ms_to_value};
use crate::token;

/// Default `MaxDatapoints`.
pub const DEFAULT_MAX_DATAPOINTS: u64 = 100_800;

/// One computed result series, ascending in time.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSeries {
    pub id: String,
    pub label: String,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// `(Code, Value)` messages about this result.
    pub messages: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// Datapoints already returned, across all results in order.
    offset: u64,
    /// Fingerprint of the request the token belongs to.
    request: u64,
}

/// The offset a `NextToken` resumes at, if it is a token of this request.
pub fn resume_offset(next_token: &str, request: u64) -> Option<u64> {
    token::decode::<Cursor>(next_token)
        .filter(|c| c.request == request)
        .map(|c| c.offset)
}

/// Build one response page.
pub fn page(
    results: Vec<ResultSeries>,
    descending: bool,
    offset: u64,
    max_datapoints: u64,
    request: u64,
    messages: &[(String, String)],
) -> Value {
    let total: u64 = results.iter().map(|r| r.values.len() as u64).sum();
    let end = offset.saturating_add(max_datapoints.max(1));
    let mut start_of = 0u64;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let len = r.values.len() as u64;
        let (lo, hi) = (
            offset.clamp(start_of, start_of + len),
            end.clamp(start_of, start_of + len),
        );
        let (lo, hi) = ((lo - start_of) as usize, (hi - start_of) as usize);
        let complete = start_of + len <= end;
        start_of += len;
        let n = r.values.len();
        // Positions in scan order map back to ascending storage.
        let index = |k: usize| if descending { n - 1 - k } else { k };
        let timestamps: Vec<Value> = (lo..hi)
            .map(|k| ms_to_value(r.timestamps[index(k)]))
            .collect();
        let values: Vec<Value> = (lo..hi).map(|k| f64_value(r.values[index(k)])).collect();
        let mut m = Map::new();
        m.insert("Id".into(), Value::String(r.id));
        m.insert("Label".into(), Value::String(r.label));
        m.insert("Timestamps".into(), Value::Array(timestamps));
        m.insert("Values".into(), Value::Array(values));
        m.insert(
            "StatusCode".into(),
            Value::String(if complete { "Complete" } else { "PartialData" }.into()),
        );
        m.insert("Messages".into(), message_list(&r.messages));
        out.push(Value::Object(m));
    }
    let mut doc = Map::new();
    doc.insert("MetricDataResults".into(), Value::Array(out));
    if end < total {
        doc.insert(
            "NextToken".into(),
            Value::String(token::encode(&Cursor {
                offset: end,
                request,
            })),
        );
    }
    doc.insert("Messages".into(), message_list(messages));
    Value::Object(doc)
}

fn message_list(messages: &[(String, String)]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|(c, v)| json!({"Code": c, "Value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: &str, n: usize) -> ResultSeries {
        ResultSeries {
            id: id.into(),
            label: id.into(),
            timestamps: (0..n as i64).map(|i| i * 60_000).collect(),
            values: (0..n).map(|i| i as f64).collect(),
            messages: vec![],
        }
    }

    fn values(doc: &Value, i: usize) -> Vec<f64> {
        doc["MetricDataResults"][i]["Values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn descending_is_the_default_scan_order() {
        let doc = page(vec![series("a", 3)], true, 0, 100, 7, &[]);
        assert_eq!(values(&doc, 0), vec![2.0, 1.0, 0.0]);
        assert_eq!(
            doc["MetricDataResults"][0]["Timestamps"],
            json!([120, 60, 0])
        );
        assert_eq!(doc["MetricDataResults"][0]["StatusCode"], "Complete");
        assert!(doc.get("NextToken").is_none());
    }

    #[test]
    fn pages_split_across_results() {
        let results = || vec![series("a", 3), series("b", 2)];
        let first = page(results(), false, 0, 4, 7, &[]);
        assert_eq!(values(&first, 0), vec![0.0, 1.0, 2.0]);
        assert_eq!(values(&first, 1), vec![0.0]);
        assert_eq!(first["MetricDataResults"][0]["StatusCode"], "Complete");
        assert_eq!(first["MetricDataResults"][1]["StatusCode"], "PartialData");
        let token = first["NextToken"].as_str().unwrap();
        let offset = resume_offset(token, 7).unwrap();
        assert_eq!(
            resume_offset(token, 8),
            None,
            "token is bound to its request"
        );
        let second = page(results(), false, offset, 4, 7, &[]);
        assert_eq!(values(&second, 0), Vec::<f64>::new());
        assert_eq!(values(&second, 1), vec![1.0]);
        assert_eq!(second["MetricDataResults"][1]["StatusCode"], "Complete");
        assert!(second.get("NextToken").is_none());
    }
}
