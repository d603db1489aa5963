//! The Amazon-owned documents opsloop ships (Owner `Amazon`, read-only, in every account and region):
//! AWS-RunShellScript with AWS's parameters, AWS-RunPatchBaseline for Linux package managers, the
//! opsloop host documents Opsloop-RestartService and Opsloop-CollectDiagnostics, and the runbooks
//! Opsloop-RestartServiceOnInstances, AWS-RestartEC2Instance, AWS-EnableS3BucketEncryption and
//! AWS-DisableS3BucketPublicReadWrite. Their content lives in `crates/ssm/documents/`, is compiled
//! in, and is validated like user content when first used (a unit test keeps them valid).

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::{parse_content, validate, DocVersion, Document, AMAZON};

/// (name, type, format, content) of each built-in document.
const SOURCES: &[(&str, &str, &str, &str)] = &[
    (
        "AWS-RunShellScript",
        "Command",
        "JSON",
        include_str!("../../documents/AWS-RunShellScript.json"),
    ),
    (
        "AWS-RunPatchBaseline",
        "Command",
        "YAML",
        include_str!("../../documents/AWS-RunPatchBaseline.yaml"),
    ),
    (
        "Opsloop-RestartService",
        "Command",
        "YAML",
        include_str!("../../documents/Opsloop-RestartService.yaml"),
    ),
    (
        "Opsloop-CollectDiagnostics",
        "Command",
        "YAML",
        include_str!("../../documents/Opsloop-CollectDiagnostics.yaml"),
    ),
    (
        "Opsloop-RestartServiceOnInstances",
        "Automation",
        "YAML",
        include_str!("../../documents/Opsloop-RestartServiceOnInstances.yaml"),
    ),
    (
        "AWS-RestartEC2Instance",
        "Automation",
        "YAML",
        include_str!("../../documents/AWS-RestartEC2Instance.yaml"),
    ),
    (
        "AWS-EnableS3BucketEncryption",
        "Automation",
        "YAML",
        include_str!("../../documents/AWS-EnableS3BucketEncryption.yaml"),
    ),
    (
        "AWS-DisableS3BucketPublicReadWrite",
        "Automation",
        "YAML",
        include_str!("../../documents/AWS-DisableS3BucketPublicReadWrite.yaml"),
    ),
];

/// A fixed creation time for the built-ins (2024-01-01T00:00:00Z).
const CREATED: f64 = 1_704_067_200.0;

fn build(name: &str, doc_type: &str, format: &str, content: &str) -> Option<Document> {
    let parsed = parse_content(content, format).ok()?;
    let a = match validate::validate(&parsed, doc_type) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(document = name, error = %e, "built-in document does not validate");
            return None;
        }
    };
    Some(Document {
        name: name.to_string(),
        owner: AMAZON.to_string(),
        doc_type: doc_type.to_string(),
        target_type: None,
        display_name: None,
        created: CREATED,
        versions: vec![DocVersion {
            version: 1,
            version_name: None,
            content: content.to_string(),
            format: format.to_string(),
            hash: hex::encode(Sha256::digest(content.as_bytes())),
            created: CREATED,
            schema_version: a.schema_version,
            description: a.description,
            parameters: a.parameters,
            platform_types: a.platform_types,
        }],
        default_version: 1,
        next_version: 2,
        permissions: vec!["all".into()],
        shared_version: None,
    })
}

/// Every built-in document, by name.
pub fn all() -> &'static [Document] {
    static ALL: OnceLock<Vec<Document>> = OnceLock::new();
    ALL.get_or_init(|| {
        SOURCES
            .iter()
            .filter_map(|(n, t, f, c)| build(n, t, f, c))
            .collect()
    })
}

/// The built-in document `name`.
pub fn get(name: &str) -> Option<&'static Document> {
    all().iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_validates() {
        for (name, doc_type, format, content) in SOURCES {
            let parsed = parse_content(content, format).unwrap();
            if let Err(e) = validate::validate(&parsed, doc_type) {
                panic!("{name}: {e}");
            }
        }
        assert_eq!(all().len(), SOURCES.len());
    }

    /// The shell script of a built-in command document with `{{ param }}` replaced by `values`,
    /// else by the parameter's default.
    fn render(name: &str, values: &[(&str, &str)]) -> String {
        let d = get(name).unwrap();
        let v = d.latest();
        let doc = parse_content(&v.content, &v.format).unwrap();
        let mut script = String::new();
        for step in doc["mainSteps"].as_array().unwrap() {
            for line in step["inputs"]["runCommand"].as_array().unwrap() {
                script.push_str(line.as_str().unwrap());
                script.push('\n');
            }
        }
        for p in &v.parameters {
            let pname = p["Name"].as_str().unwrap();
            let value = values
                .iter()
                .find(|(k, _)| *k == pname)
                .map(|(_, v)| v.to_string())
                .or_else(|| p["DefaultValue"].as_str().map(str::to_string))
                .unwrap();
            script = script.replace(&format!("{{{{ {pname} }}}}"), &value);
        }
        assert!(!script.contains("{{"), "unresolved reference in {script}");
        script
    }

    fn run(script: &str) -> (i32, String) {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    #[test]
    fn collect_diagnostics_runs_on_this_host() {
        let (code, out) = run(&render(
            "Opsloop-CollectDiagnostics",
            &[("JournalLines", "5")],
        ));
        assert_eq!(code, 0, "{out}");
        for section in [
            "===== host =====",
            "===== memory =====",
            "===== disks =====",
            "===== top processes by cpu =====",
        ] {
            assert!(out.contains(section), "{section} missing from {out}");
        }
    }

    #[test]
    fn restart_service_fails_visibly_for_a_unit_that_does_not_restart() {
        let (code, out) = run(&render(
            "Opsloop-RestartService",
            &[
                ("ServiceName", "opsloop-no-such-unit"),
                ("GracePeriodSeconds", "1"),
            ],
        ));
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("opsloop-no-such-unit"), "{out}");
    }

    #[test]
    fn every_builtin_survives_json_yaml_conversion() {
        for d in all() {
            let v = d.latest();
            let value = parse_content(&v.content, &v.format).unwrap();
            let as_yaml = super::super::yaml::emit(&value);
            assert_eq!(
                super::super::yaml::parse(&as_yaml).unwrap(),
                value,
                "{}",
                d.name
            );
            let as_json = serde_json::to_string_pretty(&value).unwrap();
            assert_eq!(
                parse_content(&as_json, "JSON").unwrap(),
                value,
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn run_shell_script_has_aws_parameters() {
        let d = get("AWS-RunShellScript").unwrap();
        let names: Vec<&str> = d
            .latest()
            .parameters
            .iter()
            .filter_map(|p| p["Name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["commands", "workingDirectory", "executionTimeout"]
        );
        assert_eq!(d.owner, "Amazon");
        assert_eq!(d.latest().platform_types, vec!["Linux", "MacOS"]);
    }
}
