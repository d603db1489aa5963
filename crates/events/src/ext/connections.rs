//! Connections: Create/Describe/Update/Delete/List/Deauthorize with API_KEY, BASIC and
//! OAUTH_CLIENT_CREDENTIALS authorization and invocation HTTP parameters. The public part of a
//! connection is one record in `events.ext.connections`; the secret part is sealed (see `secrets`)
//! under the connection's `SecretArn`. States follow AWS: API_KEY and BASIC connections are
//! AUTHORIZED at once; OAuth ones are AUTHORIZING until the first token arrives (AUTHORIZED) or the
//! authorization server refuses (DEAUTHORIZED, with a StateReason); Deauthorize drops the secrets.

use std::sync::Arc;

use opsloop_core::{ApiError, Value};
use opsloop_store::WriteOp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{
    already_exists, count_records, get_record, limit_exceeded, list_page, not_found, now_secs,
    parse_events_arn, put_record, record_key, required_str, store_error, str_of, validation,
    T_CONNECTIONS, T_SECRETS,
};
pub(crate) use super::params::{HttpParams, Param};
use super::secrets::{self, Secrets};
use crate::Events;

/// AWS's default quota of connections per account and region.
pub(crate) const MAX_CONNECTIONS: usize = 3000;

/// The public part of an OAuth configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct OAuthPublic {
    pub endpoint: String,
    pub method: String,
    pub client_id: String,
    #[serde(default)]
    pub http: HttpParams,
}

/// A connection's record (no secret values in it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Connection {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    pub auth_type: String,
    pub state: String,
    #[serde(default)]
    pub state_reason: Option<String>,
    pub created: f64,
    pub modified: f64,
    #[serde(default)]
    pub last_authorized: Option<f64>,
    pub secret_arn: String,
    #[serde(default)]
    pub api_key_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub oauth: Option<OAuthPublic>,
    #[serde(default)]
    pub invocation: HttpParams,
    #[serde(default)]
    pub kms_key: Option<String>,
}

impl Connection {
    fn summary(&self) -> Value {
        let mut o = json!({
            "ConnectionArn": self.arn,
            "Name": self.name,
            "ConnectionState": self.state,
            "AuthorizationType": self.auth_type,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        });
        if let Some(t) = self.last_authorized {
            o["LastAuthorizedTime"] = json!(t);
        }
        if let Some(r) = &self.state_reason {
            o["StateReason"] = json!(r);
        }
        o
    }

    fn describe(&self) -> Value {
        let mut o = self.summary();
        o["SecretArn"] = json!(self.secret_arn);
        if let Some(d) = &self.description {
            o["Description"] = json!(d);
        }
        if let Some(k) = &self.kms_key {
            o["KmsKeyIdentifier"] = json!(k);
        }
        let mut auth = serde_json::Map::new();
        if let Some(n) = &self.api_key_name {
            auth.insert("ApiKeyAuthParameters".into(), json!({"ApiKeyName": n}));
        }
        if let Some(u) = &self.username {
            auth.insert("BasicAuthParameters".into(), json!({"Username": u}));
        }
        if let Some(oa) = &self.oauth {
            let mut p = json!({
                "AuthorizationEndpoint": oa.endpoint,
                "HttpMethod": oa.method,
                "ClientParameters": {"ClientID": oa.client_id},
            });
            if !oa.http.is_empty() {
                p["OAuthHttpParameters"] = oa.http.to_value();
            }
            auth.insert("OAuthParameters".into(), p);
        }
        if !self.invocation.is_empty() {
            auth.insert(
                "InvocationHttpParameters".into(),
                self.invocation.to_value(),
            );
        }
        o["AuthParameters"] = Value::Object(auth);
        o
    }

    fn change(&self, state: &str) -> Value {
        let mut o = json!({
            "ConnectionArn": self.arn,
            "ConnectionState": state,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        });
        if let Some(t) = self.last_authorized {
            o["LastAuthorizedTime"] = json!(t);
        }
        o
    }
}

/// An `http://` or `https://` URL with a host (opsloop also accepts plain HTTP, for endpoints on
/// the local network; AWS requires HTTPS).
pub(crate) fn check_endpoint(url: &str, member: &str) -> Result<(), ApiError> {
    let ok = match url.parse::<http::Uri>() {
        Ok(uri) => {
            matches!(uri.scheme_str(), Some("http") | Some("https"))
                && uri.host().is_some_and(|h| !h.is_empty())
        }
        Err(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "{member} '{url}' is not a valid http or https URL."
        )))
    }
}

/// Fold `auth` (AuthParameters of a Create or Update) for `auth_type` into the connection `conn`
/// and its `secrets`. `creating`: every parameter the type needs must be in `auth`.
fn apply_auth(
    conn: &mut Connection,
    secrets: &mut Secrets,
    auth_type: &str,
    auth: &Value,
    creating: bool,
) -> Result<(), ApiError> {
    let type_changed = conn.auth_type != auth_type;
    let full = creating || type_changed;
    let kinds = [
        ("API_KEY", "ApiKeyAuthParameters"),
        ("BASIC", "BasicAuthParameters"),
        ("OAUTH_CLIENT_CREDENTIALS", "OAuthParameters"),
    ];
    for (kind, member) in kinds {
        if kind != auth_type && auth.get(member).is_some_and(|v| !v.is_null()) {
            return Err(validation(format!(
                "{member} cannot be specified for AuthorizationType {auth_type}."
            )));
        }
    }
    let missing = |what: &str| {
        validation(format!(
            "{what} must be specified for AuthorizationType {auth_type}."
        ))
    };
    if full {
        conn.api_key_name = None;
        conn.username = None;
        conn.oauth = None;
        secrets.api_key_value = None;
        secrets.password = None;
        secrets.client_secret = None;
        secrets.oauth_http = HttpParams::default();
    }
    let s = |v: &Value, m: &str| str_of(v, m).map(str::to_string);
    match auth_type {
        "API_KEY" => {
            let p = auth.get("ApiKeyAuthParameters").filter(|v| !v.is_null());
            if let Some(p) = p {
                conn.api_key_name = s(p, "ApiKeyName").or(conn.api_key_name.take());
                secrets.api_key_value = s(p, "ApiKeyValue").or(secrets.api_key_value.take());
            }
            if conn.api_key_name.is_none() || secrets.api_key_value.is_none() {
                return Err(missing("ApiKeyAuthParameters.ApiKeyName and ApiKeyValue"));
            }
        }
        "BASIC" => {
            if let Some(p) = auth.get("BasicAuthParameters").filter(|v| !v.is_null()) {
                conn.username = s(p, "Username").or(conn.username.take());
                secrets.password = s(p, "Password").or(secrets.password.take());
            }
            if conn.username.is_none() || secrets.password.is_none() {
                return Err(missing("BasicAuthParameters.Username and Password"));
            }
        }
        "OAUTH_CLIENT_CREDENTIALS" => {
            let p = auth.get("OAuthParameters").filter(|v| !v.is_null());
            let old = conn.oauth.take();
            let endpoint = p
                .and_then(|p| s(p, "AuthorizationEndpoint"))
                .or(old.as_ref().map(|o| o.endpoint.clone()))
                .ok_or_else(|| missing("OAuthParameters.AuthorizationEndpoint"))?;
            check_endpoint(&endpoint, "AuthorizationEndpoint")?;
            let method = p
                .and_then(|p| s(p, "HttpMethod"))
                .or(old.as_ref().map(|o| o.method.clone()))
                .ok_or_else(|| missing("OAuthParameters.HttpMethod"))?;
            let client = p
                .and_then(|p| p.get("ClientParameters"))
                .filter(|v| !v.is_null());
            let client_id = client
                .and_then(|c| s(c, "ClientID"))
                .or(old.as_ref().map(|o| o.client_id.clone()))
                .ok_or_else(|| missing("OAuthParameters.ClientParameters.ClientID"))?;
            if let Some(secret) = client.and_then(|c| s(c, "ClientSecret")) {
                secrets.client_secret = Some(secret);
            }
            if secrets.client_secret.is_none() {
                return Err(missing("OAuthParameters.ClientParameters.ClientSecret"));
            }
            if let Some(h) = p
                .and_then(|p| p.get("OAuthHttpParameters"))
                .filter(|v| !v.is_null())
            {
                secrets.oauth_http = HttpParams::parse(Some(h), "OAuthHttpParameters")?;
            }
            conn.oauth = Some(OAuthPublic {
                endpoint,
                method,
                client_id,
                http: secrets.oauth_http.public(),
            });
        }
        other => {
            return Err(validation(format!(
                "AuthorizationType '{other}' is not valid."
            )))
        }
    }
    if let Some(h) = auth
        .get("InvocationHttpParameters")
        .filter(|v| !v.is_null())
    {
        secrets.invocation = HttpParams::parse(Some(h), "InvocationHttpParameters")?;
        conn.invocation = secrets.invocation.public();
    }
    conn.auth_type = auth_type.to_string();
    Ok(())
}

fn missing_connection(name: &str) -> ApiError {
    not_found(format!("Connection '{name}' does not exist."))
}

pub(crate) fn load(
    events: &Events,
    account: &str,
    region: &str,
    name: &str,
) -> Result<Option<Connection>, ApiError> {
    get_record(
        &*events.control,
        T_CONNECTIONS,
        &record_key(account, region, name),
    )
}

/// The connection an ARN names (its account and region are in the ARN), if it exists.
pub(crate) fn by_arn(events: &Events, arn: &str) -> Result<Option<Connection>, ApiError> {
    let Some((region, account, rest)) = parse_events_arn(arn, "connection") else {
        return Ok(None);
    };
    let name = rest.split('/').next().unwrap_or("");
    Ok(load(events, account, region, name)?.filter(|c| c.arn == arn))
}

fn start_authorizing(events: &Events, account: &str, region: &str, conn: &Connection) {
    let shared = Arc::clone(&events.ext.shared);
    let control = Arc::clone(&events.control);
    let (account, region, name, arn) = (
        account.to_string(),
        region.to_string(),
        conn.name.clone(),
        conn.arn.clone(),
    );
    tokio::spawn(async move {
        super::auth::authorize(&shared, &*control, &account, &region, &name, &arn).await;
    });
}

pub(crate) async fn create(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let auth_type = required_str(input, "AuthorizationType")?;
    let auth = input.get("AuthParameters").cloned().unwrap_or(json!({}));
    let key = record_key(account, region, name);
    if get_record::<Connection>(&*events.control, T_CONNECTIONS, &key)?.is_some() {
        return Err(already_exists(format!("Connection {name} already exists.")));
    }
    if count_records(&*events.control, T_CONNECTIONS, account, region)? >= MAX_CONNECTIONS {
        return Err(limit_exceeded(format!(
            "The requested resource exceeds the maximum number allowed ({MAX_CONNECTIONS} connections)."
        )));
    }
    let now = now_secs();
    let id = uuid::Uuid::new_v4().to_string();
    let mut conn = Connection {
        name: name.to_string(),
        arn: format!("arn:aws:events:{region}:{account}:connection/{name}/{id}"),
        description: str_of(input, "Description").map(str::to_string),
        auth_type: auth_type.to_string(),
        state: String::new(),
        state_reason: None,
        created: now,
        modified: now,
        last_authorized: None,
        secret_arn: format!(
            "arn:aws:secretsmanager:{region}:{account}:secret:opsloop/events/connection/{name}/{id}"
        ),
        api_key_name: None,
        username: None,
        oauth: None,
        invocation: HttpParams::default(),
        kms_key: str_of(input, "KmsKeyIdentifier").map(str::to_string),
    };
    refuse_private(input)?;
    let mut secrets = Secrets::default();
    apply_auth(&mut conn, &mut secrets, auth_type, &auth, true)?;
    let oauth = auth_type == "OAUTH_CLIENT_CREDENTIALS";
    if oauth {
        conn.state = "AUTHORIZING".into();
    } else {
        conn.state = "AUTHORIZED".into();
        conn.last_authorized = Some(now);
    }
    let ops = vec![
        WriteOp::Insert {
            table: T_CONNECTIONS.into(),
            key,
            value: super::common::encode(&conn),
        },
        secrets::put_op(&*events.control, &conn.secret_arn, &secrets)?,
    ];
    if let Err(e) = events.control.batch(ops) {
        return match e {
            opsloop_store::StoreError::Conflict { .. } => {
                Err(already_exists(format!("Connection {name} already exists.")))
            }
            e => Err(store_error(e)),
        };
    }
    tracing::info!(
        account,
        region,
        connection = name,
        auth_type,
        "connection created"
    );
    if oauth {
        start_authorizing(events, account, region, &conn);
    }
    Ok(conn.change(&conn.state))
}

/// Private connectivity (VPC Lattice resource configurations) has no meaning in opsloop.
fn refuse_private(input: &Value) -> Result<(), ApiError> {
    let auth = input.get("AuthParameters");
    let private = [
        input.get("InvocationConnectivityParameters"),
        auth.and_then(|a| a.get("ConnectivityParameters")),
    ];
    if private.iter().any(|p| p.is_some_and(|v| !v.is_null())) {
        return Err(validation(
            "Private connectivity (InvocationConnectivityParameters, ConnectivityParameters) is not supported by opsloop: endpoints are reached directly.",
        ));
    }
    Ok(())
}

pub(crate) fn describe(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let conn = load(events, account, region, name)?.ok_or_else(|| missing_connection(name))?;
    Ok(conn.describe())
}

pub(crate) async fn update(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    refuse_private(input)?;
    let key = record_key(account, region, name);
    let conn = {
        let _guard = events.ext.shared.write_lock.lock();
        let mut conn =
            load(events, account, region, name)?.ok_or_else(|| missing_connection(name))?;
        let mut secrets = secrets::load(&*events.control, &conn.secret_arn)?;
        let auth_type = str_of(input, "AuthorizationType")
            .unwrap_or(&conn.auth_type)
            .to_string();
        let auth = input.get("AuthParameters").cloned().unwrap_or(json!({}));
        apply_auth(&mut conn, &mut secrets, &auth_type, &auth, false)?;
        if let Some(d) = str_of(input, "Description") {
            conn.description = Some(d.to_string());
        }
        if let Some(k) = str_of(input, "KmsKeyIdentifier") {
            conn.kms_key = Some(k.to_string());
        }
        let now = now_secs();
        conn.modified = now;
        conn.state_reason = None;
        if conn.auth_type == "OAUTH_CLIENT_CREDENTIALS" {
            conn.state = "AUTHORIZING".into();
        } else {
            conn.state = "AUTHORIZED".into();
            conn.last_authorized = Some(now);
        }
        let ops = vec![
            WriteOp::Put {
                table: T_CONNECTIONS.into(),
                key,
                value: super::common::encode(&conn),
            },
            secrets::put_op(&*events.control, &conn.secret_arn, &secrets)?,
        ];
        events.control.batch(ops).map_err(store_error)?;
        conn
    };
    events.ext.shared.tokens.lock().remove(&conn.arn);
    if conn.state == "AUTHORIZING" {
        start_authorizing(events, account, region, &conn);
    }
    Ok(conn.change("UPDATING"))
}

pub(crate) fn delete(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let _guard = events.ext.shared.write_lock.lock();
    let conn = load(events, account, region, name)?.ok_or_else(|| missing_connection(name))?;
    events
        .control
        .batch(vec![
            WriteOp::Delete {
                table: T_CONNECTIONS.into(),
                key: record_key(account, region, name),
            },
            WriteOp::Delete {
                table: T_SECRETS.into(),
                key: conn.secret_arn.clone(),
            },
        ])
        .map_err(store_error)?;
    events.ext.shared.tokens.lock().remove(&conn.arn);
    tracing::info!(account, region, connection = name, "connection deleted");
    Ok(conn.change("DELETING"))
}

pub(crate) fn deauthorize(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let name = required_str(input, "Name")?;
    let _guard = events.ext.shared.write_lock.lock();
    let mut conn = load(events, account, region, name)?.ok_or_else(|| missing_connection(name))?;
    conn.state = "DEAUTHORIZED".into();
    conn.state_reason = Some("Deauthorized by DeauthorizeConnection.".into());
    conn.modified = now_secs();
    events
        .control
        .batch(vec![
            WriteOp::Put {
                table: T_CONNECTIONS.into(),
                key: record_key(account, region, name),
                value: super::common::encode(&conn),
            },
            WriteOp::Delete {
                table: T_SECRETS.into(),
                key: conn.secret_arn.clone(),
            },
        ])
        .map_err(store_error)?;
    events.ext.shared.tokens.lock().remove(&conn.arn);
    Ok(conn.change("DEAUTHORIZING"))
}

pub(crate) fn list(
    events: &Events,
    account: &str,
    region: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let state = str_of(input, "ConnectionState");
    let (page, token) = list_page::<Connection>(
        &*events.control,
        T_CONNECTIONS,
        account,
        region,
        input,
        |c| state.is_none_or(|s| c.state == s),
    )?;
    let mut out = json!({"Connections": page.iter().map(Connection::summary).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// Record a state change decided outside a request (an authorization result) on the stored
/// connection, if it is still the one `seen` was read from. A deauthorized connection stays so
/// until an update re-authorizes it.
pub(crate) fn set_state(
    shared: &super::Shared,
    control: &dyn opsloop_store::ControlStore,
    account: &str,
    region: &str,
    seen: &Connection,
    state: &str,
    reason: Option<String>,
) {
    let _guard = shared.write_lock.lock();
    let key = record_key(account, region, &seen.name);
    let Ok(Some(mut conn)) = get_record::<Connection>(control, T_CONNECTIONS, &key) else {
        return;
    };
    if conn.arn != seen.arn
        || conn.state == "DEAUTHORIZED"
        || (conn.state == state && conn.state_reason == reason)
    {
        return;
    }
    conn.state = state.to_string();
    conn.state_reason = reason;
    if state == "AUTHORIZED" {
        conn.last_authorized = Some(now_secs());
    }
    if let Err(e) = put_record(control, T_CONNECTIONS, &key, &conn) {
        tracing::warn!(connection = %seen.name, error = %e, "cannot record connection state");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(auth_type: &str) -> Connection {
        Connection {
            name: "c".into(),
            arn: "arn".into(),
            description: None,
            auth_type: auth_type.into(),
            state: "AUTHORIZED".into(),
            state_reason: None,
            created: 0.0,
            modified: 0.0,
            last_authorized: None,
            secret_arn: "s".into(),
            api_key_name: None,
            username: None,
            oauth: None,
            invocation: HttpParams::default(),
            kms_key: None,
        }
    }

    #[test]
    fn secrets_stay_out_of_the_public_record() {
        let mut c = blank("API_KEY");
        let mut s = Secrets::default();
        let auth = json!({
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "topsecret"},
            "InvocationHttpParameters": {"HeaderParameters": [
                {"Key": "x-hidden", "Value": "hidden-value", "IsValueSecret": true},
                {"Key": "x-open", "Value": "open-value"}
            ]}
        });
        apply_auth(&mut c, &mut s, "API_KEY", &auth, true).unwrap();
        let shown = c.describe().to_string();
        assert!(!shown.contains("topsecret") && !shown.contains("hidden-value"));
        assert!(shown.contains("open-value") && shown.contains("x-api-key"));
        assert_eq!(s.api_key_value.as_deref(), Some("topsecret"));
        assert_eq!(
            s.invocation.headers[0].value.as_deref(),
            Some("hidden-value")
        );
    }

    #[test]
    fn auth_parameters_must_fit_the_type() {
        let mut c = blank("BASIC");
        let mut s = Secrets::default();
        let e = apply_auth(
            &mut c,
            &mut s,
            "BASIC",
            &json!({"BasicAuthParameters": {"Username": "u"}}),
            true,
        )
        .unwrap_err();
        assert_eq!(e.kind, "ValidationException");
        let e = apply_auth(
            &mut c,
            &mut s,
            "BASIC",
            &json!({"ApiKeyAuthParameters": {"ApiKeyName": "a", "ApiKeyValue": "b"}}),
            true,
        )
        .unwrap_err();
        assert!(e.message.contains("ApiKeyAuthParameters"), "{e:?}");
        // An update keeps what it does not name.
        apply_auth(
            &mut c,
            &mut s,
            "BASIC",
            &json!({"BasicAuthParameters": {"Username": "u", "Password": "p"}}),
            true,
        )
        .unwrap();
        apply_auth(
            &mut c,
            &mut s,
            "BASIC",
            &json!({"BasicAuthParameters": {"Username": "v"}}),
            false,
        )
        .unwrap();
        assert_eq!(
            (c.username.as_deref(), s.password.as_deref()),
            (Some("v"), Some("p"))
        );
        // Switching type needs the new type's full parameters.
        let e = apply_auth(&mut c, &mut s, "API_KEY", &json!({}), false).unwrap_err();
        assert_eq!(e.kind, "ValidationException");
    }

    #[test]
    fn oauth_endpoint_must_be_a_url() {
        let mut c = blank("OAUTH_CLIENT_CREDENTIALS");
        let mut s = Secrets::default();
        let auth = |ep: &str| {
            json!({"OAuthParameters": {"AuthorizationEndpoint": ep, "HttpMethod": "POST",
                "ClientParameters": {"ClientID": "id", "ClientSecret": "sec"}}})
        };
        assert!(apply_auth(
            &mut c,
            &mut s,
            "OAUTH_CLIENT_CREDENTIALS",
            &auth("ftp://x/y"),
            true
        )
        .is_err());
        apply_auth(
            &mut c,
            &mut s,
            "OAUTH_CLIENT_CREDENTIALS",
            &auth("https://auth.example/token"),
            true,
        )
        .unwrap();
        assert_eq!(c.oauth.as_ref().unwrap().client_id, "id");
        assert_eq!(s.client_secret.as_deref(), Some("sec"));
    }
}
