//! Content validation of SSM documents at create/update time, with AWS-style `InvalidDocumentContent`
//! / `InvalidDocumentSchemaVersion` messages: Command documents (schemaVersion 2.2 / 2.0 with
//! `mainSteps` of `aws:runShellScript`, `aws:runPowerShellScript`, `aws:runDocument`, preconditions;
//! 1.2 with `runtimeConfig`), Automation runbooks (schemaVersion 0.3: `mainSteps` of the actions
//! opsloop runs, per-action required inputs, `onFailure` / `onCancel` / `nextStep` / branch targets
//! that must exist, step outputs, `aws:loop` nested steps), declared parameters (types, defaults,
//! allowedValues, allowedPattern) and `{{ reference }}`s that must name a parameter, a step output
//! or a built-in variable. The result summarises what DescribeDocument reports.

use std::collections::HashSet;

use opsloop_core::{ApiError, Value};
use serde_json::json;

use crate::error::err;

/// What a valid document declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub schema_version: String,
    pub description: Option<String>,
    /// `DocumentParameter` shapes.
    pub parameters: Vec<Value>,
    pub platform_types: Vec<String>,
}

/// The actions an Automation runbook may use.
pub const AUTOMATION_ACTIONS: &[&str] = &[
    "aws:executeScript",
    "aws:executeAwsApi",
    "aws:waitForAwsResourceProperty",
    "aws:assertAwsResourceProperty",
    "aws:runCommand",
    "aws:branch",
    "aws:sleep",
    "aws:pause",
    "aws:approve",
    "aws:executeAutomation",
    "aws:loop",
];
/// The plugins a Command document may use.
pub const COMMAND_ACTIONS: &[&str] = &[
    "aws:runShellScript",
    "aws:runPowerShellScript",
    "aws:runDocument",
];
const PARAM_TYPES: &[&str] = &[
    "String",
    "StringList",
    "Integer",
    "Boolean",
    "MapList",
    "StringMap",
];
const OUTPUT_TYPES: &[&str] = &[
    "String",
    "Integer",
    "Boolean",
    "StringList",
    "StringMap",
    "MapList",
];
const BRANCH_OPERATORS: &[&str] = &[
    "StringEquals",
    "EqualsIgnoreCase",
    "StartsWith",
    "EndsWith",
    "Contains",
    "NumericEquals",
    "NumericGreater",
    "NumericLesser",
    "NumericGreaterOrEquals",
    "NumericLesserOrEquals",
    "BooleanEquals",
];

fn invalid(msg: impl Into<String>) -> ApiError {
    err("InvalidDocumentContent", msg)
}

fn schema_version(doc: &Value) -> Option<String> {
    match doc.get("schemaVersion") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Validate a parsed document of `doc_type`.
pub fn validate(doc: &Value, doc_type: &str) -> Result<Analysis, ApiError> {
    if !doc.is_object() {
        return Err(invalid(
            "The document content must be a JSON or YAML object.",
        ));
    }
    let version = schema_version(doc)
        .ok_or_else(|| invalid("schemaVersion is required in the document content."))?;
    let description = doc
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (platform_types, param_ctx) = match doc_type {
        "Command" => match version.as_str() {
            "2.2" | "2.0" => (validate_command(doc)?, ParamCtx::Command),
            "1.2" => (validate_command_12(doc)?, ParamCtx::Command),
            _ => {
                return Err(err(
                    "InvalidDocumentSchemaVersion",
                    format!("Document schema version, {version}, is not supported for documents of type Command. Supported versions: 1.2, 2.0, 2.2."),
                ))
            }
        },
        "Automation" => {
            if version != "0.3" {
                return Err(err(
                    "InvalidDocumentSchemaVersion",
                    format!("Document schema version, {version}, is not supported for documents of type Automation. Supported version: 0.3."),
                ));
            }
            validate_automation(doc)?;
            (
                vec!["Windows".into(), "Linux".into(), "MacOS".into()],
                ParamCtx::Automation,
            )
        }
        other => {
            return Err(err(
                "InvalidDocumentContent",
                format!("Documents of type {other} are not supported by this opsloop release; use Command or Automation."),
            ))
        }
    };
    let parameters = validate_parameters(doc.get("parameters"), param_ctx)?;
    Ok(Analysis {
        schema_version: version,
        description,
        parameters,
        platform_types,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum ParamCtx {
    Command,
    Automation,
}

fn validate_parameters(params: Option<&Value>, ctx: ParamCtx) -> Result<Vec<Value>, ApiError> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    let map = params
        .as_object()
        .ok_or_else(|| invalid("parameters must be an object of parameter definitions."))?;
    let mut out = Vec::new();
    for (name, def) in map {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(format!(
                "Parameter name {name} is not valid: use letters, digits and underscores."
            )));
        }
        let ty = def
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Parameter {name} must declare a type.")))?;
        let aws_type = ctx == ParamCtx::Automation
            && (ty.starts_with("AWS::") || ty.starts_with("List<AWS::"));
        if !PARAM_TYPES.contains(&ty) && !aws_type {
            return Err(invalid(format!(
                "Parameter {name} has an unsupported type {ty}. Supported types: {}.",
                PARAM_TYPES.join(", ")
            )));
        }
        let allowed: Option<Vec<String>> = match def.get("allowedValues") {
            None => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            ),
            Some(_) => {
                return Err(invalid(format!(
                    "allowedValues of parameter {name} must be a list."
                )))
            }
        };
        let pattern = match def.get("allowedPattern") {
            None => None,
            Some(Value::String(p)) => Some(regex::Regex::new(p).map_err(|_| {
                invalid(format!(
                    "allowedPattern of parameter {name} is not a valid regular expression: {p}"
                ))
            })?),
            Some(_) => {
                return Err(invalid(format!(
                    "allowedPattern of parameter {name} must be a string."
                )))
            }
        };
        let mut default_text = None;
        if let Some(d) = def.get("default") {
            let type_ok = match ty {
                "String" => d.is_string(),
                "StringList" => d
                    .as_array()
                    .map(|a| a.iter().all(Value::is_string))
                    .unwrap_or(false),
                "Integer" => {
                    d.is_i64()
                        || d.as_str()
                            .map(|s| s.parse::<i64>().is_ok())
                            .unwrap_or(false)
                }
                "Boolean" => d.is_boolean() || matches!(d.as_str(), Some("true") | Some("false")),
                "MapList" => d
                    .as_array()
                    .map(|a| a.iter().all(Value::is_object))
                    .unwrap_or(false),
                "StringMap" => d.is_object(),
                _ => true,
            };
            if !type_ok {
                return Err(invalid(format!(
                    "Parameter {name} has a default value that is not of type {ty}."
                )));
            }
            let items: Vec<String> = match d {
                Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                other => vec![other.to_string()],
            };
            if let Some(allowed) = &allowed {
                if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                    return Err(invalid(format!(
                        "The default value {bad} of parameter {name} is not one of its allowedValues."
                    )));
                }
            }
            if let Some(re) = &pattern {
                // An empty default is how AWS documents declare an optional string.
                if let Some(bad) = items.iter().find(|i| !i.is_empty() && !re.is_match(i)) {
                    return Err(invalid(format!(
                        "The default value {bad} of parameter {name} does not match its allowedPattern."
                    )));
                }
            }
            default_text = Some(match d {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
        let mut p = json!({ "Name": name, "Type": ty });
        if let Some(desc) = def.get("description").and_then(Value::as_str) {
            p["Description"] = json!(desc);
        }
        if let Some(d) = default_text {
            p["DefaultValue"] = json!(d);
        }
        out.push(p);
    }
    Ok(out)
}

fn declared_params(doc: &Value) -> HashSet<String> {
    doc.get("parameters")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every `{{ reference }}` in the string values of `v`.
fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else { break };
                out.push(after[..end].trim().to_string());
                rest = &after[end + 2..];
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(m) => m.values().for_each(|x| references(x, out)),
        _ => {}
    }
}

fn is_builtin_reference(r: &str) -> bool {
    [
        "ssm:",
        "ssm-secure:",
        "resolve:",
        "automation:",
        "global:",
        "variable:",
        "aws:",
    ]
    .iter()
    .any(|p| r.starts_with(p))
}

fn check_references(
    v: &Value,
    params: &HashSet<String>,
    steps: &HashSet<String>,
) -> Result<(), ApiError> {
    let mut refs = Vec::new();
    references(v, &mut refs);
    for r in refs {
        if r.is_empty() || is_builtin_reference(&r) || params.contains(&r) {
            continue;
        }
        if let Some((step, _)) = r.split_once('.') {
            if steps.contains(step) {
                continue;
            }
            return Err(invalid(format!(
                "Reference {{{{ {r} }}}} names a step {step} that the document does not define."
            )));
        }
        return Err(invalid(format!(
            "Parameter \"{r}\" is used in the document but not defined in its parameters."
        )));
    }
    Ok(())
}

fn steps_of<'a>(doc: &'a Value, what: &str) -> Result<&'a Vec<Value>, ApiError> {
    match doc.get("mainSteps") {
        Some(Value::Array(a)) if !a.is_empty() => Ok(a),
        Some(Value::Array(_)) | None => Err(invalid(format!(
            "{what} documents must have at least one step in mainSteps."
        ))),
        Some(_) => Err(invalid("mainSteps must be a list of steps.")),
    }
}

fn validate_command(doc: &Value) -> Result<Vec<String>, ApiError> {
    let steps = steps_of(doc, "Command")?;
    let params = declared_params(doc);
    let mut names = HashSet::new();
    let (mut linux, mut windows) = (false, false);
    for (i, step) in steps.iter().enumerate() {
        let action = step
            .get("action")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Step {} of mainSteps has no action.", i + 1)))?;
        let name = step
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Step {} of mainSteps has no name.", i + 1)))?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(invalid(format!(
                "Step name {name} is not valid: use letters, digits, '.', '-' and '_'."
            )));
        }
        if !names.insert(name.to_string()) {
            return Err(invalid(format!("Duplicate step name {name} in mainSteps.")));
        }
        if !COMMAND_ACTIONS.contains(&action) {
            return Err(invalid(format!(
                "Invalid action {action} in step {name}. Command documents support: {}.",
                COMMAND_ACTIONS.join(", ")
            )));
        }
        let inputs = step.get("inputs").cloned().unwrap_or(Value::Null);
        match action {
            "aws:runShellScript" | "aws:runPowerShellScript" => {
                match inputs.get("runCommand") {
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
                    Some(Value::String(_)) => {}
                    _ => {
                        return Err(invalid(format!(
                            "Step {name} ({action}) requires inputs.runCommand: a list of command lines."
                        )))
                    }
                }
                if action == "aws:runShellScript" {
                    linux = true;
                } else {
                    windows = true;
                }
            }
            _ => {
                let ty = inputs.get("documentType").and_then(Value::as_str);
                if !matches!(ty, Some("SSMDocument") | Some("LocalPath")) {
                    return Err(invalid(format!(
                        "Step {name} (aws:runDocument) requires inputs.documentType: SSMDocument or LocalPath."
                    )));
                }
                if inputs.get("documentPath").and_then(Value::as_str).is_none() {
                    return Err(invalid(format!(
                        "Step {name} (aws:runDocument) requires inputs.documentPath."
                    )));
                }
                linux = true;
                windows = true;
            }
        }
        if let Some(pre) = step.get("precondition") {
            check_precondition(name, pre)?;
        }
    }
    check_references(
        &json!({ "mainSteps": doc.get("mainSteps") }),
        &params,
        &HashSet::new(),
    )?;
    let mut platforms = Vec::new();
    if windows {
        platforms.push("Windows".to_string());
    }
    if linux {
        platforms.push("Linux".to_string());
        platforms.push("MacOS".to_string());
    }
    Ok(platforms)
}

fn check_precondition(step: &str, pre: &Value) -> Result<(), ApiError> {
    let bad = || {
        invalid(format!(
            "The precondition of step {step} is not valid: use {{\"StringEquals\": [\"platformType\", \"Linux\"]}} (Linux, Windows or MacOS)."
        ))
    };
    let map = pre.as_object().ok_or_else(bad)?;
    if map.len() != 1 {
        return Err(bad());
    }
    let operands = map
        .get("StringEquals")
        .and_then(Value::as_array)
        .ok_or_else(bad)?;
    let ops: Vec<&str> = operands.iter().filter_map(Value::as_str).collect();
    match ops.as_slice() {
        ["platformType", "Linux" | "Windows" | "MacOS"] => Ok(()),
        _ => Err(bad()),
    }
}

fn validate_command_12(doc: &Value) -> Result<Vec<String>, ApiError> {
    let rc = doc
        .get("runtimeConfig")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            invalid(
                "Documents of schema version 1.2 require a runtimeConfig with at least one plugin.",
            )
        })?;
    let mut platforms = Vec::new();
    for (plugin, body) in rc {
        if !COMMAND_ACTIONS.contains(&plugin.as_str()) {
            return Err(invalid(format!(
                "Invalid plugin {plugin} in runtimeConfig."
            )));
        }
        let props = body.get("properties").and_then(Value::as_array);
        if props.map(|p| p.is_empty()).unwrap_or(true) {
            return Err(invalid(format!(
                "Plugin {plugin} requires a non-empty properties list."
            )));
        }
        let p = if plugin == "aws:runPowerShellScript" {
            "Windows"
        } else {
            "Linux"
        };
        if !platforms.iter().any(|x| x == p) {
            platforms.push(p.to_string());
        }
    }
    check_references(
        &json!({ "runtimeConfig": doc.get("runtimeConfig") }),
        &declared_params(doc),
        &HashSet::new(),
    )?;
    Ok(platforms)
}

/// Names of the steps of a step list, including aws:loop's nested steps (checked unique).
fn collect_step_names(steps: &[Value], names: &mut HashSet<String>) -> Result<(), ApiError> {
    for (i, step) in steps.iter().enumerate() {
        let name = step
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Step {} of mainSteps has no name.", i + 1)))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(format!(
                "Step name {name} is not valid: use letters, digits and underscores."
            )));
        }
        if !names.insert(name.to_string()) {
            return Err(invalid(format!("Duplicate step name {name} in mainSteps.")));
        }
        if step.get("action").and_then(Value::as_str) == Some("aws:loop") {
            if let Some(Value::Array(inner)) = step.get("inputs").and_then(|i| i.get("Steps")) {
                collect_step_names(inner, names)?;
            }
        }
    }
    Ok(())
}

fn validate_automation(doc: &Value) -> Result<(), ApiError> {
    let steps = steps_of(doc, "Automation")?;
    let params = declared_params(doc);
    let mut names = HashSet::new();
    collect_step_names(steps, &mut names)?;
    validate_step_list(steps, &names)?;
    check_references(
        &json!({
            "mainSteps": doc.get("mainSteps"),
            "assumeRole": doc.get("assumeRole"),
        }),
        &params,
        &names,
    )?;
    if let Some(outputs) = doc.get("outputs") {
        let list = outputs
            .as_array()
            .ok_or_else(|| invalid("outputs must be a list of StepName.OutputName strings."))?;
        for o in list {
            let text = o.as_str().unwrap_or("");
            match text.split_once('.') {
                Some((step, _)) if names.contains(step) => {}
                _ => {
                    return Err(invalid(format!(
                        "Document output {text} must name an output of a step of this document (StepName.OutputName)."
                    )))
                }
            }
        }
    }
    Ok(())
}

fn target_exists(
    target: &str,
    names: &HashSet<String>,
    field: &str,
    step: &str,
) -> Result<(), ApiError> {
    if names.contains(target) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Step {step} has {field} {target}, but the document has no step named {target}."
        )))
    }
}

fn validate_step_list(steps: &[Value], names: &HashSet<String>) -> Result<(), ApiError> {
    for step in steps {
        let name = step.get("name").and_then(Value::as_str).unwrap_or("");
        let action = step
            .get("action")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("Step {name} has no action.")))?;
        if !AUTOMATION_ACTIONS.contains(&action) {
            return Err(invalid(format!(
                "Invalid action {action} in step {name}. Automation runbooks support: {}.",
                AUTOMATION_ACTIONS.join(", ")
            )));
        }
        for (field, allowed_plain) in [
            ("onFailure", &["Abort", "Continue"][..]),
            ("onCancel", &["Abort"][..]),
        ] {
            if let Some(v) = step.get(field) {
                let text = v.as_str().unwrap_or("");
                if allowed_plain.contains(&text) {
                    continue;
                }
                match text.strip_prefix("step:") {
                    Some(t) => target_exists(t, names, field, name)?,
                    None => {
                        return Err(invalid(format!(
                        "Step {name} has an invalid {field} value {text}: use {} or step:StepName.",
                        allowed_plain.join(", ")
                    )))
                    }
                }
            }
        }
        if let Some(v) = step.get("nextStep") {
            target_exists(v.as_str().unwrap_or(""), names, "nextStep", name)?;
        }
        for field in ["isEnd", "isCritical"] {
            if let Some(v) = step.get(field) {
                if !v.is_boolean() && !matches!(v.as_str(), Some("true") | Some("false")) {
                    return Err(invalid(format!(
                        "{field} of step {name} must be true or false."
                    )));
                }
            }
        }
        for field in ["maxAttempts", "timeoutSeconds"] {
            if let Some(v) = step.get(field) {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                if !matches!(n, Some(n) if n >= 1) {
                    return Err(invalid(format!(
                        "{field} of step {name} must be a positive integer."
                    )));
                }
            }
        }
        if let Some(outputs) = step.get("outputs") {
            let list = outputs
                .as_array()
                .ok_or_else(|| invalid(format!("outputs of step {name} must be a list.")))?;
            for o in list {
                let oname = o.get("Name").and_then(Value::as_str);
                let ty = o.get("Type").and_then(Value::as_str).unwrap_or("String");
                if oname.is_none() || o.get("Selector").and_then(Value::as_str).is_none() {
                    return Err(invalid(format!(
                        "Each output of step {name} needs a Name and a Selector."
                    )));
                }
                if !OUTPUT_TYPES.contains(&ty) {
                    return Err(invalid(format!(
                        "Output {} of step {name} has an unsupported Type {ty}.",
                        oname.unwrap_or("")
                    )));
                }
            }
        }
        let inputs = step.get("inputs").cloned().unwrap_or(Value::Null);
        let need = |keys: &[&str]| -> Result<(), ApiError> {
            for k in keys {
                if inputs.get(*k).map(|v| v.is_null()).unwrap_or(true) {
                    return Err(invalid(format!(
                        "Step {name} ({action}) requires the input {k}."
                    )));
                }
            }
            Ok(())
        };
        let one_of = |keys: &[&str]| -> Result<(), ApiError> {
            if keys.iter().any(|k| inputs.get(*k).is_some()) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "Step {name} ({action}) requires one of the inputs {}.",
                    keys.join(", ")
                )))
            }
        };
        match action {
            "aws:executeScript" => {
                need(&["Runtime"])?;
                let rt = inputs.get("Runtime").and_then(Value::as_str).unwrap_or("");
                if rt.starts_with("python3") {
                    need(&["Handler"])?;
                } else if !rt.starts_with("PowerShell") {
                    return Err(invalid(format!(
                        "Step {name} has an unsupported Runtime {rt}: use python3.x or PowerShell 7.x."
                    )));
                }
                one_of(&["Script", "Attachment"])?;
            }
            "aws:executeAwsApi" => need(&["Service", "Api"])?,
            "aws:waitForAwsResourceProperty" | "aws:assertAwsResourceProperty" => {
                need(&["Service", "Api", "PropertySelector", "DesiredValues"])?
            }
            "aws:runCommand" => {
                need(&["DocumentName"])?;
                one_of(&["InstanceIds", "Targets"])?;
            }
            "aws:sleep" => one_of(&["Duration", "Timestamp"])?,
            "aws:approve" => need(&["Approvers"])?,
            "aws:executeAutomation" => need(&["DocumentName"])?,
            "aws:branch" => {
                let choices = inputs
                    .get("Choices")
                    .and_then(Value::as_array)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        invalid(format!(
                            "Step {name} (aws:branch) requires a non-empty Choices list."
                        ))
                    })?;
                for c in choices {
                    let next = c.get("NextStep").and_then(Value::as_str).ok_or_else(|| {
                        invalid(format!("Every choice of step {name} needs a NextStep."))
                    })?;
                    target_exists(next, names, "a choice with NextStep", name)?;
                    check_choice(name, c)?;
                }
                if let Some(d) = inputs.get("Default") {
                    target_exists(d.as_str().unwrap_or(""), names, "Default", name)?;
                }
            }
            "aws:loop" => {
                need(&["Iterators"])?;
                let inner = inputs
                    .get("Steps")
                    .and_then(Value::as_array)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        invalid(format!(
                            "Step {name} (aws:loop) requires a non-empty Steps list."
                        ))
                    })?;
                validate_step_list(inner, names)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_choice(step: &str, c: &Value) -> Result<(), ApiError> {
    let map = c.as_object().cloned().unwrap_or_default();
    let logical: Vec<&String> = map
        .keys()
        .filter(|k| matches!(k.as_str(), "And" | "Or" | "Not"))
        .collect();
    if !logical.is_empty() {
        for k in logical {
            let inner: Vec<Value> = match &map[k] {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![map[k].clone()],
                _ => {
                    return Err(invalid(format!(
                        "{k} in a choice of step {step} must hold conditions."
                    )))
                }
            };
            for i in &inner {
                check_choice(step, i)?;
            }
        }
        return Ok(());
    }
    if map.get("Variable").and_then(Value::as_str).is_none() {
        return Err(invalid(format!(
            "A choice of step {step} needs a Variable and an operator, or And / Or / Not."
        )));
    }
    let ops: Vec<&String> = map
        .keys()
        .filter(|k| BRANCH_OPERATORS.contains(&k.as_str()))
        .collect();
    if ops.len() != 1 {
        return Err(invalid(format!(
            "A choice of step {step} needs exactly one operator: {}.",
            BRANCH_OPERATORS.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
