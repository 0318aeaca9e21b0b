//! SshTransport against real OpenSSH sshd processes on loopback (warden-testkit): exec,
//! output, env, stdin, timeouts and cancellation (as root and as an ordinary user),
//! authentication and host key failures, the pool, reconnects, dead hosts, ProxyJump.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{host_for, settings, trusting};
use tokio_util::sync::CancellationToken;
use warden_core::config::HostKeyChecking;
use warden_core::error::{Error, ErrorCode};
use warden_core::inventory::{Host, HostId, HostKind};
use warden_core::transport::{Command, ExecOutput, ExecRequest, ExitStatus, Permit, Transport};
use warden_ssh::SshTransport;
use warden_testkit::{
    Fleet, KeyType, Sshd, SshdOptions, generate_key, non_root_user, require_sshd,
};

fn request(command: &str) -> ExecRequest {
    ExecRequest {
        command: Command::Shell(command.to_owned()),
        env: BTreeMap::new(),
        stdin: None,
        working_directory: None,
        timeout: Duration::from_secs(30),
        max_output_bytes: 65_536,
        hide_command: false,
        spool: None,
        spill: None,
        secret_stdin: None,
    }
}

async fn exec(
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

async fn ok(transport: &SshTransport, host: &Host, command: &str) -> ExecOutput {
    match exec(transport, host, &request(command)).await {
        Ok(output) => output,
        Err(error) => panic!("{command:?} failed: {error}"),
    }
}

fn code_of(result: Result<ExecOutput, Error>) -> ErrorCode {
    match result {
        Ok(output) => panic!("expected an error, got {:?}", output.status),
        Err(error) => {
            assert!(!error.message.is_empty());
            error.code
        }
    }
}

/// A `sleep` duration unique to this process and call, so `pgrep -f` finds only ours.
fn unique_sleep() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "30.{:05}{:03}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `[3]0.…` matches `30.…` but not the checking shell's own command line.
async fn still_running(transport: &SshTransport, host: &Host, sleep: &str) -> bool {
    let pattern = format!("[{}]{}", &sleep[..1], &sleep[1..]);
    let output = ok(
        transport,
        host,
        &format!("pgrep -f '{pattern}'; echo rc=$?"),
    )
    .await;
    !String::from_utf8_lossy(&output.stdout.bytes).contains("rc=1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_output_and_exit_codes() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());

    let output = ok(&transport, &host, "echo hello; hostname >/dev/null").await;
    assert_eq!(output.status, ExitStatus::Code(0));
    assert_eq!(output.stdout.text(), "hello\n");
    assert!(output.stderr.bytes.is_empty());

    let output = ok(&transport, &host, "echo oops >&2; exit 3").await;
    assert_eq!(output.status, ExitStatus::Code(3));
    assert_eq!(output.stderr.text(), "oops\n");
    assert!(output.stdout.bytes.is_empty());

    let output = ok(&transport, &host, "kill -TERM $$").await;
    assert_eq!(output.status, ExitStatus::Signal(String::from("TERM")));

    let argv = ExecRequest {
        command: Command::Argv(vec![
            "printf".into(),
            "%s|".into(),
            "a b".into(),
            "$(id)".into(),
        ]),
        ..request("")
    };
    let output = exec(&transport, &host, &argv).await.unwrap();
    assert_eq!(output.stdout.text(), "a b|$(id)|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_directory_and_stdin_are_applied() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());

    // sshd's AcceptEnv only allows LANG; the others must still arrive.
    let mut with_env = request(r#"printf '%s|%s|%s' "$WARDEN_ODD" "$LANG" "$EMPTY""#);
    with_env
        .env
        .insert("WARDEN_ODD".into(), "it's $(not) \"run\"\nline2".into());
    with_env.env.insert("LANG".into(), "C".into());
    with_env.env.insert("EMPTY".into(), String::new());
    let output = exec(&transport, &host, &with_env).await.unwrap();
    assert_eq!(output.stdout.text(), "it's $(not) \"run\"\nline2|C|");

    let mut bad_env = request("true");
    bad_env.env.insert("NOT-A-NAME".into(), "x".into());
    assert_eq!(
        code_of(exec(&transport, &host, &bad_env).await),
        ErrorCode::InvalidInput
    );

    let mut in_dir = request("pwd");
    in_dir.working_directory = Some(String::from("/usr/share"));
    let output = exec(&transport, &host, &in_dir).await.unwrap();
    assert_eq!(output.stdout.text(), "/usr/share\n");

    let mut missing_dir = request("pwd");
    missing_dir.working_directory = Some(String::from("/nonexistent dir"));
    let output = exec(&transport, &host, &missing_dir).await.unwrap();
    assert_eq!(output.status, ExitStatus::Code(126));
    assert!(output.stdout.bytes.is_empty());

    let mut piped = request("cat; echo end");
    piped.stdin = Some(b"line1\nline2\n".to_vec());
    let output = exec(&transport, &host, &piped).await.unwrap();
    assert_eq!(output.stdout.text(), "line1\nline2\nend\n");

    // No stdin at all still sends EOF, so a reader ends instead of hanging.
    let output = ok(&transport, &host, "cat; echo done").await;
    assert_eq!(output.stdout.text(), "done\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_is_truncated_with_true_size() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let mut big = request("head -c 5000000 /dev/zero; echo tail >&2");
    big.max_output_bytes = 1000;
    let output = exec(&transport, &host, &big).await.unwrap();
    assert_eq!(output.status, ExitStatus::Code(0));
    // Head and tail: half the limit each.
    assert_eq!(output.stdout.bytes, vec![0u8; 500]);
    assert_eq!(output.stdout.tail(), vec![0u8; 500]);
    assert_eq!(output.stdout.total_bytes, 5_000_000);
    assert!(output.stdout.truncated());
    assert_eq!(output.stderr.text(), "tail\n");

    // A big stdin echoed back must not deadlock the two windows.
    let mut echo = request("cat");
    echo.stdin = Some(vec![b'x'; 3_000_000]);
    echo.max_output_bytes = 10;
    let output = exec(&transport, &host, &echo).await.unwrap();
    assert_eq!(output.stdout.total_bytes, 3_000_000);
}

async fn timeout_kills_remote_process(user: &str) {
    let sshd = Sshd::start(SshdOptions::default().user(user)).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let sleep = unique_sleep();
    let mut slow = request(&format!("echo started; sleep {sleep}; echo never"));
    slow.timeout = Duration::from_secs(1);
    let output = exec(&transport, &host, &slow).await.unwrap();
    assert_eq!(output.status, ExitStatus::TimedOut);
    assert_eq!(output.stdout.text(), "started\n");
    assert!(
        !still_running(&transport, &host, &sleep).await,
        "sleep {sleep} survived the timeout as {user}"
    );
    // The kill used a second channel; the connection itself is fine.
    assert_eq!(transport.stats().connects, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_remote_process_as_root() {
    require_sshd();
    timeout_kills_remote_process("root").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_remote_process_as_ordinary_user() {
    require_sshd();
    // Never a skip: as root the testkit creates the user.
    let user = non_root_user().expect(
        "no user wardentest: run the tests as root once (they create it), or `useradd -m wardentest`",
    );
    timeout_kills_remote_process(&user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_kills_remote_process() {
    require_sshd();
    let user = non_root_user().expect(
        "no user wardentest: run the tests as root once (they create it), or `useradd -m wardentest`",
    );
    let sshd = Sshd::start(SshdOptions::default().user(user)).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    let sleep = unique_sleep();
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            cancel.cancel();
        })
    };
    let slow = request(&format!("sleep {sleep}"));
    let output = transport
        .exec(&Permit::for_tests(&host), &host, &slow, &cancel)
        .await
        .unwrap();
    canceller.await.unwrap();
    assert_eq!(output.status, ExitStatus::Cancelled);
    assert!(!still_running(&transport, &host, &sleep).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_auth_failed() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let wrong_key = sshd.dir().join("wrong_key");
    generate_key(&wrong_key, KeyType::Ed25519).unwrap();
    let mut host = host_for(&sshd, sshd.user());
    host.identity_file = Some(wrong_key.clone());
    let error = exec(&transport, &host, &request("true")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::SshAuthFailed);
    assert!(!error.transient());
    assert!(error.message.contains("web-1"), "{}", error.message);
    assert!(
        error
            .message
            .contains(&format!("127.0.0.1:{}", sshd.port())),
        "{}",
        error.message
    );

    // Agents read this message: it names the key by its place, never its path.
    let wrong_path = wrong_key.display().to_string();
    let shown = error.to_json().to_string();
    assert!(!shown.contains(&wrong_path), "{shown}");
    assert!(
        !shown.contains(&sshd.dir().display().to_string()),
        "{shown}"
    );
    assert!(
        error.message.contains("the configured identity file"),
        "{}",
        error.message
    );

    let missing = sshd.dir().join("no_such_key");
    host.identity_file = Some(missing.clone());
    let error = exec(&transport, &host, &request("true")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::SshAuthFailed);
    let shown = error.to_json().to_string();
    assert!(!shown.contains(&missing.display().to_string()), "{shown}");
    assert!(
        shown.contains("cannot use the configured identity file"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_and_ecdsa_client_keys_work() {
    require_sshd();
    for key_type in [KeyType::Rsa, KeyType::Ecdsa] {
        let sshd = Sshd::start(SshdOptions::default().client_key_type(key_type)).unwrap();
        let transport = trusting(&sshd);
        let output = ok(&transport, &host_for(&sshd, sshd.user()), "echo ok").await;
        assert_eq!(output.stdout.text(), "ok\n", "{key_type:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha1_rsa_host_keys_are_refused_unless_opted_in() {
    require_sshd();
    // OpenSSH 8.8+ offers ssh-rsa only when told to.
    let sha1_only = Sshd::start(
        SshdOptions::default()
            .host_key_type(KeyType::Rsa)
            .extra_config("HostKeyAlgorithms ssh-rsa"),
    )
    .unwrap();
    assert!(sha1_only.host_public_key().starts_with("ssh-rsa "));
    let host = host_for(&sha1_only, sha1_only.user());
    let error = exec(&trusting(&sha1_only), &host, &request("true"))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SshConnFailed, "{error}");
    assert_eq!(error.host_id.as_deref(), Some("web-1"));
    assert!(
        error.message.contains("ssh-rsa") && error.message.contains("SHA-1"),
        "{}",
        error.message
    );
    let hint = error.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("ssh.allow_sha1_rsa: true") && hint.contains("ed25519"),
        "{hint}"
    );

    let known_hosts = sha1_only.dir().join("client_known_hosts");
    let mut opted_in = settings(&known_hosts, HostKeyChecking::Strict);
    opted_in.allow_sha1_rsa = true;
    let output = ok(&SshTransport::new(opted_in), &host, "echo sha1").await;
    assert_eq!(output.stdout.text(), "sha1\n");

    // The same kind of key signing with SHA-2 needs no opt-in.
    let sha2 = Sshd::start(SshdOptions::default().host_key_type(KeyType::Rsa)).unwrap();
    let output = ok(&trusting(&sha2), &host_for(&sha2, sha2.user()), "echo sha2").await;
    assert_eq!(output.stdout.text(), "sha2\n");
}

/// OpenSSH 9.2 lists rsa-sha2-* in server-sig-algs whatever PubkeyAcceptedAlgorithms
/// says, so a server taking only `ssh-rsa` user signatures refuses the SHA-2 one warden
/// makes, and warden does not retry with SHA-1 (which servers that list nothing would
/// need: `rsa_signature`'s unit test). The error names the key, not its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_user_keys_are_not_retried_with_sha1() {
    require_sshd();
    let sshd = Sshd::start(
        SshdOptions::default()
            .client_key_type(KeyType::Rsa)
            .extra_config("PubkeyAcceptedAlgorithms ssh-rsa"),
    )
    .unwrap();
    let host = host_for(&sshd, sshd.user());
    let error = exec(&trusting(&sshd), &host, &request("true"))
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::SshAuthFailed, "{error}");
    assert!(
        error
            .message
            .contains("the server refused the configured identity file"),
        "{}",
        error.message
    );
    let shown = error.to_json().to_string();
    assert!(
        !shown.contains(&sshd.client_key_path().display().to_string()),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_refused_in_strict_mode() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let known_hosts = sshd.dir().join("empty_known_hosts");
    std::fs::write(&known_hosts, "# nothing yet\n").unwrap();
    let transport = SshTransport::new(settings(&known_hosts, HostKeyChecking::Strict));
    let host = host_for(&sshd, sshd.user());
    let error = exec(&transport, &host, &request("true")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::HostKeyUnknown, "{error}");
    assert!(error.message.contains("SHA256:"), "{}", error.message);
    let shown = error.to_json().to_string();
    assert!(
        !shown.contains(&known_hosts.display().to_string()) && shown.contains("ssh.known_hosts"),
        "the file is named by its setting, not its path: {shown}"
    );
    // Nothing was learned in strict mode.
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        "# nothing yet\n"
    );

    // A missing file is the same as an empty one.
    let transport = SshTransport::new(settings(
        &sshd.dir().join("absent"),
        HostKeyChecking::Strict,
    ));
    assert_eq!(
        code_of(exec(&transport, &host, &request("true")).await),
        ErrorCode::HostKeyUnknown
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_mismatch_and_not_retried() {
    require_sshd();
    let mut sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    ok(&transport, &host, "true").await;
    sshd.restart_with_new_host_key().unwrap();
    let error = exec(&transport, &host, &request("true")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::HostKeyMismatch, "{error}");
    assert!(!error.transient());
    assert!(error.message.contains("web-1"), "{}", error.message);
    // One connect before, one failed attempt after: no retry loop on a key mismatch.
    assert_eq!(transport.stats().connects, 1);
    assert_eq!(transport.stats().open_connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_learns_the_key_but_still_refuses_a_change() {
    require_sshd();
    let mut sshd = Sshd::start(SshdOptions::default()).unwrap();
    let known_hosts = sshd.dir().join("ssh/known_hosts");
    let host = host_for(&sshd, sshd.user());
    let transport = SshTransport::new(settings(&known_hosts, HostKeyChecking::AcceptNew));
    ok(&transport, &host, "true").await;
    let learned = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(learned.contains(&sshd.host_key_line()), "{learned}");

    // The learned line is enough for strict mode.
    let strict = SshTransport::new(settings(&known_hosts, HostKeyChecking::Strict));
    ok(&strict, &host, "true").await;

    sshd.restart_with_new_host_key().unwrap();
    let transport = SshTransport::new(settings(&known_hosts, HostKeyChecking::AcceptNew));
    assert_eq!(
        code_of(exec(&transport, &host, &request("true")).await),
        ErrorCode::HostKeyMismatch
    );
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), learned);

    // Off accepts anything (and warns).
    let off = SshTransport::new(settings(&known_hosts, HostKeyChecking::Off));
    ok(&off, &host, "true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_known_hosts_entry_is_trusted() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let known_hosts = sshd.dir().join("hashed_known_hosts");
    sshd.write_known_hosts(&known_hosts).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .arg("-q")
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let transport = SshTransport::new(settings(&known_hosts, HostKeyChecking::Strict));
    ok(&transport, &host_for(&sshd, sshd.user()), "true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_reuses_one_connection_and_shutdown_closes_it() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    ok(&transport, &host, "true").await;
    ok(&transport, &host, "true").await;
    let stats = transport.stats();
    assert_eq!(stats.connects, 1);
    assert!(stats.reused >= 1);
    assert_eq!(stats.open_connections, 1);
    transport.shutdown().await;
    assert_eq!(transport.stats().open_connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connection_is_closed_and_replaced() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let known_hosts = sshd.dir().join("client_known_hosts");
    sshd.write_known_hosts(&known_hosts).unwrap();
    let mut idle = settings(&known_hosts, HostKeyChecking::Strict);
    idle.idle_timeout_s = 1;
    let transport = SshTransport::new(idle);
    let host = host_for(&sshd, sshd.user());
    ok(&transport, &host, "true").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ok(&transport, &host, "true").await;
    assert_eq!(transport.stats().connects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_execs_share_one_connection() {
    require_sshd();
    let sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = Arc::new(trusting(&sshd));
    let host = Arc::new(host_for(&sshd, sshd.user()));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..20 {
        let transport = Arc::clone(&transport);
        let host = Arc::clone(&host);
        tasks.spawn(async move {
            let output = ok(&transport, &host, &format!("echo {index}")).await;
            assert_eq!(output.stdout.text(), format!("{index}\n"));
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let stats = transport.stats();
    assert_eq!(stats.connects, 1);
    assert_eq!(stats.reused, 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_dying_mid_command_is_an_error_not_a_hang() {
    require_sshd();
    let mut sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = Arc::new(trusting(&sshd));
    let host = Arc::new(host_for(&sshd, sshd.user()));
    ok(&transport, &host, "true").await;
    let running = {
        let transport = Arc::clone(&transport);
        let host = Arc::clone(&host);
        tokio::spawn(async move { exec(&transport, &host, &request("echo begun; sleep 10")).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    sshd.kill();
    let result = tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("exec hung after the host died")
        .unwrap();
    let code = code_of(result);
    assert!(
        matches!(code, ErrorCode::OutcomeUnknown | ErrorCode::SshConnFailed),
        "{code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_pooled_connection_is_replaced_transparently() {
    require_sshd();
    let mut sshd = Sshd::start(SshdOptions::default()).unwrap();
    let transport = trusting(&sshd);
    let host = host_for(&sshd, sshd.user());
    ok(&transport, &host, "true").await;
    sshd.restart().unwrap();
    let output = ok(&transport, &host, "echo again").await;
    assert_eq!(output.stdout.text(), "again\n");
    assert_eq!(transport.stats().connects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_conn_failed() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir();
    let transport = SshTransport::new(settings(
        &dir.join("warden-none-known"),
        HostKeyChecking::Strict,
    ));
    let host = Host {
        id: HostId::new("gone"),
        kind: HostKind::Ssh,
        address: String::from("127.0.0.1"),
        port: Some(port),
        user: Some(String::from("root")),
        identity_file: None,
        groups: Vec::new(),
        tags: BTreeMap::new(),
        role: None,
        proxy_jump: None,
    };
    let error = exec(&transport, &host, &request("true")).await.unwrap_err();
    assert_eq!(error.code, ErrorCode::SshConnFailed);
    assert!(error.transient());
    assert!(error.message.contains("gone"), "{}", error.message);
    assert!(
        error.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        error.message
    );
    assert_eq!(transport.stats().connects, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_config_resolves_alias_and_proxy_jump() {
    require_sshd();
    let fleet = Fleet::start(2, SshdOptions::default()).unwrap();
    let (jump, target) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    let dir = target.dir();
    let known_hosts = dir.join("fleet_known_hosts");
    std::fs::write(&known_hosts, fleet.known_hosts_text()).unwrap();
    let ssh_config = dir.join("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host jumpbox\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n\n\
             Host target-alias\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  ProxyJump jumpbox\n  StrictHostKeyChecking yes\n",
            jump.port(),
            jump.user(),
            fleet.client_key_path().display(),
            target.port(),
            target.user(),
            fleet.client_key_path().display(),
        ),
    )
    .unwrap();
    let mut with_config = settings(&known_hosts, HostKeyChecking::Strict);
    with_config.use_ssh_config = true;
    with_config.ssh_config_file = ssh_config;

    // Everything from ssh_config: address, port, user, key and the jump.
    let transport = SshTransport::new(with_config.clone());
    let host = Host {
        id: HostId::new("db-1"),
        kind: HostKind::Ssh,
        address: String::from("target-alias"),
        port: None,
        user: None,
        identity_file: None,
        groups: Vec::new(),
        tags: BTreeMap::new(),
        role: None,
        proxy_jump: None,
    };
    let output = ok(&transport, &host, "echo via jump").await;
    assert_eq!(output.stdout.text(), "via jump\n");
    let stats = transport.stats();
    assert_eq!((stats.connects, stats.open_connections), (2, 2));

    // Explicit host fields with a jump alias resolved through ssh_config.
    let transport = SshTransport::new(with_config);
    let mut host = host_for(target, target.user());
    host.proxy_jump = Some(String::from("jumpbox"));
    ok(&transport, &host, "true").await;
    ok(&transport, &host, "true").await;
    let stats = transport.stats();
    assert_eq!((stats.connects, stats.open_connections), (2, 2));

    // Without the jump host the tunnel cannot be built: a connection error.
    let mut unreachable = host_for(target, target.user());
    unreachable.id = HostId::new("db-2");
    unreachable.proxy_jump = Some(format!("root@127.0.0.1:{}", closed_port()));
    assert_eq!(
        code_of(exec(&transport, &unreachable, &request("true")).await),
        ErrorCode::SshConnFailed
    );
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_config_parses_into_reachable_hosts() {
    require_sshd();
    let fleet = Fleet::start(2, SshdOptions::default()).unwrap();
    let dir = fleet.hosts()[0].dir().join("config");
    let path = fleet.write_config(&dir, "limits:\n  max_output_bytes: 1000\n");
    let config =
        warden_core::config::Config::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(config.limits.max_output_bytes, 1000);
    let inventory = warden_core::inventory::Inventory::from_config(&config);
    let transport = SshTransport::new(config.ssh.clone());
    let hosts = inventory.resolve("group:db").unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].id.as_str(), Fleet::host_id(1));
    for host in inventory.resolve("all").unwrap() {
        let output = ok(&transport, &host, "echo up").await;
        assert_eq!(output.stdout.text(), "up\n");
    }
}
