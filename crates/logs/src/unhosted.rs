//! Operations whose effect depends on something a single opsloop host does not have, answered
//! honestly: reads answer what exists (nothing), writes fail with an error naming the reason.
//!
//! - Export tasks (CreateExportTask needs S3): CreateExportTask → InvalidParameterException (no S3
//!   here; read events with GetLogEvents/FilterLogEvents or `opsloop logs tail`);
//!   DescribeExportTasks → empty; CancelExportTask → ResourceNotFoundException.
//! - Import tasks (from CloudTrail Lake): CreateImportTask → InvalidParameterException;
//!   DescribeImportTasks / DescribeImportTaskBatches → empty / not found; CancelImportTask → not found.
//! - Integrations (OpenSearch) and S3 Tables integrations: Put → InvalidParameterException;
//!   ListIntegrations / ListSourcesForS3TableIntegration → empty or not found; Get/Delete/
//!   Associate/Disassociate → ResourceNotFoundException.
//! - StartLiveTail and GetLogObject answer event streams, which the wire layer does not produce:
//!   501 NotImplemented with a message saying so (tail with FilterLogEvents polling or
//!   `opsloop logs tail --follow`; read a record with GetLogRecord).
//! - Scheduled queries (they run Insights queries on a schedule into S3/EventBridge destinations):
//!   not run by this release, so CreateScheduledQuery is 501 NotImplemented; reads answer empty or
//!   not found.
//! - GetLogFields and ListAggregateLogGroupSummaries work on data sources (vended logs with data
//!   source names/types), which no log group here has: not found / empty.
//!
//! Also here: AssociateKmsKey / DisassociateKmsKey (the key ARN is stored on the group record and
//! shown by DescribeLogGroups; opsloop hosts no KMS, so events are not encrypted with it), and
//! PutBearerTokenAuthentication → InvalidOperationException (the HTTP bearer-token ingestion
//! endpoint is not served; use PutLogEvents).

use opsloop_core::{ApiError, RequestContext, Value};
use opsloop_store::ControlStore;
use serde_json::json;

use crate::error::{self, opt_str, req_str};
use crate::groups::{load_group, name_from_identifier, save_group};

fn none(what: &str, id: &str) -> ApiError {
    error::not_found(format!("{what} {id} does not exist."))
}

fn event_stream(op: &str, instead: &str) -> ApiError {
    ApiError::with_status(
        "NotImplemented",
        501,
        format!("{op} answers with an event stream, which this opsloop release does not serve; {instead}."),
    )
}

/// The log group an AssociateKmsKey/DisassociateKmsKey input names.
fn kms_group(ctx: &RequestContext, input: &Value) -> Result<String, ApiError> {
    match (
        opt_str(input, "logGroupName"),
        opt_str(input, "resourceIdentifier"),
    ) {
        (Some(_), Some(_)) => Err(error::invalid(
            "logGroupName and resourceIdentifier are mutually exclusive.",
        )),
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(r)) if r.contains(":log-group:") => crate::groups::group_from_arn(ctx, r),
        (None, Some(r)) => Err(error::invalid(format!(
            "resourceIdentifier {r}: only log group ARNs are supported by this opsloop release (query results are not kept encrypted)."
        ))),
        (None, None) => Err(error::invalid(
            "Either logGroupName or resourceIdentifier is required.",
        )),
    }
}

pub fn handle(
    store: &dyn ControlStore,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, ApiError> {
    match ctx.operation.as_str() {
        "AssociateKmsKey" => {
            let key = req_str(input, "kmsKeyId")?;
            if !key.starts_with("arn:") || !key.contains(":kms:") {
                return Err(error::invalid(format!(
                    "kmsKeyId {key} must be the ARN of a KMS key."
                )));
            }
            let mut g = load_group(store, ctx, &kms_group(ctx, input)?)?;
            g.kms_key_id = Some(key.to_string());
            save_group(store, &g)?;
            Ok(json!({}))
        }
        "DisassociateKmsKey" => {
            let mut g = load_group(store, ctx, &kms_group(ctx, input)?)?;
            if g.kms_key_id.take().is_none() {
                return Err(error::invalid(
                    "The specified log group has no KMS key associated.",
                ));
            }
            save_group(store, &g)?;
            Ok(json!({}))
        }
        "PutBearerTokenAuthentication" => {
            let g = load_group(
                store,
                ctx,
                &name_from_identifier(req_str(input, "logGroupIdentifier")?),
            )?;
            let _ = g;
            Err(ApiError::new(
                "InvalidOperationException",
                "Bearer-token (HTTP) log ingestion is not served by this opsloop release; send events with PutLogEvents.",
            ))
        }
        "CreateExportTask" => {
            load_group(store, ctx, req_str(input, "logGroupName")?)?;
            Err(error::invalid(format!(
                "Cannot export to S3 bucket {}: opsloop hosts no S3. Read events with GetLogEvents or FilterLogEvents (or `opsloop logs tail`).",
                opt_str(input, "destination").unwrap_or("")
            )))
        }
        "DescribeExportTasks" => Ok(json!({"exportTasks": []})),
        "CancelExportTask" => Err(none("Export task", req_str(input, "taskId")?)),
        "CreateImportTask" => Err(error::invalid(
            "Imports read from CloudTrail Lake, which opsloop does not host.",
        )),
        "DescribeImportTasks" => Ok(json!({"imports": []})),
        "DescribeImportTaskBatches" => Err(none("Import", req_str(input, "importId")?)),
        "CancelImportTask" => Err(none("Import", req_str(input, "importId")?)),
        "PutIntegration" => Err(error::invalid(
            "opsloop does not host Amazon OpenSearch Service: integrations cannot be created.",
        )),
        "ListIntegrations" => Ok(json!({"integrationSummaries": []})),
        "GetIntegration" | "DeleteIntegration" => {
            Err(none("Integration", req_str(input, "integrationName")?))
        }
        "AssociateSourceToS3TableIntegration" | "ListSourcesForS3TableIntegration" => Err(none(
            "S3 Tables integration",
            req_str(input, "integrationArn")?,
        )),
        "DisassociateSourceFromS3TableIntegration" => Err(none(
            "S3 Tables integration source",
            req_str(input, "identifier")?,
        )),
        "StartLiveTail" => Err(event_stream(
            "StartLiveTail",
            "poll FilterLogEvents with a start time, or run `opsloop logs tail GROUP --follow`",
        )),
        "GetLogObject" => Err(event_stream(
            "GetLogObject",
            "read the record with GetLogRecord",
        )),
        "CreateScheduledQuery" => Err(crate::not_implemented("CreateScheduledQuery")),
        "ListScheduledQueries" => Ok(json!({"scheduledQueries": []})),
        "GetScheduledQuery"
        | "UpdateScheduledQuery"
        | "DeleteScheduledQuery"
        | "GetScheduledQueryHistory" => Err(none("Scheduled query", req_str(input, "identifier")?)),
        "GetLogFields" => Err(none(
            "Data source",
            &format!(
                "{}/{}",
                req_str(input, "dataSourceName")?,
                req_str(input, "dataSourceType")?
            ),
        )),
        "ListAggregateLogGroupSummaries" => Ok(json!({"aggregateLogGroupSummaries": []})),
        other => Err(crate::not_implemented(other)),
    }
}
