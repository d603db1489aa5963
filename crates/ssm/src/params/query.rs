//! Parameter queries: GetParametersByPath (one level or recursive, with ParameterFilters) and
//! DescribeParameters (the legacy `Filters` or `ParameterFilters` on Name, Type, KeyId, Path, Tier,
//! DataType, Label and `tag:KEY`, with the Equals / BeginsWith / Contains / OneLevel / Recursive
//! options), both paginated.

use opsloop_core::{ApiError, Value};
use serde_json::json;

use super::{load_all, load_prefixed, metadata_doc, names, parameter_doc, select, Param};
use crate::common::{arr, b, max_results, page, s, strings, Scope};
use crate::error::{err, validation};
use crate::tags;
use crate::Inner;

/// One parsed ParameterStringFilter.
#[derive(Debug, Clone)]
pub struct Filter {
    pub key: String,
    pub option: String,
    pub values: Vec<String>,
}

fn invalid_option() -> ApiError {
    err("InvalidFilterOption", "The filter option is not valid. Valid options are Equals and BeginsWith. For Path filter, valid options are Recursive and OneLevel.")
}

/// Parse and check ParameterFilters; `by_path` restricts keys to those GetParametersByPath takes.
pub fn parse_filters(list: &[Value], by_path: bool) -> Result<Vec<Filter>, ApiError> {
    let mut out = Vec::new();
    for f in list {
        let key = s(f, "Key").unwrap_or("").to_string();
        let values = strings(f, "Values");
        let is_tag = key.starts_with("tag:");
        let allowed_keys: &[&str] = if by_path {
            &["Type", "KeyId", "Label"]
        } else {
            &["Name", "Type", "KeyId", "Path", "Tier", "DataType", "Label"]
        };
        if !(allowed_keys.contains(&key.as_str()) || (is_tag && !by_path)) {
            return Err(err(
                "InvalidFilterKey",
                format!("The filter key {key} is not valid for this operation."),
            ));
        }
        let default = if key == "Path" { "OneLevel" } else { "Equals" };
        let option = s(f, "Option").unwrap_or(default).to_string();
        let ok = match key.as_str() {
            "Name" => matches!(option.as_str(), "Equals" | "BeginsWith" | "Contains"),
            "Path" => matches!(option.as_str(), "OneLevel" | "Recursive"),
            "KeyId" => matches!(option.as_str(), "Equals" | "BeginsWith"),
            _ if is_tag => matches!(option.as_str(), "Equals" | "BeginsWith"),
            _ => option == "Equals",
        };
        if !ok {
            return Err(invalid_option());
        }
        if values.is_empty() && !is_tag {
            return Err(err(
                "InvalidFilterValue",
                format!("The filter {key} requires at least one value."),
            ));
        }
        let check = |allowed: &[&str]| -> Result<(), ApiError> {
            match values.iter().find(|v| !allowed.contains(&v.as_str())) {
                Some(v) => Err(err(
                    "InvalidFilterValue",
                    format!(
                        "The filter value {v} is not valid for key {key}. Valid values: {}.",
                        allowed.join(", ")
                    ),
                )),
                None => Ok(()),
            }
        };
        match key.as_str() {
            "Type" => check(&["String", "StringList", "SecureString"])?,
            "Tier" => check(&["Standard", "Advanced", "Intelligent-Tiering"])?,
            "Path" => {
                if let Some(v) = values.iter().find(|v| !v.starts_with('/')) {
                    return Err(err(
                        "InvalidFilterValue",
                        format!("The Path filter value {v} is not valid: a path must begin with a slash (/)."),
                    ));
                }
            }
            _ => {}
        }
        out.push(Filter {
            key,
            option,
            values,
        });
    }
    Ok(out)
}

fn str_match(option: &str, have: &str, want: &str) -> bool {
    match option {
        "BeginsWith" => have.starts_with(want),
        "Contains" => have.contains(want),
        _ => have == want,
    }
}

/// Does the parameter match every filter? `tags_of` is consulted only for tag filters.
pub fn matches(
    p: &Param,
    filters: &[Filter],
    tags_of: &mut dyn FnMut() -> Vec<(String, String)>,
) -> bool {
    let v = p.latest();
    filters.iter().all(|f| {
        let any = |have: &str| f.values.iter().any(|w| str_match(&f.option, have, w));
        match f.key.as_str() {
            "Name" => f.values.iter().any(|w| {
                // Name filters match with or without the leading slash of the value.
                let w2 = if f.option == "Contains" || w.starts_with('/') || !p.name.starts_with('/')
                {
                    w.clone()
                } else {
                    format!("/{w}")
                };
                str_match(&f.option, &p.name, &w2)
            }),
            "Type" => any(&v.ptype),
            "KeyId" => v.key_id.as_deref().map(any).unwrap_or(false),
            "Tier" => any(&v.tier),
            "DataType" => any(&v.data_type),
            "Label" => p
                .versions
                .iter()
                .any(|ver| ver.labels.iter().any(|l| f.values.contains(l))),
            "Path" => f.values.iter().any(|path| {
                let path = if path.len() > 1 {
                    path.trim_end_matches('/')
                } else {
                    path
                };
                names::under_path(&p.name, path, f.option == "Recursive")
            }),
            key => match key.strip_prefix("tag:") {
                Some(tk) => {
                    let tags = tags_of();
                    tags.iter().any(|(k, val)| {
                        k == tk
                            && (f.values.is_empty()
                                || f.values.iter().any(|w| str_match(&f.option, val, w)))
                    })
                }
                None => false,
            },
        }
    })
}

/// GetParametersByPath.
pub fn get_parameters_by_path(
    inner: &Inner,
    scope: &Scope,
    input: &Value,
) -> Result<Value, ApiError> {
    let path = names::validate_path(s(input, "Path").unwrap_or(""))?;
    let recursive = b(input, "Recursive");
    let decrypt = b(input, "WithDecryption");
    let filters = parse_filters(arr(input, "ParameterFilters"), true)?;
    let labels: Vec<String> = filters
        .iter()
        .filter(|f| f.key == "Label")
        .flat_map(|f| f.values.clone())
        .collect();
    let mut hits = Vec::new();
    let name_prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    for p in load_prefixed(inner, scope, &name_prefix)? {
        if !names::under_path(&p.name, &path, recursive) {
            continue;
        }
        if !matches(&p, &filters, &mut Vec::new) {
            continue;
        }
        hits.push(p);
    }
    let (hits, next) = page(
        hits,
        s(input, "NextToken"),
        max_results(input, 10),
        |p: &Param| p.name.clone(),
    )?;
    let mut docs = Vec::new();
    for p in &hits {
        // With a Label filter, the labelled version is the one returned.
        let v = match labels.iter().find_map(|l| select(p, Some(l.as_str())).ok()) {
            Some(v) => v,
            None => p.latest(),
        };
        docs.push(parameter_doc(inner, scope, p, v, None, decrypt)?);
    }
    let mut out = json!({ "Parameters": docs });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// DescribeParameters.
pub fn describe_parameters(inner: &Inner, scope: &Scope, input: &Value) -> Result<Value, ApiError> {
    let legacy = arr(input, "Filters");
    let modern = arr(input, "ParameterFilters");
    if !legacy.is_empty() && !modern.is_empty() {
        return Err(validation(
            "You can use either Filters or ParameterFilters in a single request.",
        ));
    }
    let filters = if legacy.is_empty() {
        parse_filters(modern, false)?
    } else {
        // Legacy filters: Name (begins with), Type, KeyId (equal).
        let mut out = Vec::new();
        for f in legacy {
            let key = s(f, "Key").unwrap_or("");
            let option = if key == "Name" {
                "BeginsWith"
            } else {
                "Equals"
            };
            let parsed = parse_filters(
                &[
                    json!({"Key": key, "Option": option, "Values": f.get("Values").cloned().unwrap_or(json!([]))}),
                ],
                false,
            )?;
            out.extend(parsed);
        }
        out
    };
    let mut hits = Vec::new();
    for p in load_all(inner, scope)? {
        let mut tags_of = || tags::get(inner, scope, "Parameter", &p.name).unwrap_or_default();
        if matches(&p, &filters, &mut tags_of) {
            hits.push(p);
        }
    }
    let (hits, next) = page(
        hits,
        s(input, "NextToken"),
        max_results(input, 50),
        |p: &Param| p.name.clone(),
    )?;
    let docs: Vec<Value> = hits.iter().map(|p| metadata_doc(scope, p)).collect();
    let mut out = json!({ "Parameters": docs });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
