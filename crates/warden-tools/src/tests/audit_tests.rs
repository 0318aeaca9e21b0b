//! `audit_search` filters and `audit_export` over a real audit log written by the
//! engine.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::{Caller, Engine, ErrorCode, Result};

async fn call(engine: &Engine, client: &str, name: &str, args: Value) -> Result<Value> {
    engine
        .invoke(
            &Caller::new(client),
            name,
            args,
            CancellationToken::new(),
            None,
        )
        .await
}

/// An engine whose log holds: `status` by alice, a denied `exec` by bob (a deny rule),
/// and `hosts_list` by alice.
async fn logged() -> (Engine, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let engine = super::engine_over(
        "hosts:\n  - {id: web-1, address: 127.0.0.1}\npolicy:\n  deny_commands: ['^reboot']\n",
        state.path(),
        warden_core::local_transport(),
    );
    call(&engine, "alice", "status", json!({})).await.unwrap();
    let denied = call(
        &engine,
        "bob",
        "exec",
        json!({"target": "web-1", "command": "reboot"}),
    )
    .await
    .unwrap_err();
    assert_eq!(denied.code, ErrorCode::PolicyDenied);
    call(&engine, "alice", "hosts_list", json!({}))
        .await
        .unwrap();
    (engine, state)
}

fn seqs_tools(answer: &Value) -> Vec<(String, String)> {
    answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            (
                record["tool"].as_str().unwrap().to_owned(),
                record["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn audit_search_filters_by_every_field() {
    let (engine, _state) = logged().await;
    let search = |args: Value| {
        let engine = engine.clone();
        async move { call(&engine, "reader", "audit_search", args).await.unwrap() }
    };
    let bob = search(json!({"client": "bob"})).await;
    assert_eq!(
        seqs_tools(&bob),
        [
            ("exec".into(), "requested".into()),
            ("exec".into(), "completed".into())
        ]
    );
    assert_eq!(bob["scan_limited"], false);
    assert!(bob["scanned"].as_u64().unwrap() >= 6, "{bob}");
    let denied =
        search(json!({"decision": "denied", "phase": "completed", "host_id": "web-1"})).await;
    assert_eq!(seqs_tools(&denied), [("exec".into(), "completed".into())]);
    let job = denied["records"][0]["job_id"].as_str().unwrap().to_owned();
    let by_code = search(json!({"error_code": "POLICY_DENIED"})).await;
    assert_eq!(by_code["count"], 1, "{by_code}");
    let by_job = search(json!({"job_id": job})).await;
    assert_eq!(by_job["count"], 2, "both records of the job");
    let by_class = search(json!({"class": "read_only", "tool": "exec"})).await;
    assert_eq!(by_class["count"], 0, "reboot is not read_only");
    let identity = bob["records"][0]["identity"].as_str().unwrap().to_owned();
    let mine = search(json!({"identity": identity, "tool": "status"})).await;
    assert_eq!(mine["count"], 2, "{mine}");
    let nobody = search(json!({"identity": "nobody-at-all"})).await;
    assert_eq!(nobody["count"], 0);

    // Times: everything lies between a day ago and a day ahead, nothing before 2000.
    let all = search(json!({"last": 1000})).await;
    let first_ts = all["records"][0]["ts"].as_str().unwrap().to_owned();
    let window = search(json!({"since": first_ts, "until": "2999-01-01", "last": 1000})).await;
    // Reading the log is recorded too: the window also holds the searches since.
    assert!(window["count"].as_u64() > all["count"].as_u64(), "{window}");
    let old = search(json!({"until": "2000-01-01T00:00:00+01:00"})).await;
    assert_eq!(old["count"], 0);
    let last_two = search(json!({"last": 2})).await;
    assert_eq!(last_two["count"], 2);
    assert_eq!(last_two["truncated"], true);

    for bad in [
        json!({"since": "yesterday"}),
        json!({"until": "2026-02-30T00:00:00Z"}),
    ] {
        let error = call(&engine, "reader", "audit_search", bad.clone())
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidInput, "{bad}");
        let hint = error.to_json()["error"]["hint"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(hint.contains("2026-12-01T10:00:00Z"), "{hint}");
    }
    let swapped = call(
        &engine,
        "reader",
        "audit_search",
        json!({"since": "2026-01-02", "until": "2026-01-01"}),
    )
    .await
    .unwrap_err();
    assert_eq!(swapped.code, ErrorCode::InvalidInput);
    let wrong = call(
        &engine,
        "reader",
        "audit_search",
        json!({"decision": "deny"}),
    )
    .await
    .unwrap_err();
    assert_eq!(wrong.code, ErrorCode::InvalidInput, "not a decision");
}

#[tokio::test]
async fn audit_export_writes_jsonl_as_logged_and_csv_with_fixed_columns() {
    let (engine, state) = logged().await;
    let jsonl = call(
        &engine,
        "reader",
        "audit_export",
        json!({"client": "bob", "format": "jsonl"}),
    )
    .await
    .unwrap();
    assert_eq!(jsonl["count"], 2);
    assert_eq!(jsonl["truncated"], false);
    let data = jsonl["data"].as_str().unwrap();
    assert_eq!(jsonl["bytes"], data.len());
    let log = std::fs::read_to_string(state.path().join("audit/audit-000001.jsonl")).unwrap();
    for line in data.lines() {
        assert!(log.lines().any(|logged| logged == line), "verbatim: {line}");
    }

    let csv = call(
        &engine,
        "reader",
        "audit_export",
        json!({"format": "csv", "client": "bob"}),
    )
    .await
    .unwrap();
    let data = csv["data"].as_str().unwrap();
    let rows: Vec<&str> = data.split("\r\n").collect();
    assert_eq!(
        rows[0],
        "seq,ts,client,identity,tool,hosts,phase,decision,class,outcome,error_code,duration_ms,job_id,hash"
    );
    assert_eq!(
        rows.len(),
        4,
        "header, two rows, and the final CRLF: {data:?}"
    );
    let cells: Vec<&str> = rows[2].split(',').collect();
    assert_eq!(cells.len(), 14, "{}", rows[2]);
    assert_eq!(
        (cells[2], cells[4], cells[5], cells[6], cells[7], cells[10]),
        (
            "bob",
            "exec",
            "web-1",
            "completed",
            "denied",
            "POLICY_DENIED"
        )
    );

    // A bound cuts the oldest rows and says so.
    let all = call(
        &engine,
        "reader",
        "audit_export",
        json!({"format": "jsonl"}),
    )
    .await
    .unwrap();
    let half = all["bytes"].as_u64().unwrap() / 2;
    let cut = call(
        &engine,
        "reader",
        "audit_export",
        json!({"format": "jsonl", "max_bytes": half}),
    )
    .await
    .unwrap();
    assert_eq!(cut["truncated"], true);
    assert!(cut["bytes"].as_u64().unwrap() <= half);
    let kept = cut["data"].as_str().unwrap();
    assert!(cut["count"].as_u64().unwrap() >= 1, "{cut}");
    let newest = kept.lines().last().unwrap();
    assert!(
        newest.contains(&format!("\"max_bytes\":{half}")),
        "the newest record (this call's own request) is kept: {newest}"
    );
    let too_big = call(
        &engine,
        "reader",
        "audit_export",
        json!({"max_bytes": 100_000_000}),
    )
    .await
    .unwrap_err();
    assert_eq!(too_big.code, ErrorCode::InvalidInput);
}
