//! The agent's state directory: `registration.json` (instance id, region, endpoint and the node's
//! own key pair; mode 0600, written atomically) and `results/<command-id>.json`, a finished
//! invocation's result kept until the server acknowledges it so it is delivered exactly once,
//! across agent restarts and server outages.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AgentError;

/// What registration produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub instance_id: String,
    pub region: String,
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub name: String,
}

/// A finished invocation waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingResult {
    pub command_id: String,
    pub plugin_name: String,
    pub status: String,
    pub status_details: String,
    pub response_code: i64,
    /// Output not yet delivered in chunks.
    pub stdout: String,
    pub stderr: String,
    /// Each step's result (`PluginResults` of the final reply), absent in results kept by older
    /// agents.
    #[serde(default)]
    pub plugins: Vec<StepResult>,
}

/// One step's result in a kept [`PendingResult`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub status: String,
    pub status_details: String,
    pub response_code: i64,
    pub stdout: String,
    pub stderr: String,
    pub started: f64,
    pub ended: f64,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

fn io(path: &Path, e: std::io::Error) -> AgentError {
    AgentError::State(format!("{}: {e}", path.display()))
}

impl StateDir {
    /// Open (creating) `root` and its `results/` directory.
    pub fn open(root: &Path) -> Result<StateDir, AgentError> {
        std::fs::create_dir_all(root.join("results")).map_err(|e| io(root, e))?;
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write `body` to `path` with mode 0600 atomically (temp file, fsync, rename).
    fn write_private(&self, path: &Path, body: &[u8]) -> Result<(), AgentError> {
        let tmp = path.with_extension("tmp");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| io(&tmp, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io(&tmp, e))?;
        }
        f.write_all(body).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn registration_path(&self) -> PathBuf {
        self.root.join("registration.json")
    }

    /// The stored registration, if any.
    pub fn registration(&self) -> Result<Option<Registration>, AgentError> {
        let p = self.registration_path();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| AgentError::State(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p, e)),
        }
    }

    pub fn save_registration(&self, r: &Registration) -> Result<(), AgentError> {
        let body = serde_json::to_vec_pretty(r).unwrap_or_default();
        self.write_private(&self.registration_path(), &body)
    }

    fn result_path(&self, command_id: &str) -> PathBuf {
        let safe: String = command_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.root.join("results").join(format!("{safe}.json"))
    }

    /// Keep a finished result until acknowledged.
    pub fn save_result(&self, r: &PendingResult) -> Result<(), AgentError> {
        let body = serde_json::to_vec(r).unwrap_or_default();
        self.write_private(&self.result_path(&r.command_id), &body)
    }

    /// The server acknowledged the result.
    pub fn drop_result(&self, command_id: &str) -> Result<(), AgentError> {
        let p = self.result_path(command_id);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p, e)),
            _ => Ok(()),
        }
    }

    /// Results not yet acknowledged.
    pub fn pending_results(&self) -> Result<Vec<PendingResult>, AgentError> {
        let dir = self.root.join("results");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let path = entry.map_err(|e| io(&dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(r) => out.push(r),
                None => tracing::warn!(path = %path.display(), "unreadable result file skipped"),
            }
        }
        Ok(out)
    }

    /// The working directory of a command without its own `workingDirectory`.
    pub fn work_dir(&self, command_id: &str) -> PathBuf {
        self.root.join("orchestration").join(command_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_private_and_results_last_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        assert_eq!(s.registration().unwrap(), None);
        let r = Registration {
            instance_id: "mi-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:1".into(),
            access_key_id: "AKMI".into(),
            secret_access_key: "s".into(),
            name: "web".into(),
        };
        s.save_registration(&r).unwrap();
        assert_eq!(s.registration().unwrap(), Some(r));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("registration.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let res = PendingResult {
            command_id: "c-1".into(),
            plugin_name: "p".into(),
            status: "Success".into(),
            status_details: "Success".into(),
            response_code: 0,
            stdout: "out".into(),
            stderr: String::new(),
            plugins: vec![StepResult {
                name: "p".into(),
                status: "Success".into(),
                status_details: "Success".into(),
                response_code: 0,
                stdout: "out".into(),
                stderr: String::new(),
                started: 1.0,
                ended: 2.0,
            }],
        };
        s.save_result(&res).unwrap();
        let again = StateDir::open(dir.path()).unwrap();
        assert_eq!(again.pending_results().unwrap(), vec![res]);
        again.drop_result("c-1").unwrap();
        assert!(again.pending_results().unwrap().is_empty());
        again.drop_result("c-1").unwrap();
    }
}
