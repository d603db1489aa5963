//! Lookup tables (CSV reference data for Logs Insights' `lookup` command): CreateLookupTable,
//! GetLookupTable, DescribeLookupTables, UpdateLookupTable, DeleteLookupTable.
//!
//! The CSV body is validated (a header of unique, non-empty field names; every row with the
//! header's number of fields; at most [`MAX_BODY`] bytes) and stored whole with its field names and
//! record count. [`table`] gives readers (Insights) the header and rows of a table by name.
//!
//! Keys: table `logs.lookups`, `{account}/{region}/{name}`.

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{self, opt_str, req_str, store_err};
use crate::records::{self, key};

const TABLE: &str = "logs.lookups";
/// Largest table body accepted (bytes).
pub const MAX_BODY: usize = 10 * 1024 * 1024;
const MAX_TABLES: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lookup {
    name: String,
    arn: String,
    body: String,
    fields: Vec<String>,
    records: usize,
    description: Option<String>,
    kms_key_id: Option<String>,
    updated: i64,
    tags: std::collections::BTreeMap<String, String>,
}

fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A table's header and rows.
pub type Rows = (Vec<String>, Vec<Vec<String>>);

/// Parse a CSV body into (header, rows).
fn parse(body: &str) -> Result<Rows, ApiError> {
    if body.len() > MAX_BODY {
        return Err(error::invalid(format!(
            "tableBody is {} bytes; a lookup table holds at most {MAX_BODY} bytes.",
            body.len()
        )));
    }
    let mut lines = body.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = split(
        lines
            .next()
            .ok_or_else(|| error::invalid("tableBody must start with a CSV header line."))?,
    )
    .into_iter()
    .map(|h| h.trim().to_string())
    .collect();
    let mut seen = std::collections::HashSet::new();
    for h in &header {
        if h.is_empty() || !seen.insert(h.as_str()) {
            return Err(error::invalid(format!(
                "tableBody header fields must be non-empty and unique: '{h}'."
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, l) in lines.enumerate() {
        let row = split(l);
        if row.len() != header.len() {
            return Err(error::invalid(format!(
                "tableBody row {} has {} fields; the header has {}.",
                i + 2,
                row.len(),
                header.len()
            )));
        }
        rows.push(row);
    }
    Ok((header, rows))
}

fn summary(l: &Lookup) -> Value {
    let mut v = json!({
        "lookupTableArn": l.arn, "lookupTableName": l.name, "tableFields": l.fields,
        "recordsCount": l.records, "sizeBytes": l.body.len(), "lastUpdatedTime": l.updated,
    });
    if let Some(d) = &l.description {
        v["description"] = json!(d);
    }
    if let Some(k) = &l.kms_key_id {
        v["kmsKeyId"] = json!(k);
    }
    v
}

fn by_arn(store: &dyn ControlStore, ctx: &RequestContext, arn: &str) -> Result<Lookup, ApiError> {
    let name = arn
        .strip_prefix(&records::arn(ctx, "lookup-table", ""))
        .ok_or_else(|| error::not_found(format!("Lookup table {arn} does not exist.")))?;
    records::get(store, TABLE, &key(ctx, name))?
        .ok_or_else(|| error::not_found(format!("Lookup table {arn} does not exist.")))
}

/// The header and rows of lookup table `name` (for Insights' `lookup`).
pub fn table(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<Rows>, ApiError> {
    match records::get::<Lookup>(store, TABLE, &key(ctx, name))? {
        Some(l) => Ok(Some(parse(&l.body)?)),
        None => Ok(None),
    }
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
    now_ms: i64,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "CreateLookupTable" => {
            let name = req_str(input, "lookupTableName")?;
            let body = req_str(input, "tableBody")?;
            let (fields, rows) = parse(body)?;
            if records::get::<Lookup>(store, TABLE, &key(ctx, name))?.is_some() {
                return Err(error::already_exists(format!(
                    "Lookup table {name} already exists."
                )));
            }
            let count = store
                .scan(TABLE, &key(ctx, ""), None, MAX_TABLES + 1)
                .map_err(store_err)?
                .len();
            if count >= MAX_TABLES {
                return Err(error::limit_exceeded(
                    "An account can have at most 100 lookup tables.",
                ));
            }
            let l = Lookup {
                name: name.to_string(),
                arn: records::arn(ctx, "lookup-table", name),
                body: body.to_string(),
                fields,
                records: rows.len(),
                description: opt_str(input, "description").map(str::to_string),
                kms_key_id: opt_str(input, "kmsKeyId").map(str::to_string),
                updated: now_ms,
                tags: records::tags(input, "tags")?,
            };
            records::put(store, TABLE, &key(ctx, name), &l)?;
            Ok(json!({"lookupTableArn": l.arn, "createdAt": now_ms}))
        }
        "GetLookupTable" => {
            let l = by_arn(store, ctx, req_str(input, "lookupTableArn")?)?;
            let mut v = summary(&l);
            v["tableBody"] = json!(l.body);
            if let Some(o) = v.as_object_mut() {
                o.remove("tableFields");
                o.remove("recordsCount");
            }
            Ok(v)
        }
        "DescribeLookupTables" => {
            let limit = records::limit(input, 50, 100)?;
            let prefix = key(ctx, opt_str(input, "lookupTableNamePrefix").unwrap_or(""));
            let base = key(ctx, "");
            let (list, token) = records::page::<Lookup>(store, TABLE, &base, input, limit, &|l| {
                key(ctx, &l.name).starts_with(&prefix)
            })?;
            let mut out = json!({"lookupTables": list.iter().map(summary).collect::<Vec<_>>()});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        }
        "UpdateLookupTable" => {
            let mut l = by_arn(store, ctx, req_str(input, "lookupTableArn")?)?;
            let body = req_str(input, "tableBody")?;
            let (fields, rows) = parse(body)?;
            l.body = body.to_string();
            l.fields = fields;
            l.records = rows.len();
            if let Some(d) = opt_str(input, "description") {
                l.description = Some(d.to_string());
            }
            if let Some(k) = opt_str(input, "kmsKeyId") {
                l.kms_key_id = Some(k.to_string());
            }
            l.updated = now_ms;
            records::put(store, TABLE, &key(ctx, &l.name), &l)?;
            Ok(json!({"lookupTableArn": l.arn, "lastUpdatedTime": now_ms}))
        }
        "DeleteLookupTable" => {
            let l = by_arn(store, ctx, req_str(input, "lookupTableArn")?)?;
            store.delete(TABLE, &key(ctx, &l.name)).map_err(store_err)?;
            Ok(json!({}))
        }
        other => Err(crate::not_implemented(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_bodies_are_validated() {
        let (h, rows) = parse("id,name\n1,\"Smith, J\"\n2,Doe\n").unwrap();
        assert_eq!(h, ["id", "name"]);
        assert_eq!(rows[0], ["1", "Smith, J"]);
        assert!(parse("id,id\n1,2").is_err());
        assert!(parse("id,name\n1").is_err());
        assert!(parse("").is_err());
    }
}
