//! Document listings and sharing: ListDocuments (the legacy DocumentFilterList and the Filters of
//! Owner Self / Amazon / Public / Private / All, DocumentType, Name prefix, PlatformTypes,
//! TargetType, SearchKeyword and `tag:KEY`), ListDocumentVersions, and the stored sharing
//! permissions of DescribeDocumentPermission / ModifyDocumentPermission.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use super::{builtin, find, not_found, Document, TABLE};
use crate::common::{arr, max_results, page, s, scan_rows, strings, tags_value, to_bytes, Scope};
use crate::error::{err, validation, InternalError};
use crate::tags;
use crate::Inner;

const MAX_SHARED_ACCOUNTS: usize = 20;
const OWNERS: &[&str] = &["Self", "Amazon", "Public", "Private", "ThirdParty", "All"];

fn identifier(d: &Document, doc_tags: &[(String, String)]) -> Value {
    let v = d.default();
    let mut out = json!({
        "Name": d.name,
        "CreatedDate": d.created,
        "Owner": d.owner,
        "PlatformTypes": v.platform_types,
        "DocumentVersion": v.version.to_string(),
        "DocumentType": d.doc_type,
        "SchemaVersion": v.schema_version,
        "DocumentFormat": v.format,
        "Tags": tags_value(doc_tags),
    });
    if let Some(x) = &v.version_name {
        out["VersionName"] = json!(x);
    }
    if let Some(x) = &d.display_name {
        out["DisplayName"] = json!(x);
    }
    if let Some(x) = &d.target_type {
        out["TargetType"] = json!(x);
    }
    if d.is_amazon() {
        out["Author"] = json!("Amazon");
    }
    out
}

/// (key, values) filters from either filter form.
fn filters(input: &Value) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let legacy = arr(input, "DocumentFilterList");
    let modern = arr(input, "Filters");
    if !legacy.is_empty() && !modern.is_empty() {
        return Err(validation(
            "You can use either DocumentFilterList or Filters in a single request, not both.",
        ));
    }
    let mut out: Vec<(String, Vec<String>)> = legacy
        .iter()
        .map(|f| {
            (
                s(f, "key").unwrap_or("").to_string(),
                vec![s(f, "value").unwrap_or("").to_string()],
            )
        })
        .collect();
    for f in modern {
        out.push((s(f, "Key").unwrap_or("").to_string(), strings(f, "Values")));
    }
    for (k, vals) in &out {
        match k.as_str() {
            "Owner" => {
                if vals.len() != 1 {
                    return Err(validation("Only one Owner can be specified in a request."));
                }
                if !OWNERS.contains(&vals[0].as_str()) {
                    return Err(err(
                        "InvalidFilterKey",
                        format!("The Owner filter value {} is not valid. Valid values: {}.", vals[0], OWNERS.join(", ")),
                    ));
                }
            }
            "Name" | "DocumentType" | "PlatformTypes" | "TargetType" | "SearchKeyword" => {}
            k if k.starts_with("tag:") => {}
            other => {
                return Err(err(
                    "InvalidFilterKey",
                    format!("The filter key {other} is not valid. Valid keys: Owner, Name, DocumentType, PlatformTypes, TargetType, SearchKeyword, tag:KEY."),
                ))
            }
        }
    }
    Ok(out)
}

/// ListDocuments.
pub fn list_documents(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let filters = filters(input)?;
    let owner = filters
        .iter()
        .find(|(k, _)| k == "Owner")
        .map(|(_, v)| v[0].clone())
        .unwrap_or_else(|| "All".to_string());
    let own: Vec<Document> = scan_rows::<Document>(&*inner.store, TABLE, &scope.prefix())?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let mut docs: Vec<Document> = Vec::new();
    if matches!(owner.as_str(), "Amazon" | "All") {
        docs.extend(builtin::all().iter().cloned());
    }
    match owner.as_str() {
        "Self" | "Private" | "All" => docs.extend(own),
        "Public" => docs.extend(
            own.into_iter()
                .filter(|d| d.permissions.iter().any(|p| p.eq_ignore_ascii_case("all"))),
        ),
        _ => {}
    }
    let mut hits = Vec::new();
    for d in docs {
        let doc_tags = if d.is_amazon() {
            Vec::new()
        } else {
            tags::get(inner, scope, "Document", &d.name)?
        };
        let v = d.default();
        let ok = filters.iter().all(|(k, vals)| match k.as_str() {
            "Owner" => true,
            "Name" => vals.iter().any(|p| d.name.starts_with(p.as_str())),
            "DocumentType" => vals.contains(&d.doc_type),
            "PlatformTypes" => vals.iter().any(|p| v.platform_types.contains(p)),
            "TargetType" => vals
                .iter()
                .any(|t| d.target_type.as_deref() == Some(t.as_str())),
            "SearchKeyword" => vals.iter().any(|w| {
                let w = w.to_ascii_lowercase();
                d.name.to_ascii_lowercase().contains(&w)
                    || v.description
                        .as_deref()
                        .map(|x| x.to_ascii_lowercase().contains(&w))
                        .unwrap_or(false)
            }),
            k => match k.strip_prefix("tag:") {
                Some(tk) => doc_tags
                    .iter()
                    .any(|(k2, v2)| k2 == tk && (vals.is_empty() || vals.contains(v2))),
                None => false,
            },
        });
        if ok {
            hits.push(identifier(&d, &doc_tags));
        }
    }
    let (hits, next) = page(
        hits,
        s(input, "NextToken"),
        max_results(input, 50),
        |v: &Value| s(v, "Name").unwrap_or("").to_string(),
    )?;
    let mut out = json!({ "DocumentIdentifiers": hits });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// ListDocumentVersions: newest first.
pub fn list_document_versions(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = s(input, "Name").unwrap_or("");
    let d = find(inner, scope, name)?.ok_or_else(|| not_found(name))?;
    let versions: Vec<Value> = d
        .versions
        .iter()
        .rev()
        .map(|v| {
            let mut x = json!({
                "Name": d.name,
                "DocumentVersion": v.version.to_string(),
                "CreatedDate": v.created,
                "IsDefaultVersion": v.version == d.default_version,
                "DocumentFormat": v.format,
                "Status": "Active",
            });
            if let Some(n) = &v.version_name {
                x["VersionName"] = json!(n);
            }
            if let Some(n) = &d.display_name {
                x["DisplayName"] = json!(n);
            }
            x
        })
        .collect();
    let (versions, next) = page(
        versions,
        s(input, "NextToken"),
        max_results(input, 50),
        |v: &Value| s(v, "DocumentVersion").unwrap_or("").to_string(),
    )?;
    let mut out = json!({ "DocumentVersions": versions });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

fn own_document(inner: &Inner, scope: &Scope, name: &str) -> Result<Document, ApiError> {
    let d = find(inner, scope, name)?.ok_or_else(|| not_found(name))?;
    if d.is_amazon() {
        return Err(err(
            "InvalidDocumentOperation",
            format!(
                "The sharing permissions of {} can't be read or changed: it is owned by Amazon.",
                d.name
            ),
        ));
    }
    Ok(d)
}

/// DescribeDocumentPermission.
pub fn describe_document_permission(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let d = own_document(inner, scope, s(input, "Name").unwrap_or(""))?;
    let shared = d
        .shared_version
        .clone()
        .unwrap_or_else(|| "$DEFAULT".to_string());
    let info: Vec<Value> = d
        .permissions
        .iter()
        .map(|a| json!({ "AccountId": a, "SharedDocumentVersion": shared }))
        .collect();
    Ok(json!({ "AccountIds": d.permissions, "AccountSharingInfoList": info }))
}

/// ModifyDocumentPermission.
pub fn modify_document_permission(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let _guard = inner.lock.lock();
    let mut d = own_document(inner, scope, s(input, "Name").unwrap_or(""))?;
    let add = strings(input, "AccountIdsToAdd");
    let remove = strings(input, "AccountIdsToRemove");
    for a in add.iter().chain(remove.iter()) {
        let ok = a.eq_ignore_ascii_case("all")
            || (a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(validation(format!(
                "Account id {a} is not valid: use a 12-digit account id or All."
            )));
        }
    }
    if let Some(v) = s(input, "SharedDocumentVersion") {
        if v != "$DEFAULT" && v != "$LATEST" && super::pick(&d, Some(v), None).is_err() {
            return Err(err(
                "InvalidDocumentVersion",
                format!("The shared document version {v} does not exist."),
            ));
        }
        d.shared_version = Some(v.to_string());
    }
    for a in add {
        let a = if a.eq_ignore_ascii_case("all") {
            "all".to_string()
        } else {
            a
        };
        if !d.permissions.contains(&a) {
            d.permissions.push(a);
        }
    }
    d.permissions
        .retain(|p| !remove.iter().any(|r| r.eq_ignore_ascii_case(p)));
    if d.permissions.len() > MAX_SHARED_ACCOUNTS {
        return Err(err(
            "DocumentPermissionLimit",
            format!("A document can be shared with at most {MAX_SHARED_ACCOUNTS} accounts."),
        ));
    }
    inner
        .store
        .put(TABLE, &scope.key(&d.name), &to_bytes(&d))
        .map_err(InternalError::from)?;
    Ok(json!({}))
}
