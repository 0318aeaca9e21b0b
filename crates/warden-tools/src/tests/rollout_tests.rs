//! The engine's rollout loop through `exec` on the local transport standing in for four
//! hosts: progress names batches and pauses, and cancelling during a pause ends the
//! call at once with the later batches not run. (The e2e suite proves rollouts on real
//! sshds; these are the engine's timing paths.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use warden_core::{Caller, ProgressSink};

const FOUR_HOSTS: &str = "hosts:\n  - {id: web-1, address: 127.0.0.1}\n  - {id: web-2, address: 127.0.0.2}\n  - {id: web-3, address: 127.0.0.3}\n  - {id: web-4, address: 127.0.0.4}\n";

#[tokio::test]
async fn progress_names_each_batch_and_the_pause_between() {
    let state = tempfile::tempdir().unwrap();
    let engine = super::engine_over(FOUR_HOSTS, state.path(), warden_core::local_transport());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let progress: ProgressSink = Arc::new(move |done, total, what| {
        sink.lock().unwrap().push(format!("{done}/{total} {what}"));
    });
    let answer = engine
        .invoke(
            &Caller::new("test"),
            "exec",
            json!({"target": "all", "command": "true", "batch_size": 2, "batch_wait": 50}),
            CancellationToken::new(),
            Some(progress),
        )
        .await
        .unwrap();
    assert_eq!(answer["summary"]["success_count"], 4, "{answer}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen[0].starts_with("1/4 web-") && seen[0].ends_with("(batch 1/2)"),
        "{seen:?}"
    );
    assert_eq!(seen[2], "2/4 batch 1/2 done; next in 50 ms");
    assert!(
        seen[4].starts_with("4/4 ") && seen[4].ends_with("(batch 2/2)"),
        "{seen:?}"
    );
}

/// A client's cancellation ends the wait (the rollout goes on as a job); `cancel`
/// ends the pause, and the later batch is not run.
#[tokio::test]
async fn cancelling_during_the_pause_ends_the_call_with_later_batches_not_run() {
    let state = tempfile::tempdir().unwrap();
    let engine = super::engine_over(FOUR_HOSTS, state.path(), warden_core::local_transport());
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        canceller.cancel();
    });
    let caller = Caller::new("test");
    let started = Instant::now();
    let running = engine
        .invoke(
            &caller,
            "exec",
            json!({"target": "all", "command": "true", "batch_size": 2,
                   "batch_wait": 600_000}),
            cancel,
            None,
        )
        .await
        .unwrap();
    assert_eq!(running["state"], "running", "{running}");
    let view = engine
        .invoke(
            &caller,
            "cancel",
            json!({"job_id": running["job_id"]}),
            CancellationToken::new(),
            None,
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the pause ended with the cancel"
    );
    assert_eq!(view["state"], "cancelled", "{view}");
    let answer = &view["result"];
    let rollout = &answer["rollout"];
    assert_eq!(rollout["stopped"]["cause"], "cancelled", "{answer}");
    assert_eq!(rollout["stopped"]["after_batch"], 1);
    assert_eq!(rollout["batches"][1]["status"], "skipped");
    assert_eq!(answer["summary"]["skipped_count"], 2);
    assert_eq!(answer["summary"]["success_count"], 2);
    let results = answer["results"].as_array().unwrap();
    assert!(
        results[2]["not_run"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{answer}"
    );
}
