#!/usr/bin/env bash
# bench/policy.sh — what reading commands with the shell grammar costs.
#
#   bench/policy.sh [BASE]     # BASE: the commit to compare against [7c407ae, before issue 9]
#
# 1. Policy decision time per command over the corpora (everyday + bypass):
#    parse, wrappers, classes, decide on one host — `cargo run --example policy_bench`.
# 2. The end-to-end cost of one `run hostname` over a pooled connection via MCP, for
#    warden at BASE (regex splitter) and warden now (grammar), in the same run,
#    alternating, against one real sshd (../shared/bench/fleet.sh).
# Prints a table of ratios; raw lines in $RESULTS/policy.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
BASE=${1:-7c407ae}
export FLEET_DIR=${FLEET_DIR:-/tmp/fleet-policy} RESULTS=${RESULTS:-/tmp/bench-results}
mkdir -p "$RESULTS"
OUT=$RESULTS/policy.jsonl
: >"$OUT"

cargo run --release -q -p warden-core --example policy_bench --manifest-path "$ROOT/Cargo.toml" >>"$OUT"
cargo build --release -q -p warden --manifest-path "$ROOT/Cargo.toml"
BEFORE_TREE=${BEFORE_TREE:-/tmp/warden-before}
if [ ! -d "$BEFORE_TREE" ]; then
  git -C "$ROOT" worktree add --detach "$BEFORE_TREE" "$BASE" >&2
fi
cargo build --release -q -p warden --manifest-path "$BEFORE_TREE/Cargo.toml"

"$SHARED/fleet.sh" down >/dev/null 2>&1 || true
"$SHARED/fleet.sh" up 1 >&2
trap '"$SHARED/fleet.sh" down >/dev/null 2>&1 || true' EXIT
CFG=$RESULTS/warden-policy.yaml
read -r HID ADDR PORT <"$FLEET_DIR/hosts.txt"
cat >"$CFG" <<YAML
ssh:
  known_hosts: $FLEET_DIR/known_hosts
  use_ssh_config: false
hosts:
  - {id: $HID, address: $ADDR, port: $PORT, user: ${USER:-root}, identity_file: $FLEET_DIR/client_ed25519}
policy:
  deny_commands: ['mkfs.*', 'shutdown.*|reboot.*']
  deny_paths: ['.*/\.ssh(/.*)?']
YAML
for round in 1 2 3; do
  for which in before after; do
    if [ "$which" = before ]; then BIN=$BEFORE_TREE/target/release/warden; else BIN=$ROOT/target/release/warden; fi
    STATE=$(mktemp -d)
    python3 "$SHARED/mcpbench.py" --out "$OUT" --label "exec-$which-$round" --spawn-runs 0 -k 300 --tool run \
      --args "{\"host_id\":\"$HID\",\"command\":\"ps aux | grep -c [s]shd; uname -r\"}" -- \
      "$BIN" --config "$CFG" --state-dir "$STATE" mcp serve >/dev/null
    rm -rf "$STATE"
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
decision = next(r for r in rows if r["label"] == "policy-decision")
def p50(which):
    values = []
    for r in rows:
        if r["label"].startswith(f"exec-{which}-"):
            calls = r.get("calls") or r.get("call") or {}
            values.append(calls.get("p50_ms") or r.get("p50_ms"))
    return statistics.median(v for v in values if v is not None)
before, after = p50("before"), p50("after")
print("| measure | value |")
print("|---|---|")
print(f"| policy decision per command, p50 / p99 (µs, {decision['commands']} commands) | {decision['p50_us']} / {decision['p99_us']} |")
print(f"| one `run` via MCP, warden before issue 9 (p50 ms) | {before:.2f} |")
print(f"| one `run` via MCP, warden now (p50 ms) | {after:.2f} |")
print(f"| now / before | {after / before:.3f} |")
print(f"| policy decision p50 / one `run` p50 | {decision['p50_us'] / 1000 / after:.4f} |")
PY
