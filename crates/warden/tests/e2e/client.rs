//! A raw newline-delimited JSON-RPC MCP client over a spawned `warden mcp serve`, so
//! tests control every byte (malformed input, cancellation notifications, EOF).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::{Value, json};

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct McpProcess {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

/// A `warden` command with an isolated HOME and state dir (no user config leaks in).
pub fn warden_command(home: &Path) -> Command {
    let mut command = Command::new(WARDEN);
    command
        .env("HOME", home)
        .env("WARDEN_STATE_DIR", home.join("state"))
        .env_remove("WARDEN_CONFIG")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("WARDEN_UNSAFE_LOCAL")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .current_dir(home);
    command
}

impl McpProcess {
    /// Spawns `warden ARGS` with extra environment (`WARDEN_UNSAFE_LOCAL=1`).
    pub fn spawn(home: &Path, args: &[&str], env: &[(&str, &str)]) -> McpProcess {
        McpProcess::spawn_with_stderr(home, args, env, Stdio::inherit())
    }

    /// [`McpProcess::spawn`] with stderr going to `stderr` (a log file to inspect).
    pub fn spawn_with_stderr(
        home: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> McpProcess {
        let mut child = warden_command(home)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn warden");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        McpProcess {
            child,
            stdin,
            lines,
            next_id: 1,
        }
    }

    /// Spawns and completes the initialize handshake.
    pub fn start(home: &Path, config: Option<&Path>) -> McpProcess {
        McpProcess::start_with(home, config, &[])
    }

    /// [`McpProcess::start`] with extra environment.
    pub fn start_with(home: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> McpProcess {
        let mut args = vec!["mcp", "serve"];
        let config_arg;
        if let Some(config) = config {
            config_arg = config.display().to_string();
            args.extend(["--config", &config_arg]);
        }
        let mut process = McpProcess::spawn(home, &args, env);
        let answer = process.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "e2e", "version": "1"}
            }),
        );
        assert_eq!(answer["result"]["serverInfo"]["name"], "warden", "{answer}");
        process.notify("notifications/initialized", json!({}));
        process
    }

    pub fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    }

    pub fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send_raw(&json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string());
    }

    /// The next message that answers `id` (notifications in between are skipped).
    pub fn answer(&mut self, id: u64) -> Value {
        loop {
            let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!("no answer to request {id}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("warden closed stdout before answering {id}")
                }
            };
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout carried non-JSON {line:?}: {error}"));
            if message.get("id") == Some(&json!(id)) {
                return message;
            }
        }
    }

    /// The answer to `id` and the notifications that came before it.
    pub fn answer_and_notifications(&mut self, id: u64) -> (Value, Vec<Value>) {
        let mut notifications = Vec::new();
        loop {
            let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
                Ok(line) => line,
                Err(error) => panic!("no answer to request {id}: {error}"),
            };
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout carried non-JSON {line:?}: {error}"));
            if message.get("id") == Some(&json!(id)) {
                return (message, notifications);
            }
            if message.get("id").is_none() {
                notifications.push(message);
            }
        }
    }

    /// The answers to several requests in flight at once, in the order of `ids`
    /// (whatever order they arrive in).
    pub fn answers(&mut self, ids: &[u64]) -> Vec<Value> {
        let mut answered: Vec<Option<Value>> = vec![None; ids.len()];
        while answered.iter().any(Option::is_none) {
            let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
                Ok(line) => line,
                Err(error) => panic!("no answer to all of {ids:?}: {error}"),
            };
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout carried non-JSON {line:?}: {error}"));
            if let Some(slot) = ids
                .iter()
                .position(|id| message.get("id") == Some(&json!(id)))
            {
                answered[slot] = Some(message);
            }
        }
        answered.into_iter().flatten().collect()
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.answer(id)
    }

    /// Calls a tool; returns (structuredContent, isError).
    pub fn call(&mut self, tool: &str, arguments: Value) -> (Value, bool) {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = answer
            .get("result")
            .unwrap_or_else(|| panic!("{tool}: JSON-RPC error {answer}"));
        let structured = result["structuredContent"].clone();
        let text: Value =
            serde_json::from_str(result["content"][0]["text"].as_str().expect("text content"))
                .expect("text is JSON");
        assert_eq!(text, structured, "text and structuredContent differ");
        (structured, result["isError"] == json!(true))
    }

    /// Closes stdin and waits for a clean exit.
    pub fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("warden did not exit within 5 s of stdin EOF");
    }
}

impl Drop for McpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
