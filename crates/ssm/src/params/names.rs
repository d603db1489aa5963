//! Naming rules of Parameter Store: parameter names and hierarchies (fully qualified paths, at most
//! 15 levels, reserved `aws`/`ssm` prefixes, allowed characters), version labels, and the format of
//! `aws:ec2:image` values.

use opsloop_core::ApiError;

use crate::error::{err, validation};

/// Deepest hierarchy AWS allows.
pub const MAX_DEPTH: usize = 15;
const MAX_NAME: usize = 1011;

const NAME_RULES: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// Check a parameter name for PutParameter.
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(validation(format!(
            "Parameter name must be between 1 and {MAX_NAME} characters long."
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return Err(validation(NAME_RULES));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(validation(
            "Parameter name must be a fully qualified name: a name that contains a slash (/) must begin with one, e.g. /app/db/host.",
        ));
    }
    if name.ends_with('/') || name.contains("//") {
        return Err(validation(NAME_RULES));
    }
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(validation(NAME_RULES));
    }
    if depth(name) > MAX_DEPTH {
        return Err(err(
            "HierarchyLevelLimitExceededException",
            format!("Parameter path exceeded maximum hierarchy level {MAX_DEPTH}: {name} has {} levels.", depth(name)),
        ));
    }
    Ok(())
}

/// Hierarchy levels of a name (`/a/b` has 2; `a` has 1).
pub fn depth(name: &str) -> usize {
    name.trim_start_matches('/').split('/').count()
}

/// Check a path for GetParametersByPath; returns it without a trailing slash (except `/`).
pub fn validate_path(path: &str) -> Result<String, ApiError> {
    if !path.starts_with('/') {
        return Err(validation(format!(
            "The parameter path {path} is not valid: a path must begin with a slash (/)."
        )));
    }
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if trimmed.len() > 1 && depth(trimmed) > MAX_DEPTH {
        return Err(err(
            "HierarchyLevelLimitExceededException",
            format!("Parameter path exceeded maximum hierarchy level {MAX_DEPTH}."),
        ));
    }
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    })
}

/// Is `name` under `path` (directly, or at any depth when `recursive`)?
pub fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let base = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    match name.strip_prefix(&base) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

/// A label AWS accepts: 1–100 of letters, digits, `.`, `-`, `_`; not starting with a digit or
/// with `aws`/`ssm`.
pub fn is_valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `ami-` followed by 8 or 17 lowercase hex digits.
pub fn is_ami_id(v: &str) -> bool {
    match v.strip_prefix("ami-") {
        Some(h) => {
            (h.len() == 8 || h.len() == 17)
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("plain").is_ok());
        assert!(validate_name("/app/db/host").is_ok());
        assert_eq!(
            validate_name("app/db").unwrap_err().kind,
            "ValidationException"
        );
        assert!(validate_name("/aws/x").is_err());
        assert!(validate_name("SSMthing").is_err());
        assert!(validate_name("/a b").is_err());
        assert!(validate_name("/a/").is_err());
        let deep = (0..16).map(|i| format!("/l{i}")).collect::<String>();
        assert_eq!(
            validate_name(&deep).unwrap_err().kind,
            "HierarchyLevelLimitExceededException"
        );
        let ok = (0..15).map(|i| format!("/l{i}")).collect::<String>();
        assert!(validate_name(&ok).is_ok());
    }

    #[test]
    fn paths() {
        assert!(under_path("/a/b", "/a", false));
        assert!(!under_path("/a/b/c", "/a", false));
        assert!(under_path("/a/b/c", "/a", true));
        assert!(!under_path("/ab", "/a", true));
        assert!(under_path("/x", "/", false));
        assert!(!under_path("x", "/", true));
        assert_eq!(validate_path("/a/").unwrap(), "/a");
        assert!(validate_path("a").is_err());
    }

    #[test]
    fn labels_and_amis() {
        assert!(is_valid_label("prod"));
        assert!(is_valid_label("release-1.2_x"));
        assert!(!is_valid_label("1abc"));
        assert!(!is_valid_label("awsy"));
        assert!(!is_valid_label("has space"));
        assert!(is_ami_id("ami-12345678"));
        assert!(is_ami_id("ami-0123456789abcdef0"));
        assert!(!is_ami_id("ami-123"));
        assert!(!is_ami_id("i-12345678"));
    }
}
