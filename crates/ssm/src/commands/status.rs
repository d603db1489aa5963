//! The managed nodes' status-check metric: the sweeper turns each node's ping status into the EC2
//! status-check metrics, so alarms copied from EC2 ("instance failure") work for hybrid nodes.
//!
//! Every managed node in state `Online` or `ConnectionLost` gets, in namespace [`NAMESPACE`]
//! (`AWS/EC2`) with the single dimension `InstanceId=<mi-…>`, the metrics
//! `StatusCheckFailed_Instance` and `StatusCheckFailed` (Unit `Count`, high resolution):
//! 0 while the node is Online, 1 once it is ConnectionLost (no heartbeat for the lost-after time).
//! A datum is published at once when a node's status changes and otherwise every
//! [`PUBLISH_EVERY_S`] seconds, through `Directory::invoke("CloudWatch", …, "PutMetricData", …)`
//! in the node's account and region; an alarm with Period 60 (or 10, high resolution) on
//! `Maximum` therefore sees the failure in the sweep that marks the node lost.
//! Deregistered nodes stop publishing (their metric then has no new data).

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::activations::ManagedInstance;

/// Namespace of the status-check metrics (EC2's, where copied alarms look).
pub const NAMESPACE: &str = "AWS/EC2";
/// The metric names published (EC2's documented names; the node has no system check of its own,
/// so both carry the node's reachability).
pub const METRICS: &[&str] = &["StatusCheckFailed_Instance", "StatusCheckFailed"];
/// Seconds between two publications of an unchanged status.
pub const PUBLISH_EVERY_S: f64 = 10.0;
/// Nodes per PutMetricData call (two data each; the call takes up to 1,000).
const NODES_PER_CALL: usize = 500;

/// What was last published per node row key: (failed, at).
#[derive(Debug, Default)]
pub struct StatusPublisher {
    last: HashMap<String, (bool, f64)>,
}

/// One PutMetricData call to make: account, region, input document.
pub type Call = (String, String, Value);

impl StatusPublisher {
    /// The calls due at `t` for `nodes` (row key `<account>/<region>/<id>`, node), and remember
    /// them as published.
    pub fn due(&mut self, nodes: &[(String, ManagedInstance)], t: f64) -> Vec<Call> {
        let mut by_scope: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        let mut seen = HashMap::with_capacity(nodes.len());
        for (key, m) in nodes {
            let failed = match m.ping_status.as_str() {
                "Online" => false,
                "ConnectionLost" => true,
                _ => continue,
            };
            let mut parts = key.splitn(3, '/');
            let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
                continue;
            };
            let due = match self.last.get(key) {
                Some(&(was, at)) => was != failed || t - at >= PUBLISH_EVERY_S,
                None => true,
            };
            let at = if due {
                let data = by_scope
                    .entry((account.to_string(), region.to_string()))
                    .or_default();
                for name in METRICS {
                    data.push(json!({
                        "MetricName": name,
                        "Dimensions": [{"Name": "InstanceId", "Value": m.instance_id}],
                        "Timestamp": t,
                        "Value": if failed { 1.0 } else { 0.0 },
                        "Unit": "Count",
                        "StorageResolution": 1,
                    }));
                }
                t
            } else {
                self.last.get(key).map_or(t, |&(_, at)| at)
            };
            seen.insert(key.clone(), (failed, at));
        }
        // Forget deregistered nodes.
        self.last = seen;
        let mut calls = Vec::new();
        for ((account, region), data) in by_scope {
            for chunk in data.chunks(NODES_PER_CALL * METRICS.len()) {
                calls.push((
                    account.clone(),
                    region.clone(),
                    json!({"Namespace": NAMESPACE, "MetricData": chunk}),
                ));
            }
        }
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, status: &str) -> ManagedInstance {
        ManagedInstance {
            instance_id: id.into(),
            activation_id: "a".into(),
            name: None,
            iam_role: "r".into(),
            registered: 0.0,
            last_ping: 0.0,
            ping_status: status.into(),
            platform_type: "Linux".into(),
            platform_name: String::new(),
            platform_version: String::new(),
            agent_version: String::new(),
            ip_address: String::new(),
            computer_name: String::new(),
        }
    }

    fn values(calls: &[Call]) -> Vec<(String, String, f64)> {
        calls
            .iter()
            .flat_map(|(_, _, v)| {
                assert_eq!(v["Namespace"], NAMESPACE);
                v["MetricData"].as_array().unwrap().clone()
            })
            .map(|d| {
                assert_eq!(d["Dimensions"][0]["Name"], "InstanceId");
                assert_eq!(d["StorageResolution"], 1);
                (
                    d["Dimensions"][0]["Value"].as_str().unwrap().to_string(),
                    d["MetricName"].as_str().unwrap().to_string(),
                    d["Value"].as_f64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn online_is_zero_lost_is_one_changes_publish_at_once() {
        let mut p = StatusPublisher::default();
        let k = "111111111111/us-east-1/mi-1".to_string();
        let calls = p.due(&[(k.clone(), node("mi-1", "Online"))], 100.0);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            ("111111111111", "us-east-1")
        );
        assert_eq!(
            values(&calls),
            vec![
                ("mi-1".into(), "StatusCheckFailed_Instance".into(), 0.0),
                ("mi-1".into(), "StatusCheckFailed".into(), 0.0)
            ]
        );
        // Unchanged and recent: nothing.
        assert!(p
            .due(&[(k.clone(), node("mi-1", "Online"))], 101.0)
            .is_empty());
        // A change publishes at once.
        let calls = p.due(&[(k.clone(), node("mi-1", "ConnectionLost"))], 102.0);
        assert_eq!(values(&calls)[0].2, 1.0);
        // Unchanged: again after PUBLISH_EVERY_S.
        assert!(p
            .due(&[(k.clone(), node("mi-1", "ConnectionLost"))], 111.0)
            .is_empty());
        let calls = p.due(&[(k.clone(), node("mi-1", "ConnectionLost"))], 112.0);
        assert_eq!(
            values(&calls)[1],
            ("mi-1".into(), "StatusCheckFailed".into(), 1.0)
        );
    }

    #[test]
    fn scopes_are_separate_calls_and_other_states_are_skipped() {
        let mut p = StatusPublisher::default();
        let calls = p.due(
            &[
                ("111111111111/us-east-1/mi-1".into(), node("mi-1", "Online")),
                (
                    "222222222222/eu-west-1/mi-2".into(),
                    node("mi-2", "ConnectionLost"),
                ),
                (
                    "111111111111/us-east-1/mi-3".into(),
                    node("mi-3", "Inactive"),
                ),
            ],
            5.0,
        );
        assert_eq!(calls.len(), 2);
        let v = values(&calls);
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|(id, _, _)| id != "mi-3"));
    }
}
