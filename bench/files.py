#!/usr/bin/env python3
"""File benchmarks of issue 3, warden against its peers in the same run.

    bench/files.py --warden target/release/warden --fleet-config CFG [-k 500] [--mib 1024]

  fs-read-local    fs_read of a 4 KiB file through a session on `local`, K sequential
                   calls over stdio, against server-filesystem's read_text_file on the
                   same file (the same client code drives both servers)
  fs-read-remote   the same fs_read through a session on fleet-01 (pooled SSH + SFTP)
  stream-write     fs_stream_write of a --mib MiB file to fleet-01 in 4 MiB chunks (the most a call takes),
                   against `scp` of the same file to the same host; warden's peak RSS

Needs a running fleet (../shared/bench/fleet.sh up 1) and the peers of
../shared/bench/setup.sh. Prints one JSON line per case and a markdown table.
Request lines for the upload are built before the clock starts, so the figure is
warden's work (JSON-RPC, base64, SFTP), not the client's encoding.
"""
import argparse
import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PEERS = os.environ.get("PEERS_DIR", "/tmp/mcppeers")
FS_JS = f"{PEERS}/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
CHUNK = 4 * 1024 * 1024


class Client:
    """Newline-delimited JSON-RPC over a server's stdin/stdout."""

    def __init__(self, command, env=None):
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.next_id = 1
        self.request("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench-files", "version": "1"},
        })
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message):
        self.send_line(json.dumps(message).encode())

    def send_line(self, line):
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def answer(self, wanted):
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("server closed stdout")
            message = json.loads(line)
            if message.get("id") == wanted:
                return message

    def request(self, method, params):
        wanted = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params})
        return self.answer(wanted)

    def call_line(self, name, arguments):
        """A tools/call request line and its id, built ahead of time."""
        wanted = self.next_id
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": wanted, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments}}
        return wanted, json.dumps(message).encode()

    def call(self, name, arguments):
        wanted, line = self.call_line(name, arguments)
        self.send_line(line)
        return result_of(self.answer(wanted), name)

    def peak_rss_mb(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


def result_of(answer, name):
    result = answer.get("result")
    if result is None or result.get("isError"):
        raise SystemExit(f"{name} failed: {json.dumps(answer)[:500]}")
    return result


def timed_calls(client, name, arguments, count, expect):
    latencies = []
    for _ in range(5):
        client.call(name, arguments)
    for _ in range(count):
        started = time.perf_counter()
        result = client.call(name, arguments)
        latencies.append((time.perf_counter() - started) * 1000)
        if expect not in json.dumps(result):
            raise SystemExit(f"{name}: unexpected result {json.dumps(result)[:300]}")
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "calls_per_s": count / (sum(latencies) / 1000),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--warden", required=True)
    parser.add_argument("--fleet-config", required=True, help="warden config of the fleet")
    parser.add_argument("--fleet-dir", default=os.environ.get("FLEET_DIR", "/tmp/fleet"))
    parser.add_argument("-k", type=int, default=500)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--stream-host", default="fleet-01",
                        help="host of the upload (local: no SSH, to see warden's own cost)")
    parser.add_argument("--out")
    options = parser.parse_args()

    work = tempfile.mkdtemp(prefix="warden-bench-files-")
    root = os.path.join(work, "root")
    os.makedirs(root)
    text = ("warden reads files through sessions; " * 120)[:4096]
    with open(os.path.join(root, "small.txt"), "w") as handle:
        handle.write(text)
    config = os.path.join(work, "warden.yaml")
    with open(options.fleet_config) as source, open(config, "w") as target:
        target.write(source.read())
        target.write(f"policy:\n  allowed_roots: ['{root}']\n")
        if options.stream_host == "local":
            target.write("local:\n  allow_write: true\n")
    state = os.path.join(work, "state")
    warden = [options.warden, "--config", config, "--state-dir", state, "mcp", "serve"]
    rows = []

    # fs_read, 4 KiB: warden on local and on fleet-01, server-filesystem on the same file.
    client = Client(warden)
    for host in ("local", "fleet-01"):
        session = json.loads(client.call("session_open", {"host_id": host, "root": root})
                             ["content"][0]["text"])["session_id"]
        figures = timed_calls(client, "fs_read", {"session_id": session, "path": "small.txt"},
                              options.k, "warden reads")
        rows.append({"case": f"warden-fs-read-{host}", **figures})
    client.close()
    peer = Client(["node", FS_JS, root])
    figures = timed_calls(peer, "read_text_file", {"path": os.path.join(root, "small.txt")},
                          options.k, "warden reads")
    rows.append({"case": "server-filesystem-read", **figures})
    peer.close()

    # 1 GiB upload: fs_stream_write against scp, same file, same host.
    big = os.path.join(root, "big.bin")
    digest = hashlib.sha256()
    with open(big, "wb") as handle:
        for _ in range(options.mib):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            handle.write(block)
    size = options.mib * 1024 * 1024
    client = Client(warden)
    destination = os.path.join(root, "uploaded.bin")
    first = json.loads(client.call("fs_stream_write", {
        "host_id": options.stream_host, "path": destination, "content_base64": ""})
        ["content"][0]["text"])
    upload = first["upload_id"]
    lines = []
    with open(big, "rb") as handle:
        offset = 0
        while offset < size:
            chunk = handle.read(CHUNK)
            arguments = {"host_id": options.stream_host, "path": destination,
                         "upload_id": upload,
                         "offset": offset, "content_base64": base64.b64encode(chunk).decode()}
            offset += len(chunk)
            if offset >= size:
                arguments.update(finish=True, sha256=digest.hexdigest())
            lines.append(client.call_line("fs_stream_write", arguments))
    started = time.perf_counter()
    for wanted, line in lines:
        client.send_line(line)
        result_of(client.answer(wanted), "fs_stream_write")
    warden_s = time.perf_counter() - started
    lines.clear()
    rss = client.peak_rss_mb()
    client.close()
    with open(destination, "rb") as handle:
        landed = hashlib.file_digest(handle, "sha256").hexdigest()
    if landed != digest.hexdigest():
        raise SystemExit("the uploaded file differs from the source")
    os.remove(destination)

    # push: the same file from warden's machine, read by warden itself (no JSON-RPC
    # in the data path), written and read back for verification on the host.
    client = Client(warden)
    started = time.perf_counter()
    pushed = client.call("push", {"target": "host:fleet-01", "source": big,
                                  "path": os.path.join(root, "pushed.bin"), "confirm": True})
    push_s = time.perf_counter() - started
    client.close()
    if digest.hexdigest() not in json.dumps(pushed):
        raise SystemExit(f"push did not verify: {json.dumps(pushed)[:300]}")
    os.remove(os.path.join(root, "pushed.bin"))

    ssh_config = os.path.join(options.fleet_dir, "ssh_config")
    started = time.perf_counter()
    subprocess.run(["scp", "-q", "-F", ssh_config, big, f"fleet-01:{root}/scp.bin"], check=True)
    scp_s = time.perf_counter() - started
    rows.append({"case": "stream-write", "mib": options.mib, "warden_s": warden_s,
                 "warden_mib_s": options.mib / warden_s, "scp_s": scp_s,
                 "scp_mib_s": options.mib / scp_s, "warden_peak_rss_mb": rss,
                 "push_s": push_s, "push_mib_s": options.mib / push_s})
    subprocess.run(["rm", "-rf", work], check=True)

    for row in rows:
        print(json.dumps(row))
        if options.out:
            with open(options.out, "a") as out:
                out.write(json.dumps(row) + "\n")
    cases = {row["case"]: row for row in rows}
    local, remote = cases["warden-fs-read-local"], cases["warden-fs-read-fleet-01"]
    peer, stream = cases["server-filesystem-read"], cases["stream-write"]
    print("| measure | warden | peer | ratio | goal |", file=sys.stderr)
    print("|---|---|---|---|---|", file=sys.stderr)
    table = [
        ("fs_read 4 KiB, local session, p50 ms", local["p50_ms"], peer["p50_ms"],
         peer["p50_ms"] / local["p50_ms"], ">= 5x lower"),
        ("fs_read 4 KiB, local session, calls/s", local["calls_per_s"], peer["calls_per_s"],
         local["calls_per_s"] / peer["calls_per_s"], ">= 5x higher"),
        ("fs_read 4 KiB, remote session, p50 ms (peer: warden local)", remote["p50_ms"],
         local["p50_ms"], remote["p50_ms"] / local["p50_ms"], "<= 3x"),
        ("fs_read 4 KiB, remote session, p99 ms (peer: warden local)", remote["p99_ms"],
         local["p99_ms"], remote["p99_ms"] / local["p99_ms"], "<= 3x"),
        (f"fs_stream_write {options.mib} MiB, MiB/s (peer: scp)", stream["warden_mib_s"],
         stream["scp_mib_s"], stream["warden_mib_s"] / stream["scp_mib_s"], ">= 0.8x"),
        ("fs_stream_write peak RSS, MB", rss, None, None, "< 64"),
        (f"push {options.mib} MiB incl. read-back check, MiB/s (peer: scp)",
         stream["push_mib_s"], stream["scp_mib_s"],
         stream["push_mib_s"] / stream["scp_mib_s"], "(no goal)"),
    ]
    for name, ours, theirs, ratio, goal in table:
        theirs_text = "" if theirs is None else f"{theirs:.2f}"
        ratio_text = "" if ratio is None else f"{ratio:.2f}"
        print(f"| {name} | {ours:.2f} | {theirs_text} | {ratio_text} | {goal} |",
              file=sys.stderr)


if __name__ == "__main__":
    main()
