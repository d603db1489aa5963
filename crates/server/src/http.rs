//! The HTTP surface: opsloop's own `/_opsloop/*` routes (health, reset, SNS's public links) and a
//! fallback that hands every other request, body read in full up to the configured bound, to the
//! wire [`Gateway`].
//!
//! [`Gateway`]: opsloop_wire::Gateway

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::json;

use crate::app::App;

/// Path of the health endpoint.
pub const HEALTH_PATH: &str = "/_opsloop/health";
/// Path of the reset endpoint.
pub const RESET_PATH: &str = "/_opsloop/reset";

/// The router for `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(health))
        .route(RESET_PATH, post(reset))
        .route("/_opsloop/sns/{*rest}", axum::routing::any(sns_public))
        .route(
            "/_opsloop/{*rest}",
            axum::routing::any(unknown_opsloop_route),
        )
        .fallback(gateway)
        .with_state(app)
}

/// `GET /_opsloop/health`: 200 `{"status":"ok",…}` when every service is ready, else 503 with
/// `"degraded"`.
async fn health(State(app): State<Arc<App>>) -> Response {
    let mut services = serde_json::Map::new();
    let mut all_ready = true;
    for (id, service) in app.gateway().services() {
        let h = service.health();
        all_ready &= h.ready;
        let mut entry = json!({ "ready": h.ready });
        if let Some(detail) = h.detail {
            entry["detail"] = json!(detail);
        }
        services.insert(id, entry);
    }
    let body = json!({
        "status": if all_ready { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "services": services,
        "uptime_seconds": (app.uptime_seconds() * 1000.0).round() / 1000.0,
    });
    let status = if all_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `POST /_opsloop/reset`: delete all state, when enabled.
async fn reset(State(app): State<Arc<App>>) -> Response {
    if !app.config().enable_reset {
        return json_error(
            StatusCode::FORBIDDEN,
            "reset is disabled; start the server with --enable-reset (or --ephemeral) to allow it",
        );
    }
    match app.reset().await {
        Ok(()) => {
            tracing::info!("state reset");
            (StatusCode::OK, Json(json!({ "status": "reset" }))).into_response()
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reset failed");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reset failed; see the server log",
            )
        }
    }
}

/// SNS's unauthenticated links (SubscribeURL, UnsubscribeURL, SigningCertURL) that messages carry.
async fn sns_public(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let answer = app.sns_public(req.method().as_str(), &path, &query).await;
    Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, answer.content_type)
        .body(Body::from(answer.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn unknown_opsloop_route() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such opsloop endpoint")
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Everything else is an AWS API call: read the body (at most one byte more than the largest limit
/// of any service — `max_body_bytes` or a service's own, larger one — so the gateway can answer an
/// oversized request with an AWS-style error) and let the gateway answer.
///
/// The gateway runs on its own task: a client that disconnects mid-request does not cancel a write
/// half-way, and a panic (a bug) becomes a 500 instead of a dropped connection.
async fn gateway(State(app): State<Arc<App>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let limit = app.gateway().max_body_bytes().saturating_add(1);
    let bytes = match read_bounded(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            return (StatusCode::BAD_REQUEST, "request body could not be read").into_response();
        }
    };
    let request = http::Request::from_parts(parts, bytes);
    let worker = app.clone();
    let task = tokio::spawn(async move { worker.gateway().handle(request).await });
    match task.await {
        Ok(resp) => resp.map(Body::from),
        Err(e) => {
            tracing::error!(error = %e, "request handler failed");
            let body = "{\"__type\":\"InternalFailure\",\"message\":\"We encountered an internal error. Please try again.\"}";
            Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("static response")
        }
    }
}

/// Collect `body` up to `limit` bytes; stop reading (and return what was read, `limit` bytes) once
/// the limit is reached.
async fn read_bounded(mut body: Body, limit: usize) -> Result<Bytes, axum::Error> {
    // sized once from Content-Length (the size hint), so a large body is not copied as it grows
    let hint = usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).unwrap_or(limit);
    let mut buf = BytesMut::with_capacity(hint.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Ok(data) = frame.into_data() {
            let room = limit - buf.len();
            if data.len() >= room {
                buf.extend_from_slice(&data[..room]);
                break;
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}
