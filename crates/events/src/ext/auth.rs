//! Connection authorization: the header each authorization type adds to an invocation, and OAuth
//! client credentials — the token request (client id and secret as HTTP Basic credentials, the
//! connection's OAuth header/query/body parameters, `grant_type=client_credentials` unless the body
//! parameters set one), the token cache (refreshed within 60 s of expiry, as AWS does, or after a
//! 401/407), and the connection state that follows (AUTHORIZED, or DEAUTHORIZED when the
//! authorization server refuses).

use std::time::{Duration, Instant};

use base64::Engine;
use opsloop_store::ControlStore;

use super::common::{get_record, record_key, T_CONNECTIONS};
use super::connections::{self, Connection};
use super::http::{self, Request};
use super::secrets::{self, Secrets};
use super::Shared;

/// A cached access token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires_at: Instant,
}

/// Tokens this close to expiry are refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed when the authorization server names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Why no token could be had.
#[derive(Debug, Clone)]
pub(crate) struct AuthFailure {
    pub retryable: bool,
    pub message: String,
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The authorization header of an API_KEY or BASIC connection (`None` for OAuth).
pub(crate) fn static_header(conn: &Connection, secrets: &Secrets) -> Option<(String, String)> {
    match conn.auth_type.as_str() {
        "API_KEY" => Some((conn.api_key_name.clone()?, secrets.api_key_value.clone()?)),
        "BASIC" => Some((
            "Authorization".into(),
            basic(conn.username.as_deref()?, secrets.password.as_deref()?),
        )),
        _ => None,
    }
}

fn form(pairs: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// Ask the authorization server for a token.
async fn fetch(
    shared: &Shared,
    conn: &Connection,
    secrets: &Secrets,
) -> Result<Token, AuthFailure> {
    let fail = |retryable, message: String| AuthFailure { retryable, message };
    let oauth = conn
        .oauth
        .as_ref()
        .ok_or_else(|| fail(false, "connection has no OAuth parameters".into()))?;
    let client_secret = secrets.client_secret.as_deref().ok_or_else(|| {
        fail(
            false,
            "connection has no client secret (deauthorized)".into(),
        )
    })?;
    let value = |p: &super::connections::Param| p.value.clone().unwrap_or_default();
    let mut body: Vec<(String, String)> = secrets
        .oauth_http
        .body
        .iter()
        .map(|p| (p.key.clone(), value(p)))
        .collect();
    if !body.iter().any(|(k, _)| k == "grant_type") {
        body.insert(0, ("grant_type".into(), "client_credentials".into()));
    }
    let mut query: Vec<(String, String)> = secrets
        .oauth_http
        .query
        .iter()
        .map(|p| (p.key.clone(), value(p)))
        .collect();
    let send_body = oauth.method != "GET";
    if !send_body {
        query.append(&mut body);
    }
    let mut url = oauth.endpoint.clone();
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&form(&query));
    }
    let mut headers = vec![
        (
            "Authorization".to_string(),
            basic(&oauth.client_id, client_secret),
        ),
        ("Accept".to_string(), "application/json".to_string()),
        ("User-Agent".to_string(), http::USER_AGENT.to_string()),
    ];
    for p in &secrets.oauth_http.headers {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&p.key));
        headers.push((p.key.clone(), value(p)));
    }
    if send_body {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    let client = http::client(shared).map_err(|e| fail(true, format!("http client: {e}")))?;
    let response = client
        .send(Request {
            method: oauth.method.clone(),
            url,
            headers,
            body: send_body.then(|| form(&body).into_bytes()),
        })
        .await
        .map_err(|(retryable, m)| fail(retryable, format!("authorization endpoint: {m}")))?;
    if !(200..300).contains(&response.status) {
        let retryable = response.status == 429 || response.status >= 500;
        return Err(fail(
            retryable,
            format!("authorization endpoint answered {}", response.status),
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&response.body).map_err(|_| {
        fail(
            false,
            "authorization endpoint answered no JSON document".into(),
        )
    })?;
    let value = doc
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            fail(
                false,
                "authorization endpoint answered no access_token".into(),
            )
        })?;
    let lifetime = doc
        .get("expires_in")
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_LIFETIME);
    Ok(Token {
        value: value.to_string(),
        expires_at: Instant::now() + lifetime,
    })
}

/// A usable access token for `conn`: the cached one unless it is about to expire or `refresh`.
pub(crate) async fn bearer(
    shared: &Shared,
    conn: &Connection,
    secrets: &Secrets,
    refresh: bool,
) -> Result<String, AuthFailure> {
    let fresh = |shared: &Shared| {
        shared
            .tokens
            .lock()
            .get(&conn.arn)
            .filter(|t| t.expires_at > Instant::now() + REFRESH_MARGIN)
            .map(|t| t.value.clone())
    };
    if !refresh {
        if let Some(t) = fresh(shared) {
            return Ok(t);
        }
    }
    let _one_fetch = shared.token_fetch.lock().await;
    if !refresh {
        if let Some(t) = fresh(shared) {
            return Ok(t);
        }
    }
    let token = fetch(shared, conn, secrets).await?;
    shared.tokens.lock().insert(conn.arn.clone(), token.clone());
    Ok(token.value)
}

/// Drop the cached token of connection `arn` (after a 401/407).
pub(crate) fn forget(shared: &Shared, arn: &str) {
    shared.tokens.lock().remove(arn);
}

/// Authorize an OAuth connection (after Create/Update): fetch a token and record the outcome.
pub(crate) async fn authorize(
    shared: &Shared,
    control: &dyn ControlStore,
    account: &str,
    region: &str,
    name: &str,
    arn: &str,
) {
    let key = record_key(account, region, name);
    let Ok(Some(conn)) = get_record::<Connection>(control, T_CONNECTIONS, &key) else {
        return;
    };
    if conn.arn != arn {
        return;
    }
    let secrets = match secrets::load(control, &conn.secret_arn) {
        Ok(s) => s,
        Err(_) => return,
    };
    let outcome = bearer(shared, &conn, &secrets, true).await;
    record_outcome(shared, control, account, region, &conn, &outcome);
}

/// Set the connection's state from a token request's outcome: AUTHORIZED after a token,
/// DEAUTHORIZED when the authorization server refused; transient failures change nothing
/// (except that a connection still AUTHORIZING says why it is waiting).
pub(crate) fn record_outcome(
    shared: &Shared,
    control: &dyn ControlStore,
    account: &str,
    region: &str,
    conn: &Connection,
    outcome: &Result<String, AuthFailure>,
) {
    let (state, reason) = match outcome {
        Ok(_) if conn.state == "AUTHORIZED" => return,
        Ok(_) => ("AUTHORIZED", None),
        Err(f) if !f.retryable => ("DEAUTHORIZED", Some(f.message.clone())),
        Err(f) if conn.state == "AUTHORIZING" => ("AUTHORIZING", Some(f.message.clone())),
        Err(_) => return,
    };
    tracing::info!(connection = %conn.name, state, reason = ?reason, "connection authorization");
    connections::set_state(shared, control, account, region, conn, state, reason);
}

#[cfg(test)]
mod tests {
    use super::super::connections::{HttpParams, OAuthPublic, Param};
    use super::super::http::testserver;
    use super::*;

    fn oauth_conn(endpoint: &str) -> (Connection, Secrets) {
        let http = HttpParams {
            body: vec![Param {
                key: "scope".into(),
                value: Some("events".into()),
                secret: false,
            }],
            ..Default::default()
        };
        let conn = Connection {
            name: "c".into(),
            arn: "arn:c".into(),
            description: None,
            auth_type: "OAUTH_CLIENT_CREDENTIALS".into(),
            state: "AUTHORIZING".into(),
            state_reason: None,
            created: 0.0,
            modified: 0.0,
            last_authorized: None,
            secret_arn: "s".into(),
            api_key_name: None,
            username: None,
            oauth: Some(OAuthPublic {
                endpoint: endpoint.into(),
                method: "POST".into(),
                client_id: "my-client".into(),
                http: http.clone(),
            }),
            invocation: HttpParams::default(),
            kms_key: None,
        };
        let secrets = Secrets {
            client_secret: Some("my-secret".into()),
            oauth_http: http,
            ..Default::default()
        };
        (conn, secrets)
    }

    #[tokio::test]
    async fn tokens_are_fetched_cached_and_refreshed() {
        let server = testserver::start(vec![
            (200, r#"{"access_token":"t1","expires_in":3600}"#.into()),
            (200, r#"{"access_token":"t2","expires_in":30}"#.into()),
            (200, r#"{"access_token":"t3","expires_in":3600}"#.into()),
        ])
        .await;
        let shared = Shared::default();
        let (conn, secrets) = oauth_conn(&format!("{}/oauth/token", server.url));
        assert_eq!(bearer(&shared, &conn, &secrets, false).await.unwrap(), "t1");
        assert_eq!(bearer(&shared, &conn, &secrets, false).await.unwrap(), "t1");
        assert_eq!(server.seen.lock().len(), 1, "cached");
        // A forced refresh (after a 401) fetches again; a token expiring within 60 s is refreshed.
        assert_eq!(bearer(&shared, &conn, &secrets, true).await.unwrap(), "t2");
        assert_eq!(bearer(&shared, &conn, &secrets, false).await.unwrap(), "t3");
        let seen = server.seen.lock().clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].request_line, "POST /oauth/token HTTP/1.1");
        assert_eq!(
            seen[0].header("authorization"),
            Some(basic("my-client", "my-secret").as_str())
        );
        assert_eq!(seen[0].body, "grant_type=client_credentials&scope=events");
    }

    #[tokio::test]
    async fn refusals_are_final_and_outages_retryable() {
        let server = testserver::start(vec![(400, "{}".into())]).await;
        let shared = Shared::default();
        let (conn, secrets) = oauth_conn(&server.url);
        let e = bearer(&shared, &conn, &secrets, false).await.unwrap_err();
        assert!(!e.retryable);
        let server = testserver::start(vec![(503, "{}".into())]).await;
        let (conn, secrets) = oauth_conn(&server.url);
        assert!(
            bearer(&shared, &conn, &secrets, false)
                .await
                .unwrap_err()
                .retryable
        );
        let server = testserver::start(vec![(200, "not json".into())]).await;
        let (conn, secrets) = oauth_conn(&server.url);
        assert!(
            !bearer(&shared, &conn, &secrets, false)
                .await
                .unwrap_err()
                .retryable
        );
    }
}
