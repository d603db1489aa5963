//! SSM documents: CreateDocument (JSON or YAML content, Command or Automation, validated by
//! [`validate`]), versions with names and a default version, UpdateDocument (a new version;
//! identical content is `DuplicateDocumentContent`), UpdateDocumentDefaultVersion, GetDocument (any
//! version, content converted JSON↔YAML by [`yaml`]), DescribeDocument and DeleteDocument (whole or
//! one version). Amazon-owned documents ([`builtin`]) are compiled in, read-only and visible in every
//! account and region. One row per user document in `ssm.documents` (key `<account>/<region>/<name>`)
//! holds every version. Listing and sharing permissions live in [`list`].

pub mod builtin;
pub mod list;
pub mod validate;
pub mod yaml;

use opsloop_core::{ApiError, Value};
use opsloop_store::{StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{get_row, now, s, tag_list, tags_value, to_bytes, Scope};
use crate::error::{err, validation, InternalError};
use crate::tags;
use crate::Inner;

pub const TABLE: &str = "ssm.documents";
/// The owner of the built-in documents.
pub const AMAZON: &str = "Amazon";
const MAX_CONTENT: usize = 64 * 1024;
const MAX_VERSIONS: usize = 1000;

/// A document and its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub name: String,
    /// The owning account id, or `Amazon`.
    pub owner: String,
    pub doc_type: String,
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    pub created: f64,
    pub versions: Vec<DocVersion>,
    pub default_version: u64,
    pub next_version: u64,
    /// Accounts the document is shared with (`all`: public).
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub shared_version: Option<String>,
}

/// One version of a document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocVersion {
    pub version: u64,
    #[serde(default)]
    pub version_name: Option<String>,
    pub content: String,
    pub format: String,
    pub hash: String,
    pub created: f64,
    pub schema_version: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Vec<Value>,
    #[serde(default)]
    pub platform_types: Vec<String>,
}

impl Document {
    pub fn latest(&self) -> &DocVersion {
        &self.versions[self.versions.len() - 1]
    }
    pub fn default(&self) -> &DocVersion {
        self.versions
            .iter()
            .find(|v| v.version == self.default_version)
            .unwrap_or_else(|| self.latest())
    }
    pub fn is_amazon(&self) -> bool {
        self.owner == AMAZON
    }
}

/// The document name a request's `Name` refers to (a document ARN is accepted too).
pub fn plain_name(name: &str) -> &str {
    match name.split_once(":document/") {
        Some((head, rest)) if head.starts_with("arn:") => rest,
        _ => name,
    }
}

pub(crate) fn not_found(name: &str) -> ApiError {
    err(
        "InvalidDocument",
        format!("Document with name {name} does not exist."),
    )
}

fn bad_version() -> ApiError {
    err(
        "InvalidDocumentVersion",
        "Document version is not valid or does not exist.",
    )
}

/// A document by name: built-in, else the caller's own.
pub fn find(inner: &Inner, scope: &Scope, name: &str) -> Result<Option<Document>, ApiError> {
    let name = plain_name(name);
    if let Some(d) = builtin::get(name) {
        return Ok(Some(d.clone()));
    }
    Ok(get_row(&*inner.store, TABLE, &scope.key(name))?)
}

fn find_required(inner: &Inner, scope: &Scope, name: &str) -> Result<Document, ApiError> {
    find(inner, scope, name)?.ok_or_else(|| not_found(plain_name(name)))
}

/// The caller's own document (for tagging): its name.
pub fn owned_name(inner: &Inner, scope: &Scope, name: &str) -> Result<Option<String>, ApiError> {
    let name = plain_name(name);
    let d: Option<Document> = get_row(&*inner.store, TABLE, &scope.key(name))?;
    Ok(d.map(|d| d.name))
}

/// The version a request names by DocumentVersion (`$LATEST`, `$DEFAULT`, a number) and/or
/// VersionName; the default version when neither.
pub fn pick<'a>(
    d: &'a Document,
    version: Option<&str>,
    version_name: Option<&str>,
) -> Result<&'a DocVersion, ApiError> {
    let by_number = match version {
        None => None,
        Some("$LATEST") => Some(d.latest()),
        Some("$DEFAULT") => Some(d.default()),
        Some(n) => {
            let n: u64 = n.parse().map_err(|_| bad_version())?;
            Some(
                d.versions
                    .iter()
                    .find(|v| v.version == n)
                    .ok_or_else(bad_version)?,
            )
        }
    };
    let by_name = match version_name {
        None => None,
        Some(name) => Some(
            d.versions
                .iter()
                .find(|v| v.version_name.as_deref() == Some(name))
                .ok_or_else(bad_version)?,
        ),
    };
    match (by_number, by_name) {
        (Some(a), Some(b)) if a.version != b.version => Err(bad_version()),
        (Some(a), _) => Ok(a),
        (None, Some(b)) => Ok(b),
        (None, None) => Ok(d.default()),
    }
}

/// The `DocumentDescription` shape of version `v`.
pub fn description_doc(
    scope: &Scope,
    d: &Document,
    v: &DocVersion,
    doc_tags: &[(String, String)],
) -> Value {
    let mut doc = json!({
        "Hash": v.hash,
        "HashType": "Sha256",
        "Name": d.name,
        "Owner": d.owner,
        "CreatedDate": v.created,
        "Status": "Active",
        "DocumentVersion": v.version.to_string(),
        "Parameters": v.parameters,
        "PlatformTypes": v.platform_types,
        "DocumentType": d.doc_type,
        "SchemaVersion": v.schema_version,
        "LatestVersion": d.latest().version.to_string(),
        "DefaultVersion": d.default_version.to_string(),
        "DocumentFormat": v.format,
        "Tags": tags_value(doc_tags),
    });
    let obj = doc.as_object_mut().expect("object");
    if let Some(x) = &v.description {
        obj.insert("Description".into(), json!(x));
    }
    if let Some(x) = &v.version_name {
        obj.insert("VersionName".into(), json!(x));
    }
    if let Some(x) = &d.default().version_name {
        obj.insert("DefaultVersionName".into(), json!(x));
    }
    if let Some(x) = &d.display_name {
        obj.insert("DisplayName".into(), json!(x));
    }
    if let Some(x) = &d.target_type {
        obj.insert("TargetType".into(), json!(x));
    }
    if d.is_amazon() {
        obj.insert("Author".into(), json!("Amazon"));
    }
    let _ = scope;
    doc
}

/// Parse content in `format` into the value the validator checks.
pub fn parse_content(content: &str, format: &str) -> Result<Value, ApiError> {
    if content.len() > MAX_CONTENT {
        return Err(err(
            "MaxDocumentSizeExceeded",
            format!("The content of the document exceeds the maximum size of {MAX_CONTENT} bytes."),
        ));
    }
    match format {
        "JSON" => serde_json::from_str(content).map_err(|e| {
            err(
                "InvalidDocumentContent",
                format!(
                    "JSON not well-formed. at Line: {}, Column: {}",
                    e.line(),
                    e.column()
                ),
            )
        }),
        "YAML" => yaml::parse(content).map_err(|m| err("InvalidDocumentContent", m)),
        other => Err(err(
            "InvalidDocumentContent",
            format!("DocumentFormat {other} is not supported for Command and Automation documents; use JSON or YAML."),
        )),
    }
}

fn new_version(
    version: u64,
    version_name: Option<&str>,
    content: &str,
    format: &str,
    doc_type: &str,
) -> Result<DocVersion, ApiError> {
    let parsed = parse_content(content, format)?;
    let a = validate::validate(&parsed, doc_type)?;
    Ok(DocVersion {
        version,
        version_name: version_name.map(str::to_string),
        content: content.to_string(),
        format: format.to_string(),
        hash: hex::encode(Sha256::digest(content.as_bytes())),
        created: now(),
        schema_version: a.schema_version,
        description: a.description,
        parameters: a.parameters,
        platform_types: a.platform_types,
    })
}

fn check_user_name(name: &str) -> Result<(), ApiError> {
    let lower = name.to_ascii_lowercase();
    if ["aws", "amazon", "amzn"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(validation(format!(
            "Document name {name} is not valid: names can't start with aws, amazon or amzn (case-insensitive); those prefixes are reserved for documents owned by Amazon."
        )));
    }
    Ok(())
}

fn doc_op(scope: &Scope, d: &Document) -> WriteOp {
    WriteOp::Put {
        table: TABLE.into(),
        key: scope.key(&d.name),
        value: to_bytes(d),
    }
}

/// CreateDocument.
pub fn create_document(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let name = s(input, "Name").unwrap_or("");
    check_user_name(name)?;
    let doc_type = s(input, "DocumentType").unwrap_or("Command");
    let format = s(input, "DocumentFormat").unwrap_or("JSON");
    let content = s(input, "Content").unwrap_or("");
    let doc_tags = tag_list(input, "Tags");
    tags::validate_tags(&doc_tags)?;
    let already = || {
        err(
            "DocumentAlreadyExists",
            format!("Document with same name {name} already exists"),
        )
    };
    if builtin::get(name).is_some() {
        return Err(already());
    }
    let v = new_version(1, s(input, "VersionName"), content, format, doc_type)?;
    let d = Document {
        name: name.to_string(),
        owner: scope.account.clone(),
        doc_type: doc_type.to_string(),
        target_type: s(input, "TargetType").map(str::to_string),
        display_name: s(input, "DisplayName").map(str::to_string),
        created: v.created,
        versions: vec![v],
        default_version: 1,
        next_version: 2,
        permissions: Vec::new(),
        shared_version: None,
    };
    let mut ops = vec![WriteOp::Insert {
        table: TABLE.into(),
        key: scope.key(name),
        value: to_bytes(&d),
    }];
    if !doc_tags.is_empty() {
        ops.push(tags::put_op(scope, "Document", name, &doc_tags));
    }
    match inner.store.batch(ops) {
        Ok(()) => {}
        Err(StoreError::Conflict { .. }) => return Err(already()),
        Err(e) => return Err(InternalError::from(e).into()),
    }
    tracing::info!(document = %name, doc_type, "document created");
    Ok(json!({ "DocumentDescription": description_doc(scope, &d, d.latest(), &doc_tags) }))
}

fn load_own(inner: &Inner, scope: &Scope, name: &str, op: &str) -> Result<Document, ApiError> {
    let d = find_required(inner, scope, name)?;
    if d.is_amazon() {
        return Err(err(
            "InvalidDocumentOperation",
            format!(
                "You can't {op} the document {}: it is owned by Amazon.",
                d.name
            ),
        ));
    }
    Ok(d)
}

/// UpdateDocument: a new latest version (not made default).
pub fn update_document(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let name = s(input, "Name").unwrap_or("");
    let _guard = inner.lock.lock();
    let mut d = load_own(inner, scope, name, "update")?;
    match s(input, "DocumentVersion") {
        None | Some("$LATEST") => {}
        Some(v) if v == d.latest().version.to_string() => {}
        Some(_) => {
            return Err(err(
                "InvalidDocumentVersion",
                "Only the latest version of a document can be updated: use $LATEST or the latest version number.",
            ))
        }
    }
    let version_name = s(input, "VersionName");
    if let Some(vn) = version_name {
        if d.versions
            .iter()
            .any(|v| v.version_name.as_deref() == Some(vn))
        {
            return Err(err(
                "DuplicateDocumentVersionName",
                format!(
                    "The version name {vn} is already used by another version of the document."
                ),
            ));
        }
    }
    if d.versions.len() >= MAX_VERSIONS {
        return Err(err(
            "DocumentVersionLimitExceeded",
            format!("The document has the maximum number of versions ({MAX_VERSIONS}). Delete a version and try again."),
        ));
    }
    let format = s(input, "DocumentFormat").unwrap_or("JSON");
    let v = new_version(
        d.next_version,
        version_name,
        s(input, "Content").unwrap_or(""),
        format,
        &d.doc_type,
    )?;
    if d.versions.iter().any(|x| x.hash == v.hash) {
        return Err(err(
            "DuplicateDocumentContent",
            "The content of the association document matches another document. Change the content of the document and try again.",
        ));
    }
    d.next_version += 1;
    if let Some(t) = s(input, "TargetType") {
        d.target_type = Some(t.to_string());
    }
    if let Some(t) = s(input, "DisplayName") {
        d.display_name = Some(t.to_string());
    }
    d.versions.push(v);
    inner
        .store
        .batch(vec![doc_op(scope, &d)])
        .map_err(InternalError::from)?;
    let doc_tags = tags::get(inner, scope, "Document", &d.name)?;
    Ok(json!({ "DocumentDescription": description_doc(scope, &d, d.latest(), &doc_tags) }))
}

/// UpdateDocumentDefaultVersion.
pub fn update_document_default_version(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = s(input, "Name").unwrap_or("");
    let _guard = inner.lock.lock();
    let mut d = load_own(inner, scope, name, "change the default version of")?;
    let wanted = s(input, "DocumentVersion");
    if wanted.is_none() {
        return Err(bad_version());
    }
    let v = pick(&d, wanted, None)?.clone();
    d.default_version = v.version;
    inner
        .store
        .batch(vec![doc_op(scope, &d)])
        .map_err(InternalError::from)?;
    let mut desc = json!({ "Name": d.name, "DefaultVersion": v.version.to_string() });
    if let Some(n) = &v.version_name {
        desc["DefaultVersionName"] = json!(n);
    }
    Ok(json!({ "Description": desc }))
}

/// GetDocument.
pub fn get_document(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let d = find_required(inner, scope, s(input, "Name").unwrap_or(""))?;
    let v = pick(&d, s(input, "DocumentVersion"), s(input, "VersionName"))?;
    let want = s(input, "DocumentFormat").unwrap_or(&v.format);
    let content = if want == v.format {
        v.content.clone()
    } else {
        let parsed = parse_content(&v.content, &v.format)?;
        match want {
            "JSON" => serde_json::to_string_pretty(&parsed).unwrap_or_default(),
            "YAML" => yaml::emit(&parsed),
            other => {
                return Err(validation(format!(
                    "Converting a document to {other} is not supported; use JSON or YAML."
                )))
            }
        }
    };
    let mut out = json!({
        "Name": d.name,
        "CreatedDate": v.created,
        "DocumentVersion": v.version.to_string(),
        "Status": "Active",
        "Content": content,
        "DocumentType": d.doc_type,
        "DocumentFormat": want,
    });
    if let Some(n) = &v.version_name {
        out["VersionName"] = json!(n);
    }
    if let Some(n) = &d.display_name {
        out["DisplayName"] = json!(n);
    }
    Ok(out)
}

/// DescribeDocument.
pub fn describe_document(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let d = find_required(inner, scope, s(input, "Name").unwrap_or(""))?;
    let v = pick(&d, s(input, "DocumentVersion"), s(input, "VersionName"))?;
    let doc_tags = if d.is_amazon() {
        Vec::new()
    } else {
        tags::get(inner, scope, "Document", &d.name)?
    };
    Ok(json!({ "Document": description_doc(scope, &d, v, &doc_tags) }))
}

/// DeleteDocument: the whole document, or one (non-default) version.
pub fn delete_document(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let name = s(input, "Name").unwrap_or("");
    let _guard = inner.lock.lock();
    let mut d = load_own(inner, scope, name, "delete")?;
    let version = s(input, "DocumentVersion");
    let version_name = s(input, "VersionName");
    if version.is_none() && version_name.is_none() {
        inner
            .store
            .batch(vec![
                WriteOp::Delete {
                    table: TABLE.into(),
                    key: scope.key(&d.name),
                },
                tags::delete_op(scope, "Document", &d.name),
            ])
            .map_err(InternalError::from)?;
        return Ok(json!({}));
    }
    let v = pick(&d, version, version_name)?.version;
    if v == d.default_version {
        return Err(err(
            "InvalidDocumentOperation",
            "You can't delete the default version of a document. Change the default version, or delete the whole document.",
        ));
    }
    d.versions.retain(|x| x.version != v);
    inner
        .store
        .batch(vec![doc_op(scope, &d)])
        .map_err(InternalError::from)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests;
