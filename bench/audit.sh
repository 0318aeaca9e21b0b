#!/usr/bin/env bash
# bench/audit.sh — what the audit log across processes, its group commit and signed
# head, and approvals cost; all in one run, as ratios.
#
#   bench/audit.sh [BASE]     # BASE: the commit to compare against [eb8aab5, before issue 10]
#
# 1. Audited mutating calls per second: `fs_mkdir` on `local` pipelined through
#    `warden mcp serve` (two fsynced records around each mkdir), 1 and 5 servers on
#    one state dir (then `audit verify`), against this disk's fsyncs per second and
#    against warden at BASE (one server: BASE breaks its chain with two).
# 2. One `run` over a pooled connection via MCP, p50, warden at BASE (head rewritten
#    twice per mutating call) and now (head from the group commit), alternating.
# 3. The approval round trip (APPROVAL_PENDING, `warden approvals approve`, the repeat
#    that runs) against one plain call.
# Raw lines in $RESULTS/audit.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
BASE=${1:-eb8aab5}
export FLEET_DIR=${FLEET_DIR:-/tmp/fleet-audit} RESULTS=${RESULTS:-/tmp/bench-results}
mkdir -p "$RESULTS"
OUT=$RESULTS/audit.jsonl
: >"$OUT"

cargo build --release -q -p warden --manifest-path "$ROOT/Cargo.toml"
BEFORE_TREE=${BEFORE_TREE:-/tmp/warden-before10}
if [ ! -d "$BEFORE_TREE" ]; then
  git -C "$ROOT" worktree add --detach "$BEFORE_TREE" "$BASE" >&2
fi
cargo build --release -q -p warden --manifest-path "$BEFORE_TREE/Cargo.toml"
NOW=$ROOT/target/release/warden
BEFORE=$BEFORE_TREE/target/release/warden

"$SHARED/fleet.sh" down >/dev/null 2>&1 || true
"$SHARED/fleet.sh" up 1 >&2
trap '"$SHARED/fleet.sh" down >/dev/null 2>&1 || true' EXIT
read -r HID ADDR PORT <"$FLEET_DIR/hosts.txt"
WORK=$(mktemp -d)
SSH_YAML="ssh:
  known_hosts: $FLEET_DIR/known_hosts
  use_ssh_config: false
hosts:
  - {id: $HID, address: $ADDR, port: $PORT, user: ${USER:-root}, identity_file: $FLEET_DIR/client_ed25519}"
LIMITS="limits:
  rate: 100000
  burst: 100000
  max_concurrent: 100000"
cat >"$WORK/throughput.yaml" <<YAML
local:
  allow_write: true
policy:
  allowed_roots: ['$WORK/tree']
$LIMITS
YAML
cat >"$WORK/exec.yaml" <<YAML
$SSH_YAML
YAML
cat >"$WORK/approval.yaml" <<YAML
$SSH_YAML
approval:
  enabled: true
  wait: 0ms
  rules:
    - tools: [exec]
YAML

python3 "$ROOT/bench/audit.py" fsync "$WORK" 2000 >>"$OUT"
for round in 1 2 3; do
  for which in before now; do
    BIN=$NOW; [ "$which" = before ] && BIN=$BEFORE
    rm -rf "$WORK/tree"; mkdir -p "$WORK/tree"
    python3 "$ROOT/bench/audit.py" throughput "$BIN" "$WORK/throughput.yaml" "$WORK/tree" 1 2000 |
      sed "s/\"label\": \"audited-mutating-1proc\"/\"label\": \"audited-1proc-$which\"/" >>"$OUT"
  done
  rm -rf "$WORK/tree"; mkdir -p "$WORK/tree"
  python3 "$ROOT/bench/audit.py" throughput "$NOW" "$WORK/throughput.yaml" "$WORK/tree" 5 1000 >>"$OUT"
  for which in before now; do
    BIN=$NOW; [ "$which" = before ] && BIN=$BEFORE
    STATE=$(mktemp -d)
    python3 "$SHARED/mcpbench.py" --out "$OUT" --label "exec-$which-$round" --spawn-runs 0 -k 300 --tool run \
      --args "{\"host_id\":\"$HID\",\"command\":\"hostname\"}" -- \
      "$BIN" --config "$WORK/exec.yaml" --state-dir "$STATE" mcp serve >/dev/null
    rm -rf "$STATE"
  done
done
python3 "$ROOT/bench/audit.py" approval "$NOW" "$WORK/approval.yaml" "$HID" 30 >>"$OUT"
rm -rf "$WORK"

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
def median(label, key):
    return statistics.median(r[key] for r in rows if r["label"] == label)
def p50(which):
    values = []
    for r in rows:
        if r["label"].startswith(f"exec-{which}-"):
            calls = r.get("calls") or r.get("call") or {}
            values.append(calls.get("p50_ms") or r.get("p50_ms"))
    return statistics.median(v for v in values if v is not None)
fsync = median("fsync", "fsyncs_per_s")
one_now = median("audited-1proc-now", "calls_per_s")
one_before = median("audited-1proc-before", "calls_per_s")
five = median("audited-mutating-5proc", "calls_per_s")
cores = median("audited-1proc-now", "server_cpu_cores")
verified = all(r["verified"] for r in rows if r["label"] == "audited-mutating-5proc")
before, now = p50("before"), p50("now")
approval = next(r for r in rows if r["label"] == "approval-round-trip")
print("| measure | value |")
print("|---|---|")
print(f"| this disk: fsyncs per second (write 400 B + fdatasync) | {fsync:.0f} |")
print(f"| audited mutating calls/s, 1 server, warden before issue 10 | {one_before:.0f} |")
print(f"| audited mutating calls/s, 1 server, warden now | {one_now:.0f} |")
print(f"| audited mutating calls/s, 5 servers on one state dir (chain verified: {verified}) | {five:.0f} |")
print(f"| now / before (1 server) | {one_now / one_before:.2f} |")
print(f"| the server's CPU during it (cores busy, of 2 shared with the client) | {cores:.2f} |")
print(f"| fsynced records per second now / fsyncs per second (2 records a call) | {2 * one_now / fsync:.2f} |")
print(f"| one `run` via MCP, p50 ms, before / now | {before:.2f} / {now:.2f} |")
print(f"| now / before (`run` p50) | {now / before:.3f} |")
print(f"| approval round trip p50 ms (pending, approve CLI, repeat) / plain `run` p50 ms | {approval['round_trip_p50_ms']} / {approval['plain_p50_ms']} |")
print(f"| round trip / plain call | {approval['round_trip_p50_ms'] / approval['plain_p50_ms']:.1f} |")
PY
