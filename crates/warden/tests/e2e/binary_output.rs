//! Output that is not text, from a real sshd host: base64 in the same field, flagged,
//! the size of the bytes rather than of their JSON escapes, and cut at the same bound.

use serde_json::{Value, json};

use crate::client::{McpProcess, warden_command};

fn decode(value: &Value) -> Vec<u8> {
    data_encoding::BASE64
        .decode(value.as_str().unwrap().as_bytes())
        .unwrap()
}

#[test]
fn binary_and_nul_output_come_back_as_compact_base64() {
    let (_fleet, home, config) = super::fleet(1, "limits:\n  max_output_bytes: 2097152\n");
    let mut mcp = McpProcess::start(home.path(), Some(&config));

    let answer = mcp.request(
        "tools/call",
        json!({"name": "run", "arguments": {"host_id": "fleet-01", "command": "head -c 1048576 /dev/zero"}}),
    );
    let line = answer.to_string();
    // Text content and structuredContent each carry the base64 once (4/3 of 1 MiB);
    // as JSON escapes the NULs were 6 MiB each.
    assert!(line.len() < 3 * 1024 * 1024, "{} bytes", line.len());
    let (zeros, is_error) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "head -c 1048576 /dev/zero"}),
    );
    assert!(!is_error, "{zeros}");
    assert_eq!(zeros["stdout_encoding"], "base64");
    assert_eq!(decode(&zeros["stdout"]), vec![0u8; 1 << 20]);
    assert!(zeros.get("truncated").is_none(), "nothing was cut: {zeros}");
    assert!(
        zeros.get("stderr_encoding").is_none(),
        "empty stderr is text"
    );

    let (invalid, _) = mcp.call(
        "exec",
        json!({"target": "fleet-01", "command": "printf '\\377\\376'; printf 'plain' >&2"}),
    );
    let host = &invalid["results"][0];
    assert_eq!(host["stdout_encoding"], "base64", "{invalid}");
    assert_eq!(decode(&host["stdout"]), b"\xff\xfe");
    assert_eq!(host["stderr"], "plain");
    assert!(host.get("stderr_encoding").is_none(), "{host}");

    // The bound applies to the bytes: 1000 of them (head and tail, the last one the
    // \377), with the marker between them in the decoded bytes.
    let (cut, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "head -c 5000 /dev/urandom; printf '\\377' ", "max_output_bytes": 1000}),
    );
    assert_eq!(cut["truncated"], true);
    assert_eq!(cut["stdout_bytes"], 5001);
    assert_eq!(cut["stdout_encoding"], "base64");
    let bytes = decode(&cut["stdout"]);
    let job = cut["job_id"].as_str().unwrap();
    let marker = format!(
        "\n…[4001 bytes cut; all of it: artifacts_get job_id={job} stream=stdout and this host_id]…\n"
    );
    assert_eq!(bytes.len(), 1000 + marker.len());
    assert_eq!(&bytes[500..500 + marker.len()], marker.as_bytes());
    assert_eq!(bytes.last(), Some(&0o377));

    // Text output stays text, with no flag.
    let (text, _) = mcp.call(
        "run",
        json!({"host_id": "fleet-01", "command": "printf 'tab\\there\\n'"}),
    );
    assert_eq!(text["stdout"], "tab\there\n");
    assert!(text.get("stdout_encoding").is_none());
    assert!(mcp.close().success());

    // People see escapes as text, and bytes that are not text described.
    let exec = |command: &str| {
        let output = warden_command(home.path())
            .args([
                "--config",
                config.to_str().unwrap(),
                "exec",
                "-t",
                "fleet-01",
                "--",
            ])
            .arg(command)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let shown = exec("printf 'a line of ordinary text, then \\033[1mbold\\033[0m and done\\n'");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("\\x1b[1mbold\\x1b[0m"), "{shown}");
    let shown = exec("head -c 100 /dev/zero");
    assert!(!shown.contains('\0'), "{shown:?}");
    assert!(shown.contains("100 bytes on stdout, not text"), "{shown}");
}
