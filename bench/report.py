#!/usr/bin/env python3
"""Prints bench/run.sh's results as a table of warden against its peers (ratios)."""
import json
import sys


def last_by_label(path):
    rows = {}
    for line in open(path):
        row = json.loads(line)
        rows[row["label"]] = row
    return rows


warden = last_by_label(sys.argv[1])
peers = last_by_label(sys.argv[2])
asyncssh = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])


def phase(row, name, index=0):
    phases = [p for p in row.get("phases", []) if p.get("phase") == name]
    return phases[index] if len(phases) > index else {}


lst, full = warden["warden-list"], warden["warden-list-full"]
one, fan = warden["warden-1host"], warden["warden-fanout"]
fs, sshmcp = peers["fs-read"], peers["sshmcp-1host"]
count = lst["tools_list"]["count"]
rows = [
    ("spawn → initialize (median ms)", lst["spawn_to_init_ms"]["median"], "server-filesystem",
     fs["spawn_to_init_ms"]["median"], ">= 50x faster"),
    ("one exec, warm, via MCP (p50 ms)", phase(one, "seq")["p50_ms"], "ssh-mcp",
     phase(sshmcp, "seq")["p50_ms"], ">= 10x faster"),
    ("exec hostname on all hosts, cold (ms)", phase(fan, "first")["p50_ms"], "asyncssh cold",
     asyncssh["cold_ms"], "<= 1.0x"),
    ("exec hostname on all hosts, warm (p50 ms)", phase(fan, "seq")["p50_ms"], "asyncssh warm",
     asyncssh["warm_ms_median"], "<= 0.8x"),
    ("peak RSS with all connections pooled (MB)", fan["server_resources"]["hwm_kb_root"] / 1024,
     "ssh-mcp RSS", (sshmcp.get("server_resources") or {}).get("rss_kb", 0) / 1024, "< 40 MB"),
    ("tools/list compact, tokens per tool", lst["tools_list"]["tokens"] / count, "ssh-mcp",
     sshmcp["tools_list"]["tokens"] / sshmcp["tools_list"]["count"], "<= 25"),
    ("tools/list full, tokens per tool", full["tools_list"]["tokens"] / count, "ssh-mcp",
     sshmcp["tools_list"]["tokens"] / sshmcp["tools_list"]["count"], "<= 150"),
]
print("| measure | warden | peer | peer value | warden / peer | goal |")
print("|---|---|---|---|---|---|")
for name, ours, peer, theirs, goal in rows:
    ratio = ours / theirs if theirs else float("nan")
    print(f"| {name} | {ours:.2f} | {peer} | {theirs:.2f} | {ratio:.3f} | {goal} |")
