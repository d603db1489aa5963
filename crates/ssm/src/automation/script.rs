//! Out-of-process actions: `aws:executeScript` (Python 3 through the system `python3`: the script and
//! a small runner are written to a private temporary directory; the runner imports the script,
//! calls `Handler(events, context)` with the InputPayload, and writes the return value as JSON;
//! stdout becomes the step's `ExecutionLog`), PowerShell when `pwsh` is on PATH, and AWS services
//! that opsloop does not host, called through boto3 in the same runtime (standard credential chain,
//! `AWS_ENDPOINT_URL_*` honoured by botocore). The child is killed on timeout or cancellation.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opsloop_core::Value;
use serde_json::json;

use super::actions::{Ctx, Outcome};
use super::engine::Cancel;

const PY_RUNNER: &str = r#"
import contextlib, importlib.util, io, json, sys, traceback
mode, workdir = sys.argv[1], sys.argv[2]
req = json.load(open(workdir + "/request.json"))
buf = io.StringIO()
result = {}
try:
    with contextlib.redirect_stdout(buf):
        if mode == "script":
            spec = importlib.util.spec_from_file_location("runbook_script", workdir + "/script.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            handler = getattr(mod, req["handler"], None)
            if handler is None:
                raise AttributeError("The script defines no function " + req["handler"])
            result["payload"] = handler(req["events"], {"region": req["region"]})
        else:
            try:
                import boto3
            except ImportError:
                raise RuntimeError("boto3 is not importable by python3; install it to call " + req["service"])
            client = boto3.client(req["service"], region_name=req["region"])
            method = getattr(client, req["method"], None)
            if method is None:
                raise AttributeError("boto3 %s client has no operation %s" % (req["service"], req["method"]))
            out = method(**req["params"])
            out.pop("ResponseMetadata", None)
            result["payload"] = out
except Exception as e:
    result["error"] = "%s: %s" % (type(e).__name__, e)
    result["trace"] = traceback.format_exc()
result["log"] = buf.getvalue()
with open(workdir + "/result.json", "w") as f:
    json.dump(result, f, default=str)
"#;

fn snake(api: &str) -> String {
    if api.contains('_') {
        return api.to_string();
    }
    let mut out = String::new();
    for (i, c) in api.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// Run a command in `dir` until it exits, the cancel flag is set or `deadline` passes.
fn run_child(mut cmd: Command, cancel: &Cancel) -> Result<(i32, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the script runtime: {e}"))?;
    loop {
        if cancel.flag.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("The step was cancelled.".into());
        }
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Run the Python runner in `mode` with `request`; the runner's result document.
async fn python(
    mode: &str,
    files: Vec<(&'static str, String)>,
    cancel: &Arc<Cancel>,
) -> Result<Value, String> {
    if !on_path("python3") {
        return Err(
            "python3 is not on the server's PATH; aws:executeScript and boto3 calls need it."
                .into(),
        );
    }
    let mode = mode.to_string();
    let _ = cancel;
    let cancel = Arc::new(Cancel::default());
    let guard = KillOnDrop(cancel.clone());
    let r = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let dir = std::env::temp_dir().join(format!("opsloop-automation-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let result = (|| {
            for (name, body) in files
                .iter()
                .chain([("runner.py", PY_RUNNER.to_string())].iter())
            {
                let mut f = std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())?;
                f.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
            }
            let mut cmd = Command::new("python3");
            cmd.arg(dir.join("runner.py"))
                .arg(&mode)
                .arg(&dir)
                .current_dir(&dir);
            let (code, _out, err) = run_child(cmd, &cancel)?;
            let text = std::fs::read_to_string(dir.join("result.json"))
                .map_err(|_| format!("the Python runtime exited with {code}: {}", err.trim()))?;
            serde_json::from_str::<Value>(&text).map_err(|e| e.to_string())
        })();
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
    .await
    .map_err(|e| e.to_string())?;
    std::mem::forget(guard);
    r
}

/// Sets the cancel flag when the awaiting future is dropped (timeout / cancel), killing the child.
struct KillOnDrop(Arc<Cancel>);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.flag.store(true, Ordering::SeqCst);
    }
}

/// `aws:executeScript`.
pub async fn execute_script(ctx: &Ctx<'_>, inputs: &Value) -> Outcome {
    let runtime = inputs
        .get("Runtime")
        .and_then(Value::as_str)
        .unwrap_or("python3.8");
    let script = inputs
        .get("Script")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let payload = inputs.get("InputPayload").cloned().unwrap_or(json!({}));
    if runtime.to_ascii_lowercase().starts_with("powershell") {
        return powershell(&script, &payload).await;
    }
    if !runtime.starts_with("python3") {
        return Outcome::fail(format!(
            "Runtime {runtime} is not supported; use python3.x or PowerShell 7.x."
        ));
    }
    let handler = inputs
        .get("Handler")
        .and_then(Value::as_str)
        .unwrap_or("script_handler");
    let handler = handler.rsplit('.').next().unwrap_or(handler).to_string();
    let req = json!({"handler": handler, "events": payload, "region": ctx.ex.region});
    let files = vec![("script.py", script), ("request.json", req.to_string())];
    match python("script", files, &ctx.cancel).await {
        Ok(r) => script_outcome(r),
        Err(m) => Outcome::fail(m),
    }
}

fn script_outcome(r: Value) -> Outcome {
    let log = r
        .get("log")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        let trace = r.get("trace").and_then(Value::as_str).unwrap_or("");
        return Outcome::fail(format!("{e}\n{trace}").trim().to_string());
    }
    let payload = json!({"Payload": r.get("payload").cloned().unwrap_or(Value::Null)});
    let mut extra = BTreeMap::new();
    extra.insert("OutputPayload".to_string(), vec![payload.to_string()]);
    if !log.is_empty() {
        extra.insert("ExecutionLog".to_string(), vec![log]);
    }
    Outcome::Done {
        payload,
        response: None,
        extra,
        goto: None,
    }
}

async fn powershell(script: &str, payload: &Value) -> Outcome {
    if !on_path("pwsh") {
        return Outcome::fail(
            "The PowerShell runtime needs pwsh on the server's PATH; it was not found.",
        );
    }
    let body = format!(
        "$InputPayload = ConvertFrom-Json @'\n{}\n'@\n$result = & {{\n{}\n}}\n'---OPSLOOP-RESULT---'\n$result | ConvertTo-Json -Depth 20 -Compress\n",
        payload, script
    );
    let cancel = Arc::new(Cancel::default());
    let guard = KillOnDrop(cancel.clone());
    let r = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("pwsh");
        cmd.args(["-NoProfile", "-NonInteractive", "-Command", &body]);
        run_child(cmd, &cancel)
    })
    .await;
    std::mem::forget(guard);
    match r {
        Ok(Ok((0, out, _))) => {
            let (log, result) = out.split_once("---OPSLOOP-RESULT---").unwrap_or((&out, ""));
            let value: Value = serde_json::from_str(result.trim()).unwrap_or(json!(result.trim()));
            script_outcome(json!({"payload": value, "log": log}))
        }
        Ok(Ok((code, out, err))) => Outcome::fail(format!(
            "pwsh exited with {code}: {}{}",
            out.trim(),
            err.trim()
        )),
        Ok(Err(m)) => Outcome::fail(m),
        Err(e) => Outcome::fail(e.to_string()),
    }
}

/// An AWS API opsloop does not host, through boto3.
pub async fn boto3_call(
    service: &str,
    api: &str,
    params: &Value,
    region: &str,
    cancel: &Arc<Cancel>,
) -> Result<Value, String> {
    let req = json!({"service": service, "method": snake(api), "params": params, "region": region});
    let r = python("boto3", vec![("request.json", req.to_string())], cancel).await?;
    if let Some(e) = r.get("error").and_then(Value::as_str) {
        return Err(e.to_string());
    }
    Ok(r.get("payload").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_become_boto3_methods() {
        assert_eq!(snake("DescribeInstances"), "describe_instances");
        assert_eq!(snake("get_parameter"), "get_parameter");
        assert_eq!(snake("PutBucketEncryption"), "put_bucket_encryption");
    }
}
