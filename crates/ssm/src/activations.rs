//! Hybrid activations and the managed-node inventory: CreateActivation (an ActivationId and a
//! one-time-shown ActivationCode, of which only a SHA-256 is stored; RegistrationLimit,
//! ExpirationDate, DefaultInstanceName, IamRole, Tags), DescribeActivations, DeleteActivation, and
//! DescribeInstanceInformation over the registered nodes (filters validated; an empty fleet answers
//! an empty list). Activations live in `ssm.activations`, nodes in `ssm.instances` (key
//! `<account>/<region>/<mi-id>`); the agent registration (next module) consumes an activation
//! through [`Activation::accepts`] and writes a [`ManagedInstance`].

use opsloop_core::{ApiError, Value};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{
    arr, get_row, i, max_results, now, page, put_row, s, scan_rows, strings, tag_list, tags_value,
    Scope,
};
use crate::error::{err, validation};
use crate::tags;
use crate::Inner;

pub const TABLE: &str = "ssm.activations";
pub const INSTANCES: &str = "ssm.instances";
const DAY: f64 = 86_400.0;
/// A node that has not pinged for this long is reported as ConnectionLost.
pub const CONNECTION_LOST_AFTER_S: f64 = 300.0;

/// A hybrid activation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activation {
    pub id: String,
    /// Hex SHA-256 of the activation code.
    pub code_hash: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub default_instance_name: Option<String>,
    pub iam_role: String,
    pub registration_limit: i64,
    pub registrations_count: i64,
    pub expiration: f64,
    pub created: f64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

impl Activation {
    /// Can `code` register one more node now?
    pub fn accepts(&self, code: &str, at: f64) -> bool {
        hash_code(code) == self.code_hash
            && at < self.expiration
            && self.registrations_count < self.registration_limit
    }
}

/// A registered managed node (written by the agent registration).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ManagedInstance {
    pub instance_id: String,
    pub activation_id: String,
    pub name: Option<String>,
    pub iam_role: String,
    pub registered: f64,
    pub last_ping: f64,
    pub ping_status: String,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub agent_version: String,
    pub ip_address: String,
    pub computer_name: String,
}

pub fn hash_code(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

fn random_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// CreateActivation.
pub fn create_activation(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let t = now();
    let expiration = match input.get("ExpirationDate").and_then(Value::as_f64) {
        Some(e) if e <= t => {
            return Err(err(
                "InvalidParameters",
                "ExpirationDate must be in the future.",
            ))
        }
        Some(e) if e > t + 30.0 * DAY => {
            return Err(err(
                "InvalidParameters",
                "ExpirationDate can be at most 30 days in the future.",
            ))
        }
        Some(e) => e,
        None => t + DAY,
    };
    let limit = i(input, "RegistrationLimit").unwrap_or(1);
    if !(1..=1000).contains(&limit) {
        return Err(err(
            "InvalidParameters",
            "RegistrationLimit must be between 1 and 1000.",
        ));
    }
    let act_tags = tag_list(input, "Tags");
    tags::validate_tags(&act_tags)?;
    let code = random_code();
    let a = Activation {
        id: uuid::Uuid::new_v4().to_string(),
        code_hash: hash_code(&code),
        description: s(input, "Description").map(str::to_string),
        default_instance_name: s(input, "DefaultInstanceName").map(str::to_string),
        iam_role: s(input, "IamRole").unwrap_or("").to_string(),
        registration_limit: limit,
        registrations_count: 0,
        expiration,
        created: t,
        tags: act_tags,
    };
    put_row(&*inner.store, TABLE, &scope.key(&a.id), &a)?;
    tracing::info!(activation = %a.id, limit, "activation created");
    Ok(json!({ "ActivationId": a.id, "ActivationCode": code }))
}

/// An activation by id.
pub fn load(inner: &Inner, scope: &Scope, id: &str) -> Result<Option<Activation>, ApiError> {
    Ok(get_row(&*inner.store, TABLE, &scope.key(id))?)
}

fn activation_doc(a: &Activation, t: f64) -> Value {
    let mut d = json!({
        "ActivationId": a.id,
        "IamRole": a.iam_role,
        "RegistrationLimit": a.registration_limit,
        "RegistrationsCount": a.registrations_count,
        "ExpirationDate": a.expiration,
        "Expired": t >= a.expiration,
        "CreatedDate": a.created,
        "Tags": tags_value(&a.tags),
    });
    if let Some(x) = &a.description {
        d["Description"] = json!(x);
    }
    if let Some(x) = &a.default_instance_name {
        d["DefaultInstanceName"] = json!(x);
    }
    d
}

/// DescribeActivations.
pub fn describe_activations(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let filters: Vec<(String, Vec<String>)> = arr(input, "Filters")
        .iter()
        .map(|f| {
            (
                s(f, "FilterKey").unwrap_or("").to_string(),
                strings(f, "FilterValues"),
            )
        })
        .collect();
    for (k, _) in &filters {
        if !matches!(
            k.as_str(),
            "ActivationIds" | "DefaultInstanceName" | "IamRole"
        ) {
            return Err(err(
                "InvalidFilter",
                format!("The filter key {k} is not valid. Valid keys: ActivationIds, DefaultInstanceName, IamRole."),
            ));
        }
    }
    let t = now();
    let mut list: Vec<Activation> = scan_rows::<Activation>(&*inner.store, TABLE, &scope.prefix())?
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| {
            filters.iter().all(|(k, vals)| {
                let have = match k.as_str() {
                    "ActivationIds" => Some(a.id.as_str()),
                    "DefaultInstanceName" => a.default_instance_name.as_deref(),
                    _ => Some(a.iam_role.as_str()),
                };
                have.map(|h| vals.iter().any(|v| v == h)).unwrap_or(false)
            })
        })
        .collect();
    list.sort_by(|a, b| {
        b.created
            .partial_cmp(&a.created)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let (list, next) = page(
        list,
        s(input, "NextToken"),
        max_results(input, 50),
        |a: &Activation| a.id.clone(),
    )?;
    let docs: Vec<Value> = list.iter().map(|a| activation_doc(a, t)).collect();
    let mut out = json!({ "ActivationList": docs });
    if let Some(tok) = next {
        out["NextToken"] = json!(tok);
    }
    Ok(out)
}

/// DeleteActivation: the activation can register no more nodes; registered nodes stay.
pub fn delete_activation(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let id = s(input, "ActivationId").unwrap_or("");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(err(
            "InvalidActivationId",
            format!("The activation ID {id} is not valid. Verify the ID and try again."),
        ));
    }
    let _guard = inner.lock.lock();
    if load(inner, scope, id)?.is_none() {
        return Err(err(
            "InvalidActivation",
            format!("Activation ID {id} doesn't exist."),
        ));
    }
    inner
        .store
        .delete(TABLE, &scope.key(id))
        .map_err(crate::error::InternalError::from)?;
    Ok(json!({}))
}

/// What a node reports about itself when it registers (and later in heartbeats).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub agent_version: String,
    pub ip_address: String,
    pub computer_name: String,
}

/// Register a node through an activation: checks the code, expiry and limit, then in one batch
/// counts the registration, writes the `ManagedInstance` (`mi-` + 17 hex, named after the
/// activation's DefaultInstanceName, Online) and gives it the activation's tags. For the agent
/// registration endpoint.
pub fn register(
    inner: &Inner,
    scope: &Scope,
    activation_id: &str,
    code: &str,
    info: NodeInfo,
) -> Result<ManagedInstance, ApiError> {
    let invalid = |why: &str| {
        err(
            "InvalidActivation",
            format!("Activation {activation_id} can't register a node: {why}."),
        )
    };
    let _guard = inner.lock.lock();
    let mut a = load(inner, scope, activation_id)?.ok_or_else(|| invalid("it does not exist"))?;
    let t = now();
    if hash_code(code) != a.code_hash {
        return Err(invalid("the activation code does not match"));
    }
    if t >= a.expiration {
        return Err(invalid("it has expired"));
    }
    if a.registrations_count >= a.registration_limit {
        return Err(invalid("its registration limit is reached"));
    }
    a.registrations_count += 1;
    let m = ManagedInstance {
        instance_id: format!("mi-{}", crate::common::random_hex(17)),
        activation_id: a.id.clone(),
        name: a.default_instance_name.clone(),
        iam_role: a.iam_role.clone(),
        registered: t,
        last_ping: t,
        ping_status: "Online".into(),
        platform_type: info.platform_type,
        platform_name: info.platform_name,
        platform_version: info.platform_version,
        agent_version: info.agent_version,
        ip_address: info.ip_address,
        computer_name: info.computer_name,
    };
    let mut ops = vec![
        opsloop_store::WriteOp::Put {
            table: TABLE.into(),
            key: scope.key(&a.id),
            value: crate::common::to_bytes(&a),
        },
        opsloop_store::WriteOp::Insert {
            table: INSTANCES.into(),
            key: scope.key(&m.instance_id),
            value: crate::common::to_bytes(&m),
        },
    ];
    if !a.tags.is_empty() {
        ops.push(tags::put_op(
            scope,
            "ManagedInstance",
            &m.instance_id,
            &a.tags,
        ));
    }
    inner
        .store
        .batch(ops)
        .map_err(crate::error::InternalError::from)?;
    tracing::info!(instance = %m.instance_id, activation = %a.id, "managed node registered");
    Ok(m)
}

/// Does the managed node exist (for tagging)?
pub fn instance_exists(inner: &Inner, scope: &Scope, id: &str) -> Result<Option<String>, ApiError> {
    let m: Option<ManagedInstance> = get_row(&*inner.store, INSTANCES, &scope.key(id))?;
    Ok(m.map(|m| m.instance_id))
}

/// The ping status reported now: ConnectionLost when the node has been silent too long.
pub fn effective_ping_status(m: &ManagedInstance, t: f64) -> &str {
    if t - m.last_ping > CONNECTION_LOST_AFTER_S {
        "ConnectionLost"
    } else {
        &m.ping_status
    }
}

fn instance_doc(m: &ManagedInstance, t: f64) -> Value {
    let mut d = json!({
        "InstanceId": m.instance_id,
        "PingStatus": effective_ping_status(m, t),
        "LastPingDateTime": m.last_ping,
        "AgentVersion": m.agent_version,
        "IsLatestVersion": true,
        "PlatformType": m.platform_type,
        "PlatformName": m.platform_name,
        "PlatformVersion": m.platform_version,
        "ActivationId": m.activation_id,
        "IamRole": m.iam_role,
        "RegistrationDate": m.registered,
        "ResourceType": "ManagedInstance",
        "IPAddress": m.ip_address,
        "ComputerName": m.computer_name,
        "SourceId": m.instance_id,
        "SourceType": "AWS::SSM::ManagedInstance",
    });
    if let Some(n) = &m.name {
        d["Name"] = json!(n);
    }
    d
}

const INFO_KEYS: &[&str] = &[
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
];

fn check_filter_values(key: &str, values: &[String]) -> Result<(), ApiError> {
    let bad = |v: &str, valid: &str| {
        err(
            "InvalidInstanceInformationFilterValue",
            format!("The filter value {v} is not valid for {key}. Valid values: {valid}."),
        )
    };
    if values.is_empty() {
        return Err(err(
            "InvalidInstanceInformationFilterValue",
            format!("The filter {key} requires at least one value."),
        ));
    }
    for v in values {
        match key {
            "PingStatus" if !matches!(v.as_str(), "Online" | "ConnectionLost" | "Inactive") => {
                return Err(bad(v, "Online, ConnectionLost, Inactive"))
            }
            "PlatformTypes" if !matches!(v.as_str(), "Windows" | "Linux" | "MacOS") => {
                return Err(bad(v, "Windows, Linux, MacOS"))
            }
            "ResourceType" if !matches!(v.as_str(), "ManagedInstance" | "EC2Instance") => {
                return Err(bad(v, "ManagedInstance, EC2Instance"))
            }
            "InstanceIds" if !(v.starts_with("i-") || v.starts_with("mi-")) => {
                return Err(err(
                    "InvalidInstanceId",
                    format!("The instance ID {v} is not valid. Verify the ID and try again."),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// DescribeInstanceInformation.
pub fn describe_instance_information(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let legacy = arr(input, "InstanceInformationFilterList");
    let modern = arr(input, "Filters");
    if !legacy.is_empty() && !modern.is_empty() {
        return Err(validation(
            "You can use either InstanceInformationFilterList or Filters in a single request, not both.",
        ));
    }
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for f in legacy {
        filters.push((
            s(f, "key").unwrap_or("").to_string(),
            strings(f, "valueSet"),
        ));
    }
    for f in modern {
        filters.push((s(f, "Key").unwrap_or("").to_string(), strings(f, "Values")));
    }
    for (k, vals) in &filters {
        if k.starts_with("tag:") || k == "tag-key" {
            if vals.is_empty() {
                return Err(err(
                    "InvalidInstanceInformationFilterValue",
                    format!("The filter {k} requires at least one value."),
                ));
            }
            continue;
        }
        if !INFO_KEYS.contains(&k.as_str()) {
            return Err(err(
                "InvalidFilterKey",
                format!(
                    "The filter key {k} is not valid. Valid keys: {}, tag:KEY, tag-key.",
                    INFO_KEYS.join(", ")
                ),
            ));
        }
        check_filter_values(k, vals)?;
    }
    let t = now();
    let nodes: Vec<ManagedInstance> =
        scan_rows::<ManagedInstance>(&*inner.store, INSTANCES, &scope.prefix())?
            .into_iter()
            .map(|(_, m)| m)
            .collect();
    let mut hits = Vec::new();
    for m in nodes {
        let node_tags = tags::get(inner, scope, "ManagedInstance", &m.instance_id)?;
        let ok = filters.iter().all(|(k, vals)| {
            let any = |h: &str| vals.iter().any(|v| v == h);
            match k.as_str() {
                "InstanceIds" => any(&m.instance_id),
                "AgentVersion" => any(&m.agent_version),
                "PingStatus" => any(effective_ping_status(&m, t)),
                "PlatformTypes" => any(&m.platform_type),
                "ActivationIds" => any(&m.activation_id),
                "IamRole" => any(&m.iam_role),
                "ResourceType" => any("ManagedInstance"),
                "AssociationStatus" => false,
                "tag-key" => node_tags.iter().any(|(tk, _)| any(tk)),
                other => match other.strip_prefix("tag:") {
                    Some(tk) => node_tags.iter().any(|(k2, v2)| k2 == tk && any(v2)),
                    None => false,
                },
            }
        });
        if ok {
            hits.push(m);
        }
    }
    let (hits, next) = page(
        hits,
        s(input, "NextToken"),
        max_results(input, 50),
        |m: &ManagedInstance| m.instance_id.clone(),
    )?;
    let docs: Vec<Value> = hits.iter().map(|m| instance_doc(m, t)).collect();
    let mut out = json!({ "InstanceInformationList": docs });
    if let Some(tok) = next {
        out["NextToken"] = json!(tok);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_are_checked_by_hash_expiry_and_limit() {
        let a = Activation {
            id: "x".into(),
            code_hash: hash_code("secret"),
            description: None,
            default_instance_name: None,
            iam_role: "r".into(),
            registration_limit: 1,
            registrations_count: 0,
            expiration: 100.0,
            created: 0.0,
            tags: vec![],
        };
        assert!(a.accepts("secret", 50.0));
        assert!(!a.accepts("wrong", 50.0));
        assert!(!a.accepts("secret", 150.0));
        let full = Activation {
            registrations_count: 1,
            ..a
        };
        assert!(!full.accepts("secret", 50.0));
    }

    #[test]
    fn filter_values_are_validated() {
        assert!(check_filter_values("PingStatus", &["Online".into()]).is_ok());
        assert_eq!(
            check_filter_values("PingStatus", &["Up".into()])
                .unwrap_err()
                .kind,
            "InvalidInstanceInformationFilterValue"
        );
        assert_eq!(
            check_filter_values("InstanceIds", &["web-1".into()])
                .unwrap_err()
                .kind,
            "InvalidInstanceId"
        );
        assert!(check_filter_values("PlatformTypes", &[]).is_err());
    }

    #[test]
    fn registration_consumes_the_activation_and_lists_the_node() {
        let i = crate::testing::inner();
        let sc = crate::testing::scope();
        let created = create_activation(
            &i,
            &sc,
            &json!({"IamRole": "role", "RegistrationLimit": 1, "DefaultInstanceName": "web",
                    "Tags": [{"Key": "env", "Value": "prod"}]}),
        )
        .unwrap();
        let id = created["ActivationId"].as_str().unwrap();
        let code = created["ActivationCode"].as_str().unwrap();
        let info = || NodeInfo {
            platform_type: "Linux".into(),
            agent_version: "0.1.0".into(),
            ..Default::default()
        };
        let bad = register(&i, &sc, id, "wrong-code", info()).unwrap_err();
        assert_eq!(bad.kind, "InvalidActivation");
        let m = register(&i, &sc, id, code, info()).unwrap();
        assert!(m.instance_id.starts_with("mi-") && m.instance_id.len() == 20);
        let again = register(&i, &sc, id, code, info()).unwrap_err();
        assert!(again.message.contains("limit"), "{}", again.message);

        let list = |f: Value| -> Vec<String> {
            describe_instance_information(&i, &sc, &f).unwrap()["InstanceInformationList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["InstanceId"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(list(json!({})), vec![m.instance_id.clone()]);
        assert_eq!(
            list(json!({"Filters": [{"Key": "tag:env", "Values": ["prod"]}]})),
            vec![m.instance_id.clone()]
        );
        assert!(
            list(json!({"Filters": [{"Key": "PingStatus", "Values": ["ConnectionLost"]}]}))
                .is_empty()
        );
        assert_eq!(
            list(
                json!({"InstanceInformationFilterList": [{"key": "ActivationIds", "valueSet": [id]}]})
            ),
            vec![m.instance_id.clone()]
        );
        let a = describe_activations(&i, &sc, &json!({})).unwrap();
        assert_eq!(a["ActivationList"][0]["RegistrationsCount"], 1);
        let tags = crate::tags::list_tags(
            &i,
            &sc,
            &json!({"ResourceType": "ManagedInstance", "ResourceId": m.instance_id}),
        )
        .unwrap();
        assert_eq!(tags["TagList"], json!([{"Key": "env", "Value": "prod"}]));
    }

    #[test]
    fn silent_nodes_lose_connection() {
        let m = ManagedInstance {
            ping_status: "Online".into(),
            last_ping: 1000.0,
            ..Default::default()
        };
        assert_eq!(effective_ping_status(&m, 1010.0), "Online");
        assert_eq!(effective_ping_status(&m, 2000.0), "ConnectionLost");
    }
}
