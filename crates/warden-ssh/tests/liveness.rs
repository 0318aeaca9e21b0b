//! Connections that stay honest (docs/ssh.md), against real sshd processes frozen with
//! SIGSTOP: a frozen host fails within its deadline and answers again once thawed, a
//! frozen pooled connection is dropped by keepalives alone, a command on a host that
//! freezes under it is never reported as killed, and the connect deadline holds
//! against a listener that accepts and never speaks.
//!
//! Time bounds are generous upper bounds (a 2 s deadline, asserted under 15 s): they
//! prove "within the deadline" on a loaded machine, never a latency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{host_for, settings, trusting};
use tokio_util::sync::CancellationToken;
use warden_core::config::{HostKeyChecking, SshSettings};
use warden_core::error::{Error, ErrorCode};
use warden_core::inventory::{Host, HostId, HostKind};
use warden_core::transport::{Command, ExecOutput, ExecRequest, Permit, Transport};
use warden_ssh::SshTransport;
use warden_testkit::{Sshd, SshdOptions, require_sshd};

/// The connect deadline of these tests.
const DEADLINE_MS: u64 = 2_000;
/// What "within the deadline" is asserted as: far above it, far below a hang.
const BOUND: Duration = Duration::from_secs(15);

fn request(command: &str, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command: Command::Shell(command.to_owned()),
        env: BTreeMap::new(),
        stdin: None,
        working_directory: None,
        timeout,
        max_output_bytes: 65_536,
        hide_command: false,
        spool: None,
        spill: None,
        secret_stdin: None,
    }
}

async fn exec(transport: &SshTransport, host: &Host, command: &str) -> Result<ExecOutput, Error> {
    exec_with(transport, host, &request(command, Duration::from_secs(30))).await
}

async fn exec_with(
    transport: &SshTransport,
    host: &Host,
    request: &ExecRequest,
) -> Result<ExecOutput, Error> {
    transport
        .exec(
            &Permit::for_tests(host),
            host,
            request,
            &CancellationToken::new(),
        )
        .await
}

/// Settings that trust `sshd`, with the short connect deadline.
fn short_deadline(sshd: &Sshd) -> SshSettings {
    let mut settings = trusting(sshd).settings().clone();
    settings.connect_timeout_ms = DEADLINE_MS;
    settings
}

/// The error a frozen or silent host must give: transient, with a hint.
fn assert_unresponsive(error: &Error, started: Instant) {
    assert_eq!(error.code, ErrorCode::SshConnFailed, "{error}");
    assert!(error.transient());
    assert!(
        error.message.contains("ssh.connect_timeout_ms"),
        "names the deadline: {}",
        error.message
    );
    assert!(
        error
            .hint
            .as_deref()
            .is_some_and(|hint| hint.contains("Retry")),
        "{error:?}"
    );
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_host_fails_within_its_deadline_and_answers_again_once_thawed() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = SshTransport::new(short_deadline(&sshd));
    let host = host_for(&sshd, sshd.user());
    exec(&transport, &host, "true").await.unwrap();
    assert_eq!(transport.stats().connects, 1);

    sshd.freeze();
    // The pooled connection hears nothing (the channel open's deadline), then a
    // fresh connect reaches the kernel's backlog and hears nothing (the connect's).
    let started = Instant::now();
    let error = exec(&transport, &host, "true").await.unwrap_err();
    assert_unresponsive(&error, started);
    assert_eq!(
        transport.stats().open_connections,
        0,
        "dropped from the pool"
    );
    // Nothing pooled now: a fresh connect, one deadline.
    let started = Instant::now();
    let error = exec(&transport, &host, "true").await.unwrap_err();
    assert_unresponsive(&error, started);

    sshd.thaw();
    let output = exec(&transport, &host, "echo back").await.unwrap();
    assert_eq!(output.stdout.text(), "back\n");
    assert_eq!(transport.stats().connects, 2, "reconnected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_keepalives_drop_a_frozen_pooled_connection() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let mut settings = short_deadline(&sshd);
    settings.keepalive_interval_s = 1;
    let transport = SshTransport::new(settings);
    let host = host_for(&sshd, sshd.user());
    exec(&transport, &host, "true").await.unwrap();
    assert_eq!(transport.stats().open_connections, 1);

    sshd.freeze();
    // No call: russh's keepalives alone find the connection dead (3 unanswered).
    let started = Instant::now();
    while transport.stats().open_connections != 0 {
        assert!(
            started.elapsed() < BOUND,
            "a frozen connection is still pooled after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sshd.thaw();
    exec(&transport, &host, "true").await.unwrap();
    assert_eq!(transport.stats().connects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_freezing_under_a_command_is_outcome_unknown_not_killed() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = Arc::new(SshTransport::new(short_deadline(&sshd)));
    let host = Arc::new(host_for(&sshd, sshd.user()));
    exec(&transport, &host, "true").await.unwrap();
    let started = Instant::now();
    let running = {
        let (transport, host) = (Arc::clone(&transport), Arc::clone(&host));
        tokio::spawn(async move {
            let request = request("sleep 30", Duration::from_secs(4));
            exec_with(&transport, &host, &request).await
        })
    };
    // Well before the command's timeout, and after its channel opened.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sshd.freeze();
    let error = tokio::time::timeout(BOUND, running)
        .await
        .expect("the call hung on a frozen host")
        .unwrap()
        .unwrap_err();
    // The kill could not be delivered: the answer must not say it was.
    assert_eq!(error.code, ErrorCode::OutcomeUnknown, "{error}");
    assert!(error.message.contains("may still be running"), "{error}");
    assert!(error.hint.is_some());
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(
        transport.stats().open_connections,
        0,
        "dropped from the pool"
    );

    sshd.thaw();
    exec(&transport, &host, "true").await.unwrap();
    assert_eq!(transport.stats().connects, 2);
}

/// A TCP listener that accepts and never speaks; how many connections it accepted.
async fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        // Held, not dropped: a closed socket would be an immediate error, not silence.
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

fn silent_host(port: u16) -> Host {
    Host {
        id: HostId::new("mute"),
        kind: HostKind::Ssh,
        address: String::from("127.0.0.1"),
        port: Some(port),
        user: Some(String::from("root")),
        identity_file: None,
        groups: Vec::new(),
        tags: BTreeMap::new(),
        role: None,
        proxy_jump: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_deadline_holds_against_a_listener_that_never_speaks() {
    let (port, accepted) = silent_listener().await;
    let mut settings = settings(
        &std::env::temp_dir().join("warden-none-known"),
        HostKeyChecking::Strict,
    );
    settings.connect_timeout_ms = DEADLINE_MS;
    let transport = SshTransport::new(settings);
    let host = silent_host(port);
    let started = Instant::now();
    let error = exec(&transport, &host, "true").await.unwrap_err();
    assert_unresponsive(&error, started);
    assert!(error.message.contains("mute"), "{}", error.message);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(transport.stats().connects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_on_a_silent_host_share_one_connect_deadline() {
    let (port, accepted) = silent_listener().await;
    let mut settings = settings(
        &std::env::temp_dir().join("warden-none-known"),
        HostKeyChecking::Strict,
    );
    settings.connect_timeout_ms = DEADLINE_MS;
    let transport = Arc::new(SshTransport::new(settings));
    let host = Arc::new(silent_host(port));
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    // Taking turns, eight callers would wait out eight deadlines (16 s).
    for _ in 0..8 {
        let (transport, host) = (Arc::clone(&transport), Arc::clone(&host));
        calls.spawn(async move { exec(&transport, &host, "true").await });
    }
    while let Some(result) = calls.join_next().await {
        assert_unresponsive(&result.unwrap().unwrap_err(), started);
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connect, its failure shared"
    );
}
