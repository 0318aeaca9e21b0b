#!/usr/bin/env bash
# bench/jobs.sh — what jobs, rollouts, interactive commands and the fan-out cost (issue 11),
# all in one run, as ratios against peers measured in the same run.
#
#   bench/jobs.sh [BASE]     # BASE: the commit before jobs [b4c350c]
#
# 1. One `run hostname` via MCP, p50: warden at BASE (attached command) and now (every
#    command spooled on its host), alternating rounds.
# 2. `exec hostname` on 200 hosts, cold (first call: 200 connects) and warm p50, against
#    asyncssh in one process (../shared/bench/fanout_inproc.py) on the same fleet.
# 3. A rolling exec over 50 hosts in batches of 5 with 500 ms between batches: wall time
#    against the sum of its batch waits.
# 4. warden killed -9 with 50 jobs running on 5 hosts (they end while it is down):
#    time from the restart to every job reconciled.
# 5. RSS of `warden mcp serve` holding 1000 interactive commands (`cat`) over 5 hosts.
# Raw lines in $RESULTS/jobs.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
BASE=${1:-b4c350c}
export FLEET_DIR=${FLEET_DIR:-/tmp/fleet-jobs} RESULTS=${RESULTS:-/tmp/bench-results}
mkdir -p "$RESULTS"
OUT=$RESULTS/jobs.jsonl
: >"$OUT"

cargo build --release -q -p warden --manifest-path "$ROOT/Cargo.toml"
BEFORE_TREE=${BEFORE_TREE:-/tmp/warden-before11}
if [ ! -d "$BEFORE_TREE" ]; then
  git -C "$ROOT" worktree add --detach "$BEFORE_TREE" "$BASE" >&2
fi
BEFORE_TARGET=${BEFORE_TARGET:-$BEFORE_TREE/target}
CARGO_TARGET_DIR=$BEFORE_TARGET cargo build --release -q -p warden --manifest-path "$BEFORE_TREE/Cargo.toml"
NOW=$ROOT/target/release/warden
BEFORE=$BEFORE_TARGET/release/warden

"$SHARED/fleet.sh" down >/dev/null 2>&1 || true
"$SHARED/fleet.sh" up 200 >&2
trap '"$SHARED/fleet.sh" down >/dev/null 2>&1 || true' EXIT

# Configs: all 200 hosts, the first 50, the first 5 (with room for 1000 commands).
config() { # N EXTRA_YAML OUT
  python3 - "$FLEET_DIR" "$1" "$2" "$3" <<'PY'
import os, sys
fleet, count, extra, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = ["ssh:", f"  known_hosts: {fleet}/known_hosts", "  use_ssh_config: false",
         "  max_parallel: 200", "hosts:"]
for line in list(open(os.path.join(fleet, "hosts.txt")))[:count]:
    hid, addr, port = line.split()
    lines += [f"  - id: {hid}", f"    address: {addr}", f"    port: {port}",
              f"    user: {os.environ.get('USER', 'root')}",
              f"    identity_file: {fleet}/client_ed25519", "    groups: [fleet]"]
open(out, "w").write("\n".join(lines) + "\n" + extra)
PY
}
WORK=$(mktemp -d)
config 200 "" "$WORK/all.yaml"
config 50 "" "$WORK/fifty.yaml"
config 5 $'limits:\n  max_per_host: 1000\n  max_commands_per_client: 1000\n  max_concurrent: 1000\n' "$WORK/five.yaml"
config 1 "" "$WORK/one.yaml"
J=(python3 "$ROOT/bench/jobs.py")

for round in 1 2 3; do
  "${J[@]}" p50 "$BEFORE" "$WORK/one.yaml" fleet-01 200 | sed "s/}$/, \"round\": $round, \"which\": \"before\"}/" >>"$OUT"
  "${J[@]}" p50 "$NOW" "$WORK/one.yaml" fleet-01 200 | sed "s/}$/, \"round\": $round, \"which\": \"now\"}/" >>"$OUT"
done
"${J[@]}" fanout "$NOW" "$WORK/all.yaml" 6 >>"$OUT"
python3 "$SHARED/fanout_inproc.py" --lib asyncssh --rounds 6 --hosts 200 | sed 's/^{/{"case": "asyncssh-200", /' >>"$OUT"
"${J[@]}" rollout "$NOW" "$WORK/fifty.yaml" 5 500 >>"$OUT"
"${J[@]}" reconcile "$NOW" "$WORK/five.yaml" 50 >>"$OUT"
"${J[@]}" interactive "$NOW" "$WORK/five.yaml" fleet-01 1000 >>"$OUT"
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def med(which):
    return statistics.median(r["p50_ms"] for r in rows if r["case"] == "run-p50" and r["which"] == which)
b, n = med("before"), med("now")
fan = next(r for r in rows if r["case"] == "fanout")
peer = next(r for r in rows if r["case"] == "asyncssh-200")
roll = next(r for r in rows if r["case"] == "rollout")
rec = next(r for r in rows if r["case"] == "reconcile")
inter = next(r for r in rows if r["case"] == "interactive")
print("| measure | warden | peer | warden / peer |")
print("|---|---|---|---|")
print(f"| one `run hostname` p50, spooled now / attached before (ms) | {n:.2f} | {b:.2f} (before) | {n/b:.2f} |")
print(f"| `exec hostname` on 200 hosts, cold (ms) | {fan['cold_ms']:.0f} | {peer['cold_ms']:.0f} (asyncssh) | {fan['cold_ms']/peer['cold_ms']:.2f} |")
print(f"| `exec hostname` on 200 hosts, warm p50 (ms) | {fan['warm_ms_median']:.0f} | {peer['warm_ms_median']:.0f} (asyncssh) | {fan['warm_ms_median']/peer['warm_ms_median']:.2f} |")
print(f"| rolling exec, 50 hosts in 10 batches, 500 ms apart: wall / sum of waits (ms) | {roll['wall_ms']:.0f} | {roll['sum_of_waits_ms']} | {roll['wall_over_waits']:.2f} |")
print(f"| restart to 50 jobs reconciled (ms) | {rec['restart_to_all_reconciled_ms']:.0f} | — | states {rec['states']} |")
print(f"| RSS holding 1000 interactive commands (MB) | {inter['rss_holding_kb']/1024:.0f} | idle {inter['rss_before_kb']/1024:.0f} | {inter['kb_per_command']} KB each |")
PY
