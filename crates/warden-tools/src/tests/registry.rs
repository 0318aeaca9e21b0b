//! Registry invariants, looped over every tool: names, schemas, and the engine's
//! guarantees under deny-all and allow-all policies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::TOOLS;
use warden_core::config::{Config, ConfigSources};
use warden_core::inventory::Host;
use warden_core::transport::{
    CapturedStream, ExecOutput, ExecRequest, ExitStatus, Permit, Transport,
};
use warden_core::{Caller, Engine};

/// Counts calls and answers `ok`; unit tests only (real SSH is tested against sshd).
#[derive(Default)]
struct CountingTransport {
    calls: AtomicUsize,
}

#[async_trait]
impl Transport for CountingTransport {
    async fn exec(
        &self,
        permit: &Permit,
        host: &Host,
        _request: &ExecRequest,
        _cancel: &CancellationToken,
    ) -> warden_core::Result<ExecOutput> {
        assert_eq!(permit.host(), &host.id);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut stdout = CapturedStream::with_limit(100);
        stdout.push(b"ok\n");
        Ok(ExecOutput {
            status: ExitStatus::Code(0),
            stdout,
            stderr: CapturedStream::with_limit(100),
            duration: std::time::Duration::ZERO,
        })
    }

    async fn files(
        &self,
        permit: &Permit,
        host: &Host,
    ) -> warden_core::Result<std::sync::Arc<dyn warden_core::files::HostFiles>> {
        assert_eq!(permit.host(), &host.id);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(warden_core::Error::new(
            warden_core::ErrorCode::SftpFailed,
            "no file system in unit tests",
        ))
    }
}

/// An argument object for each tool that resolves to the remote host `web-1`; `None`
/// for session and file tools, which need a real file system (see `file_tests`,
/// `fleet_file_tests`).
fn sample_args(tool: &str) -> Option<Value> {
    if tool.starts_with("fs_") || tool.starts_with("session_") || ["push", "sync"].contains(&tool) {
        return None;
    }
    Some(match tool {
        "status" | "hosts_groups" | "audit_verify" => json!({}),
        "doctor" => json!({"target": "host:web-1"}),
        "explain" => json!({"error_code": "POLICY_DENIED"}),
        "tools_schema" => json!({"tool": "exec"}),
        "tools_search" => json!({"query": "hosts"}),
        "hosts_list" => json!({"target": "all"}),
        "hosts_show" => json!({"host_id": "web-1"}),
        "exec" => json!({"target": "host:web-1", "command": "uptime"}),
        "run" => json!({"host_id": "web-1", "argv": ["uptime"]}),
        "facts" => json!({"target": "all"}),
        "policy_test" => json!({"host_id": "web-1", "command": "uptime"}),
        other => panic!("add sample arguments for the new tool {other}"),
    })
}

fn engine(policy: &str) -> (Engine, Arc<CountingTransport>, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let yaml = format!("hosts:\n  - {{id: web-1, address: 127.0.0.1}}\n{policy}");
    let config = Config::parse(&yaml).unwrap();
    let sources = ConfigSources {
        config: None,
        state_dir: Some(state.path().to_path_buf()),
    };
    let loaded = warden_core::config::LoadedConfig {
        config,
        source: None,
        state_dir: sources.state_dir(),
    };
    let transport = Arc::new(CountingTransport::default());
    let engine = Engine::new(loaded, transport.clone(), Arc::clone(crate::registry())).unwrap();
    (engine, transport, state)
}

fn audit_records(state: &tempfile::TempDir) -> Vec<Value> {
    warden_core::audit::tail(&state.path().join("audit"), 1000).unwrap()
}

#[test]
fn names_are_unique_and_valid() {
    let mut seen = std::collections::HashSet::new();
    for tool in TOOLS {
        let name = tool.info().name;
        assert!(seen.insert(name), "{name} twice");
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
        assert!(
            !tool.info().summary.is_empty() && tool.info().summary.len() <= 40,
            "{name}: summary must be a few words"
        );
    }
}

#[test]
fn every_input_field_is_documented_and_schemas_are_objects() {
    for tool in TOOLS {
        let name = tool.info().name;
        let schema = tool.input_schema();
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(tool.output_schema()["type"], "object", "{name}");
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            assert!(
                property.get("description").is_some(),
                "{name}.{field} has no doc comment"
            );
        }
    }
}

#[tokio::test]
async fn deny_all_policy_stops_every_host_call_and_audits_it() {
    let (engine, transport, state) = engine("policy:\n  deny_commands: ['.*']\n");
    for tool in TOOLS {
        let name = tool.info().name;
        let Some(args) = sample_args(name) else {
            continue;
        };
        let result = engine
            .invoke(
                &Caller::new("test"),
                name,
                args.clone(),
                CancellationToken::new(),
                None,
            )
            .await;
        let touched_hosts = audit_records(&state)
            .iter()
            .any(|record| record["tool"] == name && record["hosts"] != json!([]));
        if !touched_hosts {
            assert!(result.is_ok(), "{name}: {result:?}");
            continue;
        }
        let error = result
            .err()
            .unwrap_or_else(|| panic!("{name} ran under deny-all"));
        assert_eq!(error.code, warden_core::ErrorCode::PolicyDenied, "{name}");
        let records: Vec<Value> = audit_records(&state)
            .into_iter()
            .filter(|record| record["tool"] == name)
            .collect();
        let phases: Vec<(&str, &str)> = records
            .iter()
            .map(|record| {
                (
                    record["phase"].as_str().unwrap(),
                    record["decision"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            phases,
            [("requested", "denied"), ("completed", "denied")],
            "{name}"
        );
    }
    assert_eq!(transport.calls.load(Ordering::SeqCst), 0);
    assert!(
        warden_core::audit::verify(&state.path().join("audit"))
            .unwrap()
            .ok
    );
}

#[tokio::test]
async fn allow_all_policy_runs_every_tool_with_two_records_each() {
    let (engine, transport, state) = engine("");
    for tool in TOOLS {
        let name = tool.info().name;
        let Some(args) = sample_args(name) else {
            continue;
        };
        let result = engine
            .invoke(
                &Caller::new("test"),
                name,
                args.clone(),
                CancellationToken::new(),
                None,
            )
            .await;
        let value = result.unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(value.is_object(), "{name}");
        let phases: Vec<Value> = audit_records(&state)
            .into_iter()
            .filter(|record| record["tool"] == name)
            .map(|record| record["phase"].clone())
            .collect();
        assert_eq!(phases, [json!("requested"), json!("completed")], "{name}");
    }
    assert!(transport.calls.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn exec_on_local_is_refused_by_default_but_facts_work() {
    let (engine, _transport, _state) = engine("");
    let caller = Caller::new("test");
    let error = engine
        .invoke(
            &caller,
            "exec",
            json!({"target": "host:local", "command": "id"}),
            CancellationToken::new(),
            None,
        )
        .await
        .err()
        .unwrap();
    assert_eq!(error.code, warden_core::ErrorCode::LocalDisabled);
    let facts = engine
        .invoke(
            &caller,
            "facts",
            json!({"target": "host:local"}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(facts["results"][0]["ok"], true, "{facts}");
    assert!(
        facts["results"][0]["facts"]["kernel"].is_string(),
        "{facts}"
    );
}

#[tokio::test]
async fn wrong_argument_types_and_unknown_fields_are_schema_violations() {
    let (engine, _transport, _state) = engine("");
    let caller = Caller::new("test");
    for args in [
        json!({"target": 5, "command": "x"}),
        json!({"target": "all", "comand": "x"}),
        json!("text"),
    ] {
        let error = engine
            .invoke(
                &caller,
                "exec",
                args.clone(),
                CancellationToken::new(),
                None,
            )
            .await
            .err()
            .unwrap();
        assert!(error.schema_violation, "{args}: {error}");
    }
    let error = engine
        .invoke(&caller, "exce", json!({}), CancellationToken::new(), None)
        .await
        .err()
        .unwrap();
    assert!(error.suggestions.contains(&"exec".to_owned()));
}

#[tokio::test]
async fn dry_run_previews_without_touching_hosts() {
    let (engine, transport, _state) = engine("");
    let preview = engine
        .invoke(
            &Caller::new("test"),
            "exec",
            json!({"target": "all", "command": "rm -rf /tmp/x", "dry_run": true}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["hosts"], json!(["web-1"]));
    assert_eq!(transport.calls.load(Ordering::SeqCst), 0);
}
