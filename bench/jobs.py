#!/usr/bin/env python3
"""bench/jobs.py — what jobs, rollouts and interactive commands cost, through `warden mcp serve`.

  jobs.py p50 WARDEN CONFIG HOST ROUNDS            # one `run hostname`, p50 and p90 ms
  jobs.py fanout WARDEN CONFIG ROUNDS              # `exec hostname` on every host: cold, warm p50
  jobs.py reconcile WARDEN CONFIG JOBS             # kill -9 with JOBS jobs, restart, all reconciled
  jobs.py rollout WARDEN CONFIG BATCH WAIT_MS      # rolling exec: wall vs the sum of its batch waits
  jobs.py interactive WARDEN CONFIG HOST COUNT     # RSS holding COUNT open `command`s (HOST on)

Each prints one JSON line. The servers are the release binary given; the state dir is
WARDEN_STATE_DIR (a fresh one per case unless set).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audit  # noqa: E402  (the MCP client the audit bench uses)


class Server(audit.Server):
    def call(self, tool, arguments):
        """One call; its structuredContent."""
        answer = self.read_until(super().call(tool, arguments))
        if "result" not in answer:
            raise SystemExit(f"{tool}: {answer}")
        return answer["result"]["structuredContent"]

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def peak_rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0


def state_dir():
    return os.environ.get("WARDEN_STATE_DIR") or tempfile.mkdtemp(prefix="warden-jobs-bench-")


def hosts_of(config):
    return [line.split(":", 1)[1].strip() for line in open(config)
            if line.strip().startswith("- id:")]


def p50(warden, config, host, rounds):
    server = Server(warden, config, state_dir())
    server.call("run", {"host_id": host, "command": "hostname"})
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = server.call("run", {"host_id": host, "command": "hostname"})
        times.append((time.perf_counter() - started) * 1000)
        assert answer.get("exit_code") == 0, answer
    server.close()
    times.sort()
    return {"case": "run-p50", "rounds": rounds, "p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(times[int(len(times) * 0.9)], 2)}


def fanout(warden, config, rounds):
    server = Server(warden, config, state_dir())
    hosts = len(hosts_of(config))
    walls = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = server.call("exec", {"target": "all", "command": "hostname", "fold": False})
        walls.append((time.perf_counter() - started) * 1000)
        assert answer["summary"]["success_count"] == hosts, answer["summary"]
    rss = server.peak_rss_kb()
    server.close()
    return {"case": "fanout", "hosts": hosts, "cold_ms": round(walls[0], 1),
            "warm_ms_median": round(statistics.median(walls[1:]), 1), "peak_rss_kb": rss}


def reconcile(warden, config, count):
    """JOBS jobs of `sleep 1` across the hosts; warden killed once all started; the
    commands end while it is down; then: restart → every job reconciled."""
    state = state_dir()
    hosts = hosts_of(config)
    server = Server(warden, config, state)
    jobs = []
    for index in range(count):
        answer = server.call("run", {"host_id": hosts[index % len(hosts)],
                                     "command": f"sleep 1; echo job-{index}", "wait_ms": 0})
        jobs.append(answer["job_id"])
    time.sleep(0.5)
    server.proc.kill()
    server.proc.wait()
    time.sleep(2)
    started = time.perf_counter()
    server = Server(warden, config, state)
    spawned = time.perf_counter()
    states = {}
    while len(states) < len(jobs):
        for job in jobs:
            if job in states:
                continue
            view = server.call("jobs_show", {"job_id": job})
            if view["state"] != "running":
                states[job] = view["state"]
        if len(states) < len(jobs):
            time.sleep(0.05)
    wall = (time.perf_counter() - started) * 1000
    server.close()
    counts = {state: list(states.values()).count(state) for state in set(states.values())}
    return {"case": "reconcile", "jobs": count, "hosts": len(hosts),
            "restart_to_all_reconciled_ms": round(wall, 1),
            "spawn_ms": round((spawned - started) * 1000, 1), "states": counts}


def rollout(warden, config, batch, wait_ms):
    server = Server(warden, config, state_dir())
    hosts = len(hosts_of(config))
    server.call("exec", {"target": "all", "command": "true"})  # connections up
    started = time.perf_counter()
    answer = server.call("exec", {"target": "all", "command": "hostname", "batch_size": batch,
                                  "batch_wait": wait_ms, "wait_ms": 600000})
    wall = (time.perf_counter() - started) * 1000
    server.close()
    batches = -(-hosts // batch)
    waits = (batches - 1) * wait_ms
    assert answer["summary"]["success_count"] == hosts, answer["summary"]
    return {"case": "rollout", "hosts": hosts, "batch_size": batch, "batches": batches,
            "batch_wait_ms": wait_ms, "sum_of_waits_ms": waits, "wall_ms": round(wall, 1),
            "wall_over_waits": round(wall / waits, 3) if waits else None}


def interactive(warden, config, first, count):
    """COUNT `cat`s open at once, spread over the config's hosts from FIRST on."""
    server = Server(warden, config, state_dir())
    hosts = hosts_of(config)
    hosts = hosts[hosts.index(first):]
    server.call("run", {"host_id": first, "command": "true"})
    before = server.rss_kb()
    started = time.perf_counter()
    opened = []
    for index in range(count):
        answer = server.call("command", {"host_id": hosts[index % len(hosts)], "command": "cat",
                                         "idle_timeout": 0})
        opened.append(answer["command_id"])
    wall = (time.perf_counter() - started) * 1000
    held = server.rss_kb()
    server.close()
    return {"case": "interactive", "commands": count, "rss_before_kb": before,
            "rss_holding_kb": held, "kb_per_command": round((held - before) / count, 1),
            "open_ms_each": round(wall / count, 2)}


def main():
    mode, warden, config, *rest = sys.argv[1:]
    if mode == "p50":
        result = p50(warden, config, rest[0], int(rest[1]))
    elif mode == "fanout":
        result = fanout(warden, config, int(rest[0]))
    elif mode == "reconcile":
        result = reconcile(warden, config, int(rest[0]))
    elif mode == "rollout":
        result = rollout(warden, config, int(rest[0]), int(rest[1]))
    elif mode == "interactive":
        result = interactive(warden, config, rest[0], int(rest[1]))
    else:
        raise SystemExit(__doc__)
    result["warden"] = warden
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
