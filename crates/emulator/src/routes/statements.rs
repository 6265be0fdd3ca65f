//! The SQL API subset netcheck uses (`POST /api/v2/statements`): a handful of read-only
//! statements, the synchronous 200 shape, the asynchronous 202-then-poll shape, and 422 for
//! anything else.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Call;
use crate::request::json_error;
use crate::snowflake::rest::StatementRequest;
use crate::state::{State, lock, unix_millis};

/// Uppercases and collapses whitespace so `select  current_user( ), current_role()` matches.
fn normalize(sql: &str) -> String {
    let upper = sql.trim().trim_end_matches(';').trim().to_ascii_uppercase();
    let collapsed = upper.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(", ", ",")
}

/// Column metadata in the `jsonv2` result format.
fn column(name: &str, kind: &str) -> Value {
    json!({"name": name, "database": "", "schema": "", "table": "", "nullable": false,
           "type": kind, "byteLength": null, "length": null, "scale": 0, "precision": 0,
           "collation": null})
}

/// Runs one of the known statements; `None` means it does not compile here.
fn execute(call: &Call, sql: &str, user: &str, role: &str) -> Option<(Vec<Value>, Vec<Value>)> {
    let shared = &call.shared;
    let row = |cells: &[String]| {
        Value::from(
            cells
                .iter()
                .map(|c| Value::from(c.as_str()))
                .collect::<Vec<_>>(),
        )
    };
    Some(match normalize(sql).as_str() {
        "SELECT 1" => (vec![column("1", "fixed")], vec![row(&["1".to_owned()])]),
        "SELECT CURRENT_IP_ADDRESS()" => (
            vec![column("CURRENT_IP_ADDRESS()", "text")],
            vec![row(&[crate::canonical_ip(call.ctx.client_ip).to_string()])],
        ),
        "SELECT SYSTEM$ALLOWLIST()" | "SELECT SYSTEM$WHITELIST()" => {
            // The emulator's port, not 443, so a client following the list reaches it.
            let port = shared.port;
            let list = json!([
                {"type": "SNOWFLAKE_DEPLOYMENT", "host": shared.account_host, "port": port},
                {"type": "SNOWFLAKE_DEPLOYMENT_REGIONLESS", "host": shared.account_host, "port": port},
            ]);
            (
                vec![column("SYSTEM$ALLOWLIST()", "text")],
                vec![row(&[list.to_string()])],
            )
        }
        "SELECT CURRENT_USER(),CURRENT_ROLE()" => (
            vec![
                column("CURRENT_USER()", "text"),
                column("CURRENT_ROLE()", "text"),
            ],
            vec![row(&[user.to_owned(), role.to_owned()])],
        ),
        _ => return None,
    })
}

fn status_url(handle: &str) -> String {
    format!("/api/v2/statements/{handle}")
}

/// `POST /api/v2/statements[?async=true]`.
pub(crate) fn submit(call: &Call) -> Response {
    let verified = match call.account_caller(call.bearer_token()) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(request) = serde_json::from_slice::<StatementRequest>(&call.body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            crate::snowflake::rest::codes::INVALID_PAYLOAD,
            "Incoming request does not contain a valid payload.",
        );
    };
    let Some(role) = call.statement_role(&verified, request.role.as_deref()) else {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "390189",
            "Role specified in the request is not granted to the user.",
        );
    };
    let handle = State::incident_id();
    let created_on = unix_millis(call.shared.now());
    let (status, body) = match execute(call, &request.statement, &verified.user, &role) {
        Some((columns, data)) => (
            200,
            json!({
                "resultSetMetaData": {
                    "numRows": data.len(), "format": "jsonv2", "rowType": columns,
                    "partitionInfo": [{"rowCount": data.len(), "uncompressedSize": Value::from(data.clone()).to_string().len()}],
                },
                "data": data, "code": "090001", "statementStatusUrl": status_url(&handle),
                "requestId": State::incident_id(), "sqlState": "00000", "statementHandle": handle,
                "message": "Statement executed successfully.", "createdOn": created_on,
            }),
        ),
        None => (
            422,
            json!({
                "code": "001003", "sqlState": "42000", "statementHandle": handle,
                "message": format!("SQL compilation error:\nsyntax error line 1 at position 0 unexpected '{}'.",
                    request.statement.split_whitespace().next().unwrap_or_default()),
                "createdOn": created_on, "statementStatusUrl": status_url(&handle),
            }),
        ),
    };
    let is_async = call.query.as_deref().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "async" && v == "true")
    });
    if is_async {
        lock(&call.shared.statements).insert(handle.clone(), (status, body));
        return (
            StatusCode::ACCEPTED,
            Json(json!({
                "code": "333334",
                "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                "statementHandle": handle, "statementStatusUrl": status_url(&handle),
            })),
        )
            .into_response();
    }
    respond(status, body)
}

/// `GET /api/v2/statements/{handle}`: the stored result of an asynchronous statement.
pub(crate) fn status(call: &Call, handle: &str) -> Response {
    if let Err(r) = call.account_caller(call.bearer_token()) {
        return r;
    }
    match lock(&call.shared.statements).get(handle).cloned() {
        Some((status, body)) => respond(status, body),
        None => json_error(
            StatusCode::NOT_FOUND,
            "000709",
            &format!("Statement {handle} not found."),
        ),
    }
}

fn respond(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::normalize;

    #[test_case("select 1;" => "SELECT 1")]
    #[test_case("  select current_user( ) ,\n current_role()" => "SELECT CURRENT_USER(),CURRENT_ROLE()")]
    #[test_case("SELECT SYSTEM$ALLOWLIST()" => "SELECT SYSTEM$ALLOWLIST()")]
    fn normalizes(sql: &str) -> String {
        normalize(sql)
    }
}
