#!/usr/bin/env bash
# bench/run.sh — warden against its peers, measured in the same run on this machine.
#
#   ../shared/bench/setup.sh          # once: peers (npm, PyPI), tokenizer
#   bench/run.sh [N]                  # N fleet hosts [50]; prints a table of ratios
#
# Starts a fleet of N real sshd hosts (../shared/bench/fleet.sh), builds warden in
# release mode, then measures with ../shared/bench/mcpbench.py (raw JSON-RPC client):
#   warden-list        spawn → initialize, tools/list size in tokens (compact)
#   warden-list-full   the same with --full-schemas
#   warden-1host       `run hostname` on fleet-01 over a pooled connection
#   warden-fanout      `exec hostname` on all N hosts: first call (cold), then warm calls;
#                      the server's peak RSS holding N pooled connections
# and the peers in the same run: server-filesystem and ssh-mcp (mcp_peers.sh cases
# fs-read, sshmcp-1host) and asyncssh in one process (fanout_inproc.py).
# Then bench/files.py (file tools against server-filesystem and scp).
# Results: $RESULTS/warden.jsonl, $RESULTS/mcp.jsonl, $RESULTS/asyncssh.json,
# $RESULTS/files.jsonl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
N=${1:-50}
export FLEET_DIR=${FLEET_DIR:-/tmp/fleet} RESULTS=${RESULTS:-/tmp/bench-results}
mkdir -p "$RESULTS"
OUT=$RESULTS/warden.jsonl
: >"$OUT"

cargo build --release -p warden --manifest-path "$ROOT/Cargo.toml" >&2
WARDEN=$ROOT/target/release/warden

"$SHARED/fleet.sh" down >/dev/null 2>&1 || true
"$SHARED/fleet.sh" up "$N" >&2
trap '"$SHARED/fleet.sh" down >/dev/null 2>&1 || true' EXIT

# warden's config for the fleet: ids, ports, the fleet's client key and known_hosts.
CFG=$RESULTS/warden-fleet.yaml
python3 - "$FLEET_DIR" "$CFG" <<'PY'
import os, sys
fleet, out = sys.argv[1:3]
lines = ["ssh:", f"  known_hosts: {fleet}/known_hosts", "  use_ssh_config: false", "hosts:"]
for line in open(os.path.join(fleet, "hosts.txt")):
    hid, addr, port = line.split()
    lines += [f"  - id: {hid}", f"    address: {addr}", f"    port: {port}",
              f"    user: {os.environ.get('USER', 'root')}",
              f"    identity_file: {fleet}/client_ed25519", "    groups: [fleet]"]
open(out, "w").write("\n".join(lines) + "\n")
PY
STATE=$(mktemp -d)
SERVER=("$WARDEN" --config "$CFG" --state-dir "$STATE" mcp serve)
BENCH=(python3 "$SHARED/mcpbench.py" --out "$OUT")

"${BENCH[@]}" --label warden-list --list-only --spawn-runs 10 --per-tool -- "${SERVER[@]}" >/dev/null
"${BENCH[@]}" --label warden-list-full --list-only --spawn-runs 3 -- "${SERVER[@]}" --full-schemas >/dev/null
"${BENCH[@]}" --label warden-1host --spawn-runs 0 -k 200 --tool run \
  --args '{"host_id":"fleet-01","command":"hostname"}' --expect fleet-01 -- "${SERVER[@]}" >/dev/null
"${BENCH[@]}" --label warden-fanout --spawn-runs 0 --tool exec --plan first,seq:5 \
  --args '{"target":"all","command":"hostname","fold":false}' --expect "fleet-$(printf %02d "$N")" -- "${SERVER[@]}" >/dev/null

K=${K:-200} "$SHARED/mcp_peers.sh" 'fs-read$|sshmcp-1host' >/dev/null
python3 "$SHARED/fanout_inproc.py" --lib asyncssh --rounds 6 >"$RESULTS/asyncssh.json"

python3 "$ROOT/bench/report.py" "$OUT" "$RESULTS/mcp.jsonl" "$RESULTS/asyncssh.json"

# File work (issue 3): fs_read against server-filesystem, remote against local,
# fs_stream_write and push of 1 GiB against scp (prints its own table).
python3 "$ROOT/bench/files.py" --warden "$WARDEN" --fleet-config "$CFG" -k "${K:-1000}" \
  --mib "${MIB:-1024}" --out "$RESULTS/files.jsonl" >/dev/null
