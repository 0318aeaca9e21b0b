//! MCP protocol tests: the SDK's client talks to a WardenServer over an in-process
//! duplex. These cover listing, result and error shapes; SSH behaviour is proven by
//! the transport and end-to-end tests against real sshd.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure

use std::sync::Arc;

use async_trait::async_trait;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ErrorCode, PaginatedRequestParams};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::config::{Config, LoadedConfig};
use warden_core::inventory::Host;
use warden_core::transport::{ExecOutput, ExecRequest, Permit, Transport};
use warden_core::{Engine, Error, ErrorCode as WardenCode};
use warden_mcp::{ListingMode, WardenServer, tool_list};

/// These tests never reach a remote host; a remote call would be a bug.
struct NoRemoteHosts;

#[async_trait]
impl Transport for NoRemoteHosts {
    async fn exec(
        &self,
        _: &Permit,
        host: &Host,
        _: &ExecRequest,
        _: &CancellationToken,
    ) -> warden_core::Result<ExecOutput> {
        Err(Error::new(
            WardenCode::SshConnFailed,
            format!("no SSH in protocol tests ({})", host.id),
        ))
    }

    async fn files(
        &self,
        _: &Permit,
        host: &Host,
    ) -> warden_core::Result<std::sync::Arc<dyn warden_core::files::HostFiles>> {
        Err(Error::new(
            WardenCode::SftpFailed,
            format!("no SFTP in protocol tests ({})", host.id),
        ))
    }
}

async fn connect() -> (RunningService<RoleClient, ()>, tempfile::TempDir) {
    connect_with("").await
}

/// A server over one host, `extra` YAML appended to its config.
async fn connect_with(extra: &str) -> (RunningService<RoleClient, ()>, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let config = Config::parse(&format!(
        "hosts:\n  - {{id: web-1, address: 127.0.0.1, groups: [web]}}\n{extra}"
    ))
    .unwrap();
    let loaded = LoadedConfig {
        config,
        source: None,
        state_dir: state.path().to_path_buf(),
    };
    let store = Arc::new(warden_store::SqliteStore::open(&loaded.store_path()).unwrap());
    let engine = Engine::new(
        loaded,
        Arc::new(NoRemoteHosts),
        Arc::clone(warden_tools::registry()),
        store,
    )
    .unwrap();
    let (client_side, server_side) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let server = WardenServer::new(engine, ListingMode::Compact)
            .serve(server_side)
            .await
            .unwrap();
        let _ = server.waiting().await;
    });
    (().serve(client_side).await.unwrap(), state)
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> Result<Value, ServiceError> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    let result = client.call_tool(params).await?;
    let structured = result.structured_content.clone().unwrap();
    // The text content carries the same JSON, for clients that ignore structuredContent.
    let text = match &result.content[0] {
        rmcp::model::ContentBlock::Text(text) => text.text.clone(),
        other => panic!("unexpected content {other:?}"),
    };
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), structured);
    assert_eq!(
        result.is_error.unwrap_or(false),
        structured.get("error").is_some()
    );
    Ok(structured)
}

#[tokio::test]
async fn tools_list_is_compact_by_default_and_full_on_request() {
    let (client, _state) = connect().await;
    let compact = client.list_tools(None).await.unwrap().tools;
    assert_eq!(compact.len(), warden_tools::TOOLS.len());
    for tool in &compact {
        assert_eq!(
            *tool.input_schema,
            *json!({"type": "object"}).as_object().unwrap()
        );
        assert!(tool.output_schema.is_none());
        let read_only = warden_tools::registry()
            .find(&tool.name)
            .unwrap()
            .info()
            .effect
            == warden_core::tool::Effect::ReadOnly;
        let hint = tool.annotations.as_ref().and_then(|a| a.read_only_hint);
        assert_eq!(hint == Some(true), read_only, "{}", tool.name);
    }
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.0.0.insert("full".into(), json!(true));
    let mut request = PaginatedRequestParams::default();
    request.meta = Some(meta);
    // A fresh client: the SDK caches list results by cursor only.
    let (client, _state) = connect().await;
    let full = client.list_tools(Some(request)).await.unwrap().tools;
    for tool in &full {
        assert!(tool.annotations.is_some(), "{}", tool.name);
        assert!(tool.output_schema.is_some(), "{}", tool.name);
    }
    let exec = full.iter().find(|tool| tool.name == "exec").unwrap();
    assert!(exec.output_schema.is_some());
    assert!(exec.input_schema["properties"]["timeout_ms"].is_object());
    assert_eq!(
        exec.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
}

#[test]
fn instructions_index_every_tool_by_domain_in_under_a_kilobyte() {
    let text = warden_mcp::instructions(warden_tools::registry());
    assert!(text.len() < 1024, "{} bytes: {text}", text.len());
    assert!(text.contains("tools_schema"));
    for tool in warden_tools::TOOLS {
        let name = tool.info().name;
        assert!(
            text.split([' ', '\n']).any(|word| word == name),
            "{name} missing from: {text}"
        );
    }
}

#[test]
fn every_tool_states_all_four_hints_in_both_listings() {
    use warden_core::tool::Effect;
    for mode in [ListingMode::Compact, ListingMode::Full] {
        for tool in tool_list(warden_tools::registry(), mode) {
            let hints = tool.annotations.as_ref().unwrap();
            let info = warden_tools::registry().find(&tool.name).unwrap().info();
            let all = [
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
                hints.open_world_hint,
            ];
            assert!(all.iter().all(Option::is_some), "{}: {hints:?}", tool.name);
            if info.effect == Effect::ReadOnly {
                assert_eq!(hints.read_only_hint, Some(true), "{}", tool.name);
                assert_eq!(hints.destructive_hint, Some(false), "{}", tool.name);
                assert_eq!(hints.open_world_hint, Some(false), "{}", tool.name);
            } else {
                assert_eq!(hints.read_only_hint, Some(false), "{}", tool.name);
            }
        }
    }
}

#[tokio::test]
async fn results_carry_structured_content_and_the_same_text() {
    let (client, _state) = connect().await;
    let status = call(&client, "status", json!({})).await.unwrap();
    assert_eq!(status["hosts"], 1);
    let hosts = call(&client, "hosts_list", json!({"target": "group:web"}))
        .await
        .unwrap();
    assert_eq!(hosts["hosts"][0]["id"], "web-1");
    let facts = call(&client, "facts", json!({"target": "host:local"}))
        .await
        .unwrap();
    assert_eq!(facts["summary"]["ok"], true);
}

#[tokio::test]
async fn domain_errors_are_tool_results_with_the_error_object() {
    let (client, _state) = connect().await;
    let missing = call(&client, "hosts_show", json!({"host_id": "web-2"}))
        .await
        .unwrap();
    assert_eq!(missing["error"]["code"], "HOST_NOT_FOUND");
    assert_eq!(missing["error"]["suggestions"][0], "web-1");
    assert_eq!(missing["error"]["transient"], false);
    let empty = call(
        &client,
        "exec",
        json!({"target": "group:db", "command": "id"}),
    )
    .await
    .unwrap();
    assert_eq!(empty["error"]["code"], "TARGET_EMPTY");
    let local = call(
        &client,
        "exec",
        json!({"target": "host:local", "command": "id"}),
    )
    .await
    .unwrap();
    assert_eq!(local["error"]["code"], "LOCAL_DISABLED");
    let down = call(
        &client,
        "exec",
        json!({"target": "host:web-1", "command": "id"}),
    )
    .await
    .unwrap();
    assert_eq!(down["summary"]["ok"], false);
    assert_eq!(down["results"][0]["error"]["code"], "SSH_CONN_FAILED");
    assert_eq!(down["results"][0]["error"]["transient"], true);
}

#[tokio::test]
async fn unknown_tools_and_bad_arguments_are_protocol_errors() {
    let (client, _state) = connect().await;
    for (tool, args) in [
        ("no_such_tool", json!({})),
        ("exec", json!({"target": 7, "command": "id"})),
        ("exec", json!({"target": "all", "commnd": "id"})),
        ("explain", json!({})),
    ] {
        match call(&client, tool, args.clone()).await {
            Err(ServiceError::McpError(error)) => {
                assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{tool} {args}")
            }
            other => panic!("{tool} {args}: expected a JSON-RPC error, got {other:?}"),
        }
    }
    // The server is still alive after bad input.
    assert!(call(&client, "status", json!({})).await.is_ok());
}

#[tokio::test]
async fn a_client_over_its_rate_gets_the_json_rpc_rate_limit_error() {
    let (client, _state) = connect_with("limits:\n  rate: 1\n  burst: 1\n").await;
    let (a, b, c) = tokio::join!(
        call(&client, "status", json!({})),
        call(&client, "status", json!({})),
        call(&client, "status", json!({})),
    );
    let limited: Vec<_> = [a, b, c]
        .into_iter()
        .filter_map(|outcome| match outcome {
            Err(ServiceError::McpError(error)) => Some(error),
            _ => None,
        })
        .collect();
    assert!(
        !limited.is_empty(),
        "three calls at once under rate 1/burst 1"
    );
    for error in limited {
        assert_eq!(error.code, ErrorCode(-32029), "{error:?}");
        let data = error.data.unwrap();
        assert_eq!(data["error"]["code"], "RATE_LIMITED");
        assert!(
            data["error"]["retry_after_ms"]
                .as_u64()
                .is_some_and(|ms| ms > 0)
        );
    }
}
