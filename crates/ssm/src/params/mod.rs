//! Parameter Store: PutParameter (String, StringList, SecureString sealed by [`crypto::Sealer`]),
//! tiers and their size limits, AllowedPattern, DataType, policies, versions (at most 100 kept, as
//! AWS keeps them), labels and `name:label` / `name:version` selectors, reads, deletes and history.
//! One row per parameter in table `ssm.params` (key `<account>/<region>/<name>`) holds all of its
//! versions, so every change is one atomic write. Queries by path and filters live in [`query`],
//! name and label rules in [`names`].

pub mod crypto;
pub mod names;
pub mod policies;
pub mod query;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{b, get_row, s, strings, tag_list, to_bytes, Scope};
use crate::error::{err, validation};
use crate::tags;
use crate::Inner;

pub const TABLE: &str = "ssm.params";
/// Versions AWS keeps per parameter.
pub const MAX_VERSIONS: usize = 100;
const STANDARD_MAX: usize = 4096;
const ADVANCED_MAX: usize = 8192;
const DEFAULT_KEY_ID: &str = "alias/aws/ssm";
const MAX_LABELS_PER_VERSION: usize = 10;

/// A parameter and all its kept versions (ascending).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub versions: Vec<PVersion>,
}

/// One version of a parameter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PVersion {
    pub version: u64,
    #[serde(rename = "type")]
    pub ptype: String,
    /// The value, or for SecureString the sealed value.
    pub value: String,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_pattern: Option<String>,
    pub tier: String,
    pub data_type: String,
    #[serde(default)]
    pub policies: Vec<Value>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub modified: f64,
    pub user: String,
}

impl Param {
    pub fn latest(&self) -> &PVersion {
        // A stored parameter always has at least one version.
        &self.versions[self.versions.len() - 1]
    }
}

/// The name a request's `Name` refers to (a parameter ARN is accepted too).
pub fn plain_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("arn:") {
        if let Some((_, res)) = rest.split_once(":parameter/") {
            return if res.contains('/') {
                format!("/{res}")
            } else {
                res.to_string()
            };
        }
    }
    name.to_string()
}

/// The ARN of parameter `name`.
pub fn param_arn(scope: &Scope, name: &str) -> String {
    scope.arn(&format!("parameter/{}", name.trim_start_matches('/')))
}

pub(crate) fn load(inner: &Inner, scope: &Scope, name: &str) -> Result<Option<Param>, ApiError> {
    Ok(get_row(&*inner.store, TABLE, &scope.key(name))?)
}

/// The parameter a caller names: by name, or by ARN (`...:parameter/x` may name `x` or `/x`).
/// A parameter whose Expiration policy has passed reads as deleted (the sweeper removes it).
pub(crate) fn lookup(inner: &Inner, scope: &Scope, raw: &str) -> Result<Option<Param>, ApiError> {
    let name = plain_name(raw);
    let mut found = load(inner, scope, &name)?;
    if found.is_none() && raw.starts_with("arn:") && !name.starts_with('/') {
        found = load(inner, scope, &format!("/{name}"))?;
    }
    Ok(found.filter(|p| !policies::expired(p, crate::common::now())))
}

/// Every parameter of the scope, by name.
pub(crate) fn load_all(inner: &Inner, scope: &Scope) -> Result<Vec<Param>, ApiError> {
    load_prefixed(inner, scope, "")
}

/// The parameters whose names start with `name_prefix`, by name (rows are keyed by name, so this
/// is one ordered range scan).
pub(crate) fn load_prefixed(
    inner: &Inner,
    scope: &Scope,
    name_prefix: &str,
) -> Result<Vec<Param>, ApiError> {
    let rows: Vec<(String, Param)> =
        crate::common::scan_rows(&*inner.store, TABLE, &scope.key(name_prefix))?;
    let t = crate::common::now();
    Ok(rows
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| !policies::expired(p, t))
        .collect())
}

fn not_found(name: &str) -> ApiError {
    err("ParameterNotFound", format!("Parameter {name} not found."))
}

/// Split `name:selector` (the name may be an ARN); the selector is a version number or a label.
fn split_selector(raw: &str) -> (String, Option<String>) {
    if raw.starts_with("arn:") {
        if let Some(idx) = raw.find(":parameter/") {
            let (head, rest) = raw.split_at(idx + ":parameter/".len());
            return match rest.split_once(':') {
                Some((n, sel)) => (format!("{head}{n}"), Some(sel.to_string())),
                None => (raw.to_string(), None),
            };
        }
        return (raw.to_string(), None);
    }
    match raw.split_once(':') {
        Some((n, sel)) => (n.to_string(), Some(sel.to_string())),
        None => (raw.to_string(), None),
    }
}

/// The version a selector picks (latest when none).
pub fn select<'a>(p: &'a Param, selector: Option<&str>) -> Result<&'a PVersion, ApiError> {
    let Some(sel) = selector else {
        return Ok(p.latest());
    };
    let found = if let Ok(n) = sel.parse::<u64>() {
        p.versions.iter().find(|v| v.version == n)
    } else {
        p.versions
            .iter()
            .find(|v| v.labels.iter().any(|l| l == sel))
    };
    found.ok_or_else(|| {
        err(
            "ParameterVersionNotFound",
            format!(
                "Systems Manager could not find version {sel} of {}. Verify the version and try again.",
                p.name
            ),
        )
    })
}

/// The value a read returns: plaintext, or for SecureString without decryption its sealed form.
pub fn read_value(
    inner: &Inner,
    name: &str,
    v: &PVersion,
    decrypt: bool,
) -> Result<String, ApiError> {
    if v.ptype == "SecureString" && decrypt {
        Ok(inner.sealer.open_value(name, &v.value)?)
    } else {
        Ok(v.value.clone())
    }
}

/// The `Parameter` shape of one version.
pub fn parameter_doc(
    inner: &Inner,
    scope: &Scope,
    p: &Param,
    v: &PVersion,
    selector: Option<&str>,
    decrypt: bool,
) -> Result<Value, ApiError> {
    let mut doc = json!({
        "Name": p.name,
        "Type": v.ptype,
        "Value": read_value(inner, &p.name, v, decrypt)?,
        "Version": v.version,
        "LastModifiedDate": v.modified,
        "ARN": param_arn(scope, &p.name),
        "DataType": v.data_type,
    });
    if let (Some(sel), Some(obj)) = (selector, doc.as_object_mut()) {
        obj.insert("Selector".into(), json!(format!(":{sel}")));
    }
    Ok(doc)
}

fn policies_doc(v: &PVersion) -> Value {
    Value::Array(
        v.policies
            .iter()
            .map(|p| {
                json!({
                    "PolicyText": p.to_string(),
                    "PolicyType": p.get("Type").cloned().unwrap_or(Value::Null),
                    "PolicyStatus": "Pending",
                })
            })
            .collect(),
    )
}

/// The `ParameterMetadata` shape (DescribeParameters) of a parameter's latest version.
pub fn metadata_doc(scope: &Scope, p: &Param) -> Value {
    let v = p.latest();
    let mut doc = json!({
        "Name": p.name,
        "ARN": param_arn(scope, &p.name),
        "Type": v.ptype,
        "LastModifiedDate": v.modified,
        "LastModifiedUser": v.user,
        "Version": v.version,
        "Tier": v.tier,
        "Policies": policies_doc(v),
        "DataType": v.data_type,
    });
    let obj = doc.as_object_mut().expect("object");
    if let Some(k) = &v.key_id {
        obj.insert("KeyId".into(), json!(k));
    }
    if let Some(d) = &v.description {
        obj.insert("Description".into(), json!(d));
    }
    if let Some(a) = &v.allowed_pattern {
        obj.insert("AllowedPattern".into(), json!(a));
    }
    doc
}

fn check_value(
    ptype: &str,
    value: &str,
    pattern: Option<&str>,
    data_type: &str,
) -> Result<(), ApiError> {
    if let Some(pat) = pattern {
        let re = regex::Regex::new(pat).map_err(|_| {
            err(
                "InvalidAllowedPatternException",
                format!("The allowed pattern {pat} is not a valid regular expression."),
            )
        })?;
        let items: Vec<&str> = if ptype == "StringList" {
            value.split(',').collect()
        } else {
            vec![value]
        };
        if items.iter().any(|it| !re.is_match(it)) {
            return Err(err(
                "ParameterPatternMismatchException",
                format!("Parameter value, cannot be validated against allowedPattern: {pat}"),
            ));
        }
    }
    match data_type {
        "text" => {}
        "aws:ssm:integration" => {}
        "aws:ec2:image" => {
            if ptype != "String" {
                return Err(validation(
                    "The aws:ec2:image data type is supported only for parameters of type String.",
                ));
            }
            if !names::is_ami_id(value) {
                return Err(validation(format!(
                    "The value {value} is not a valid aws:ec2:image parameter value: an AMI ID looks like ami-0123456789abcdef0."
                )));
            }
        }
        other => {
            return Err(validation(format!(
                "The following data type is not supported: {other} (Data type names are all lowercase.)"
            )))
        }
    }
    Ok(())
}

/// PutParameter.
pub fn put_parameter(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let name = plain_name(s(input, "Name").unwrap_or(""));
    names::validate_name(&name)?;
    let value = s(input, "Value").unwrap_or("");
    let overwrite = b(input, "Overwrite");
    let req_tags = tag_list(input, "Tags");
    if overwrite && !req_tags.is_empty() {
        return Err(validation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource."));
    }
    tags::validate_tags(&req_tags)?;
    let policies = policies::parse(s(input, "Policies"), crate::common::now())?;

    let _guard = inner.lock.lock();
    let existing = load(inner, scope, &name)?;
    let prev = existing.as_ref().map(|p| p.latest().clone());
    if prev.is_some() && !overwrite {
        return Err(err(
            "ParameterAlreadyExists",
            "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
        ));
    }
    let ptype = match (s(input, "Type"), &prev) {
        (Some(t), _) => t.to_string(),
        (None, Some(p)) => p.ptype.clone(),
        (None, None) => {
            return Err(validation(
                "A parameter type is required when you create a parameter.",
            ))
        }
    };
    if let Some(prev) = &prev {
        if (prev.ptype == "SecureString") != (ptype == "SecureString") {
            return Err(err(
                "HierarchyTypeMismatchException",
                format!("Parameter Store doesn't support changing a parameter between {} and {ptype}. Create a new parameter, or delete {name} first.", prev.ptype),
            ));
        }
    }
    if !matches!(ptype.as_str(), "String" | "StringList" | "SecureString") {
        return Err(err(
            "UnsupportedParameterType",
            format!("The parameter type {ptype} is not supported. Use String, StringList or SecureString."),
        ));
    }
    let key_id = match s(input, "KeyId") {
        Some(k) if ptype != "SecureString" => {
            return Err(validation(format!(
                "KeyId {k} can be given only for SecureString parameters, not for {ptype}."
            )))
        }
        Some(k) => Some(k.to_string()),
        None if ptype == "SecureString" => Some(
            prev.as_ref()
                .and_then(|p| p.key_id.clone())
                .unwrap_or_else(|| DEFAULT_KEY_ID.to_string()),
        ),
        None => None,
    };
    let data_type = s(input, "DataType")
        .map(str::to_string)
        .or_else(|| prev.as_ref().map(|p| p.data_type.clone()))
        .unwrap_or_else(|| "text".to_string());
    let allowed_pattern = s(input, "AllowedPattern")
        .map(str::to_string)
        .or_else(|| prev.as_ref().and_then(|p| p.allowed_pattern.clone()));
    let description = s(input, "Description")
        .map(str::to_string)
        .or_else(|| prev.as_ref().and_then(|p| p.description.clone()));
    check_value(&ptype, value, allowed_pattern.as_deref(), &data_type)?;

    // Tier: requested, else kept (never downgraded), else Standard.
    let prev_tier = prev.as_ref().map(|p| p.tier.as_str());
    let size = value.len();
    let tier = match s(input, "Tier") {
        Some("Intelligent-Tiering") => {
            if size > STANDARD_MAX || !policies.is_empty() || prev_tier == Some("Advanced") {
                "Advanced"
            } else {
                "Standard"
            }
        }
        Some("Standard") if prev_tier == Some("Advanced") => {
            return Err(validation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter."));
        }
        Some(t) => t,
        None => prev_tier.unwrap_or("Standard"),
    }
    .to_string();
    if tier == "Standard" && size > STANDARD_MAX {
        return Err(validation(format!("Standard tier parameters support a maximum parameter value of {STANDARD_MAX} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")));
    }
    if size > ADVANCED_MAX {
        return Err(validation(format!(
            "Advanced tier parameters support a maximum parameter value of {ADVANCED_MAX} characters."
        )));
    }
    if tier == "Standard" && !policies.is_empty() {
        return Err(validation("Parameter policies are supported only for the advanced-parameter tier. Use Tier Advanced or Intelligent-Tiering."));
    }
    let stored_value = if ptype == "SecureString" {
        inner.sealer.seal(&name, value)?
    } else {
        value.to_string()
    };

    let mut param = existing.unwrap_or(Param {
        name: name.clone(),
        versions: Vec::new(),
    });
    let version = param.versions.last().map(|v| v.version + 1).unwrap_or(1);
    param.versions.push(PVersion {
        version,
        ptype,
        value: stored_value,
        key_id,
        description,
        allowed_pattern,
        tier: tier.clone(),
        data_type,
        policies,
        labels: Vec::new(),
        modified: crate::common::now(),
        user: scope.principal.clone(),
    });
    if param.versions.len() > MAX_VERSIONS {
        let oldest = &param.versions[0];
        if !oldest.labels.is_empty() {
            return Err(err("ParameterMaxVersionLimitExceeded", format!(
                "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
                oldest.version
            )));
        }
        param.versions.remove(0);
    }
    let mut ops = vec![WriteOp::Put {
        table: TABLE.into(),
        key: scope.key(&name),
        value: to_bytes(&param),
    }];
    if !req_tags.is_empty() {
        ops.push(tags::put_op(scope, "Parameter", &name, &req_tags));
    }
    let operation = if version == 1 { "Create" } else { "Update" };
    ops.push(change_event(scope, &param, operation));
    inner.commit(ops)?;
    tracing::debug!(name = %name, version, "parameter written");
    Ok(json!({ "Version": version, "Tier": tier }))
}

/// GetParameter.
pub fn get_parameter(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let raw = s(input, "Name").unwrap_or("");
    let (name, sel) = split_selector(raw);
    let p = lookup(inner, scope, &name)?.ok_or_else(|| not_found(&plain_name(&name)))?;
    let v = select(&p, sel.as_deref())?;
    let doc = parameter_doc(
        inner,
        scope,
        &p,
        v,
        sel.as_deref(),
        b(input, "WithDecryption"),
    )?;
    Ok(json!({ "Parameter": doc }))
}

/// GetParameters.
pub fn get_parameters(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let decrypt = b(input, "WithDecryption");
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for raw in strings(input, "Names") {
        if !seen.insert(raw.clone()) {
            continue;
        }
        let (name, sel) = split_selector(&raw);
        let Some(p) = lookup(inner, scope, &name)? else {
            invalid.push(raw);
            continue;
        };
        match select(&p, sel.as_deref()) {
            Ok(v) => found.push(parameter_doc(inner, scope, &p, v, sel.as_deref(), decrypt)?),
            Err(_) => invalid.push(raw),
        }
    }
    Ok(json!({ "Parameters": found, "InvalidParameters": invalid }))
}

/// DeleteParameter.
pub fn delete_parameter(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let raw = s(input, "Name").unwrap_or("");
    let _guard = inner.lock.lock();
    let p = lookup(inner, scope, raw)?.ok_or_else(|| not_found(&plain_name(raw)))?;
    remove(inner, scope, &p)?;
    Ok(json!({}))
}

/// The "Parameter Store Change" event of `operation` on `p` (its latest version).
fn change_event(scope: &Scope, p: &Param, operation: &str) -> WriteOp {
    let v = p.latest();
    crate::bus::op(
        scope,
        "Parameter Store Change",
        vec![param_arn(scope, &p.name)],
        json!({
            "operation": operation,
            "name": p.name,
            "type": v.ptype,
            "description": v.description.clone().unwrap_or_default(),
        }),
    )
}

fn remove(inner: &Inner, scope: &Scope, p: &Param) -> Result<(), ApiError> {
    inner.commit(vec![
        WriteOp::Delete {
            table: TABLE.into(),
            key: scope.key(&p.name),
        },
        tags::delete_op(scope, "Parameter", &p.name),
        change_event(scope, p, "Delete"),
    ])
}

/// DeleteParameters.
pub fn delete_parameters(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let _guard = inner.lock.lock();
    let mut deleted = Vec::new();
    let mut invalid = Vec::new();
    for raw in strings(input, "Names") {
        match lookup(inner, scope, &raw)? {
            Some(p) => {
                remove(inner, scope, &p)?;
                deleted.push(raw);
            }
            None => invalid.push(raw),
        }
    }
    Ok(json!({ "DeletedParameters": deleted, "InvalidParameters": invalid }))
}

/// GetParameterHistory.
pub fn get_parameter_history(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let raw = s(input, "Name").unwrap_or("");
    let p = lookup(inner, scope, raw)?.ok_or_else(|| not_found(&plain_name(raw)))?;
    let decrypt = b(input, "WithDecryption");
    let mut entries = Vec::new();
    for v in &p.versions {
        let mut e = json!({
            "Name": p.name,
            "Type": v.ptype,
            "LastModifiedDate": v.modified,
            "LastModifiedUser": v.user,
            "Value": read_value(inner, &p.name, v, decrypt)?,
            "Version": v.version,
            "Labels": v.labels,
            "Tier": v.tier,
            "Policies": policies_doc(v),
            "DataType": v.data_type,
        });
        let obj = e.as_object_mut().expect("object");
        if let Some(k) = &v.key_id {
            obj.insert("KeyId".into(), json!(k));
        }
        if let Some(d) = &v.description {
            obj.insert("Description".into(), json!(d));
        }
        if let Some(a) = &v.allowed_pattern {
            obj.insert("AllowedPattern".into(), json!(a));
        }
        entries.push(e);
    }
    let max = crate::common::max_results(input, 50);
    let (page, next) = crate::common::page(entries, s(input, "NextToken"), max, |e| {
        e.get("Version").map(|v| v.to_string()).unwrap_or_default()
    })?;
    let mut out = json!({ "Parameters": page });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn write_param(
    inner: &Inner,
    scope: &Scope,
    p: &Param,
    event: Option<&str>,
) -> Result<(), ApiError> {
    let mut ops = vec![WriteOp::Put {
        table: TABLE.into(),
        key: scope.key(&p.name),
        value: to_bytes(p),
    }];
    if let Some(operation) = event {
        ops.push(change_event(scope, p, operation));
    }
    inner.commit(ops)
}

/// LabelParameterVersion: attach labels to a version (moving them from any other version).
pub fn label_parameter_version(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let raw = s(input, "Name").unwrap_or("");
    let labels = strings(input, "Labels");
    let _guard = inner.lock.lock();
    let mut p = lookup(inner, scope, raw)?.ok_or_else(|| not_found(&plain_name(raw)))?;
    let name = p.name.clone();
    let target = match crate::common::i(input, "ParameterVersion") {
        Some(n) => n as u64,
        None => p.latest().version,
    };
    let idx = p
        .versions
        .iter()
        .position(|v| v.version == target)
        .ok_or_else(|| {
            err(
                "ParameterVersionNotFound",
                format!("Systems Manager could not find version {target} of {name}. Verify the version and try again."),
            )
        })?;
    let (valid, invalid): (Vec<String>, Vec<String>) =
        labels.into_iter().partition(|l| names::is_valid_label(l));
    let mut merged = p.versions[idx].labels.clone();
    for l in &valid {
        if !merged.contains(l) {
            merged.push(l.clone());
        }
    }
    if merged.len() > MAX_LABELS_PER_VERSION {
        return Err(err(
            "ParameterVersionLabelLimitExceeded",
            format!("A parameter version can have maximum {MAX_LABELS_PER_VERSION} labels. Move one or more labels to another version and try again."),
        ));
    }
    for (i, v) in p.versions.iter_mut().enumerate() {
        if i == idx {
            v.labels = merged.clone();
        } else {
            v.labels.retain(|l| !valid.contains(l));
        }
    }
    write_param(inner, scope, &p, Some("LabelParameterVersion"))?;
    Ok(json!({ "InvalidLabels": invalid, "ParameterVersion": target }))
}

/// UnlabelParameterVersion.
pub fn unlabel_parameter_version(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let raw = s(input, "Name").unwrap_or("");
    let labels = strings(input, "Labels");
    let target = crate::common::i(input, "ParameterVersion").unwrap_or(0) as u64;
    let _guard = inner.lock.lock();
    let mut p = lookup(inner, scope, raw)?.ok_or_else(|| not_found(&plain_name(raw)))?;
    let name = p.name.clone();
    let v = p
        .versions
        .iter_mut()
        .find(|v| v.version == target)
        .ok_or_else(|| {
            err(
                "ParameterVersionNotFound",
                format!("Systems Manager could not find version {target} of {name}. Verify the version and try again."),
            )
        })?;
    let (removed, invalid): (Vec<String>, Vec<String>) =
        labels.into_iter().partition(|l| v.labels.contains(l));
    v.labels.retain(|l| !removed.contains(l));
    write_param(inner, scope, &p, None)?;
    Ok(json!({ "RemovedLabels": removed, "InvalidLabels": invalid }))
}

/// Does the parameter exist (for tagging)?
pub fn exists(inner: &Inner, scope: &Scope, name: &str) -> Result<Option<String>, ApiError> {
    Ok(lookup(inner, scope, name)?.map(|p| p.name))
}

#[cfg(test)]
mod tests;
