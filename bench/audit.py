#!/usr/bin/env python3
"""bench/audit.py — what the audit log and approvals cost, measured through `warden mcp serve`.

  audit.py throughput WARDEN CONFIG ROOT PROCS CALLS   # audited mutating calls per second
  audit.py fsync DIR COUNT                             # this disk's fsyncs per second
  audit.py approval WARDEN CONFIG HOST ROUNDS          # approval round trip vs a plain call

Each prints one JSON line. `throughput` runs PROCS servers on one state dir, each with
CALLS `fs_mkdir` calls on the built-in `local` host pipelined (every call: two fsynced
audit records around one mkdir), and counts calls answered per wall second.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "1"}}}
READY = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Server:
    def __init__(self, warden, config, state):
        env = dict(os.environ, WARDEN_STATE_DIR=state)
        self.proc = subprocess.Popen([warden, "--config", config, "mcp", "serve"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.next_id = 1
        self.send(INIT)
        self.read_until(0)
        self.send(READY)

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def call(self, tool, arguments):
        ident = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": ident, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}})
        return ident

    def read_until(self, ident):
        while True:
            message = json.loads(self.proc.stdout.readline())
            if message.get("id") == ident:
                return message

    def answers(self, count):
        seen = 0
        while seen < count:
            message = json.loads(self.proc.stdout.readline())
            if "id" in message and message["id"] != 0:
                seen += 1

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def throughput(warden, config, root, procs, calls):
    state = tempfile.mkdtemp()
    servers = [Server(warden, config, state) for _ in range(procs)]
    barrier = threading.Barrier(procs + 1)

    def load(index, server):
        barrier.wait()
        for call in range(calls):
            server.call("fs_mkdir", {"host_id": "local", "path": f"{root}/p{index}-{call}"})
        server.answers(calls)

    threads = [threading.Thread(target=load, args=(index, server))
               for index, server in enumerate(servers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    # Where the time went: the servers' CPU (user + system) over the wall time.
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = 0.0
    for server in servers:
        fields = open(f"/proc/{server.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        cpu += (int(fields[11]) + int(fields[12])) / ticks
    for server in servers:
        server.close()
    verify = subprocess.run([warden, "--config", config, "--json", "audit", "verify"],
                            env=dict(os.environ, WARDEN_STATE_DIR=state),
                            capture_output=True, text=True)
    report = json.loads(verify.stdout)
    print(json.dumps({"label": f"audited-mutating-{procs}proc", "calls": procs * calls,
                      "seconds": round(elapsed, 3),
                      "calls_per_s": round(procs * calls / elapsed, 1),
                      "server_cpu_cores": round(cpu / elapsed, 2),
                      "records": report["records"], "verified": report["ok"]}))


def fsync_rate(directory, count):
    path = os.path.join(directory, "fsync-probe")
    line = b"x" * 400 + b"\n"
    with open(path, "ab") as file:
        started = time.perf_counter()
        for _ in range(count):
            file.write(line)
            file.flush()
            os.fdatasync(file.fileno())
        elapsed = time.perf_counter() - started
    os.unlink(path)
    print(json.dumps({"label": "fsync", "count": count,
                      "fsyncs_per_s": round(count / elapsed, 1)}))


def approval(warden, config, host, rounds):
    """A gated call: APPROVAL_PENDING (wait 0), the operator's `approve`, the repeat
    that runs; against the same command ungated (another tool name: `run`)."""
    state = tempfile.mkdtemp()
    env = dict(os.environ, WARDEN_STATE_DIR=state)
    server = Server(warden, config, state)
    plain, gated = [], []
    for index in range(rounds):
        started = time.perf_counter()
        server.read_until(server.call("run", {"host_id": host, "command": f"echo {index}"}))
        plain.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        args = {"target": f"host:{host}", "command": f"echo {index}"}
        pending = server.read_until(server.call("exec", args))
        token = pending["result"]["structuredContent"]["error"]["approval_id"]
        subprocess.run([warden, "--config", config, "approvals", "approve", token],
                       env=env, check=True, capture_output=True)
        ran = server.read_until(server.call("exec", dict(args, approval_id=token)))
        assert not ran["result"].get("isError"), ran
        gated.append((time.perf_counter() - started) * 1000)
    server.close()
    print(json.dumps({"label": "approval-round-trip", "rounds": rounds,
                      "plain_p50_ms": round(statistics.median(plain), 2),
                      "round_trip_p50_ms": round(statistics.median(gated), 2)}))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "throughput":
        throughput(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]))
    elif mode == "fsync":
        fsync_rate(rest[0], int(rest[1]))
    elif mode == "approval":
        approval(rest[0], rest[1], rest[2], int(rest[3]))
