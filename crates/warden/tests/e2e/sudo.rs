//! `exec_sudo` on real sshd hosts: NOPASSWD as root, a password from a secret
//! reference for an ordinary user whose sudoers rule wants one (never in the host's
//! process list, the audit log, a -vv log or the answer), a wrong password, a literal
//! password,
//! and policy reading through sudo.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use warden_testkit::{Fleet, SshdOptions, require_sshd, require_sudo};

use crate::client::McpProcess;
use crate::fleet;

const PASSWORD: &str = "sudo-canary-Pw-5150";
const WRONG: &str = "not-the-password-77";
const SUDO_USER: &str = "wardensudo";
const SUDOERS: &str = "/etc/sudoers.d/warden-e2e-sudo";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn audit_text(home: &Path) -> String {
    let mut audit = String::new();
    for entry in std::fs::read_dir(home.join("state/audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            audit.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    audit
}

#[test]
fn exec_sudo_runs_nopasswd_as_root_and_policy_reads_through_sudo() {
    require_sudo();
    if !is_root() {
        eprintln!("skipped: exec_sudo's NOPASSWD case logs in as root (tests run as root)");
        return;
    }
    let (_fleet, home, config) = fleet(1, "policy:\n  deny_commands: ['touch\\s+.*']\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));
    let (answer, is_error) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id", "-u"]}),
    );
    assert!(!is_error, "{answer}");
    assert_eq!(answer["results"][0]["stdout"], "0\n", "{answer}");
    let (shell, _) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "command": "echo \"$A\" | tr a-z A-Z; id -un", "env": {"A": "passed"}}),
    );
    assert_eq!(shell["results"][0]["stdout"], "PASSED\nroot\n", "{shell}");

    // The planned command is the sudo invocation; policy reads through it (and sh -c).
    let sentinel = home.path().join("sentinel");
    for args in [
        json!({"target": "fleet-01", "argv": ["touch", sentinel.display().to_string()]}),
        json!({"target": "fleet-01", "command": format!("touch {}", sentinel.display())}),
    ] {
        let (denied, is_error) = mcp.call("exec_sudo", args);
        assert!(is_error, "{denied}");
        assert_eq!(denied["error"]["code"], "POLICY_DENIED", "{denied}");
    }
    assert!(!sentinel.exists());
    let (preview, _) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id"], "dry_run": true}),
    );
    assert_eq!(
        preview["commands"][0]["command"], "sudo -n -- id",
        "{preview}"
    );

    // A literal password: refused before anything runs, and not recorded.
    let (literal, is_error) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id"], "password": "literal-Pw-31337"}),
    );
    assert!(is_error);
    assert_eq!(literal["error"]["code"], "INVALID_INPUT", "{literal}");
    assert!(
        literal["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("${env:NAME}")
    );
    assert!(!literal.to_string().contains("literal-Pw-31337"));
    assert!(mcp.close().success());
    assert!(!audit_text(home.path()).contains("literal-Pw-31337"));
}

/// An ordinary user with a password, whose sudoers rule asks for it; removed on drop.
struct SudoUser;

impl SudoUser {
    fn create() -> SudoUser {
        let exists = Command::new("id").arg(SUDO_USER).output().unwrap();
        if !exists.status.success() {
            let made = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", SUDO_USER])
                .status()
                .unwrap();
            assert!(made.success(), "useradd {SUDO_USER}");
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{SUDO_USER}:{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd");
        std::fs::write(SUDOERS, format!("{SUDO_USER} ALL=(ALL:ALL) ALL\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(SUDOERS, std::fs::Permissions::from_mode(0o440)).unwrap();
        SudoUser
    }
}

impl Drop for SudoUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(SUDOERS);
    }
}

#[test]
fn a_password_from_a_secret_reference_reaches_sudo_and_nothing_else() {
    require_sudo();
    require_sshd();
    if !is_root() {
        eprintln!("skipped: the sudo password case needs root (useradd, chpasswd, /etc/sudoers.d)");
        return;
    }
    let _user = SudoUser::create();
    let fleet = Fleet::start(1, SshdOptions::default().user(SUDO_USER)).expect("fleet");
    let home = tempfile::tempdir().unwrap();
    let config = fleet.write_config(
        &home.path().join("cfg"),
        "secrets:\n  env: [SUDO_PW, WRONG_PW]\n",
    );
    let log = home.path().join("stderr.log");
    let mut mcp = McpProcess::spawn_with_stderr(
        home.path(),
        &[
            "-vv",
            "mcp",
            "serve",
            "--config",
            &config.display().to_string(),
        ],
        &[("SUDO_PW", PASSWORD), ("WRONG_PW", WRONG)],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}),
    );
    mcp.notify("notifications/initialized", json!({}));

    // Without a password the rule wants one: a clear refusal, not a hang.
    let (needs, _) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id", "-u"]}),
    );
    let error = &needs["results"][0]["error"];
    assert_eq!(error["code"], "PERMISSION_DENIED", "{needs}");
    assert!(
        error["hint"].as_str().unwrap().contains("password"),
        "{needs}"
    );

    // With it: runs as root; the caller's stdin still follows the password. While it
    // runs, the host's process list (this machine's) is read.
    let id = mcp.send_request(
        "tools/call",
        json!({"name": "exec_sudo", "arguments": {
            "target": "fleet-01",
            "command": "sleep 2; id -u; cat",
            "stdin": "after the password\n",
            "password": "${env:SUDO_PW}",
        }}),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let processes = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let processes = String::from_utf8_lossy(&processes.stdout).into_owned();
    let answer = mcp.answer(id);
    let result = &answer["result"]["structuredContent"];
    assert_eq!(
        result["results"][0]["stdout"], "0\nafter the password\n",
        "{answer}"
    );
    assert!(
        processes.contains("sudo -k -S -p"),
        "the command was seen running: {processes}"
    );

    // A wrong password: PERMISSION_DENIED that says so.
    let (wrong, _) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id", "-u"], "password": "${env:WRONG_PW}"}),
    );
    let error = &wrong["results"][0]["error"];
    assert_eq!(error["code"], "PERMISSION_DENIED", "{wrong}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("refused the password"),
        "{wrong}"
    );
    assert_eq!(wrong["results"][0]["ok"], false);

    // A reference the operator did not allow is refused before anything runs.
    let (refused, is_error) = mcp.call(
        "exec_sudo",
        json!({"target": "fleet-01", "argv": ["id"], "password": "${env:HOME}"}),
    );
    assert!(is_error, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("secrets.env")
    );
    let answers = format!("{needs}{answer}{wrong}{refused}");
    assert!(mcp.close().success());

    let audit = audit_text(home.path());
    let debug_log = std::fs::read_to_string(&log).unwrap();
    assert!(!debug_log.is_empty(), "-vv logs something");
    for secret in [PASSWORD, WRONG] {
        assert!(!processes.contains(secret), "{secret} in ps:\n{processes}");
        assert!(!audit.contains(secret), "{secret} in the audit log");
        assert!(!debug_log.contains(secret), "{secret} in the -vv log");
        assert!(!answers.contains(secret), "{secret} in an answer");
    }
    assert!(
        audit.contains("${env:SUDO_PW}"),
        "the reference is what is kept"
    );
}
