#!/usr/bin/env bash
# This PDP beside Cerbos like ../shared/peers/cerbos/compare.sh (same workloads, both servers
# pinned to CPU 0, wrk on CPU 1), but with both servers up at once and the wrk runs
# alternating (ROUNDS times, SLICE each): on a machine with other load, drift then hits both
# sides alike and the ratio is the median of the per-round ratios.
# Run from the project root:  benchmarks/compare_interleaved.sh
# Knobs: PEERS (default ../shared/peers/cerbos), PDP_BIN, ROUNDS (default 5), SLICE (default 3s),
#        extra PDP_* settings through the environment (the decision log stays on by default).
set -euo pipefail
ROOT=$(pwd)
PEERS=${PEERS:-$( [ -d "$ROOT/../shared/peers/cerbos" ] && echo "$ROOT/../shared/peers/cerbos" || echo /work/shared/peers/cerbos)}
PEERS=$(cd "$PEERS" && pwd)
CERBOS=${CERBOS_PREFIX:-/tmp/peers/cerbos}/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
PDP_BIN=${PDP_BIN:-$ROOT/.venv/bin/pdp}
ROUNDS=${ROUNDS:-5}
SLICE=${SLICE:-3s}
DATA=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
rps() { awk '/Requests\/sec/{print $2}'; }
eval_rps() { BODIES=$PEERS/todo-eval-bodies.jsonl taskset -c 1 timeout 60 wrk -t1 -c32 -d"$2" -s "$PEERS/rotate.lua" "$1/access/v1/evaluation" | rps; }
batch_rps() { BODY=$PEERS/bodies/batch10_asis.json taskset -c 1 timeout 60 wrk -t1 -c32 -d"$2" -s "$PEERS/post.lua" "$1/access/v1/evaluations" | rps; }
cp_http=$(free_port); cp_grpc=$(free_port); pdp_port=$(free_port)
(cd "$PEERS" && CERBOS_NO_TELEMETRY=1 exec taskset -c 0 "$CERBOS" server --config=cerbos.yaml \
  --set=server.httpListenAddr=127.0.0.1:"$cp_http" --set=server.grpcListenAddr=127.0.0.1:"$cp_grpc" \
  --set=storage.disk.directory="$PEERS/policies" --debug-listen-addr= >"$DATA/cerbos.log" 2>&1) &
pids+=($!)
(cd "$DATA" && PDP_DATA_DIR="$DATA/pdp" PDP_DECISION_CACHE=off exec taskset -c 0 "$PDP_BIN" serve \
  --policies "${POLICIES:-$ROOT/policies/todo}" --host 127.0.0.1 --port "$pdp_port" >"$DATA/pdp.log" 2>&1) &
pids+=($!)
wait_port "$cp_http"; wait_port "$pdp_port"
C=http://127.0.0.1:$cp_http; P=http://127.0.0.1:$pdp_port
for url in "$C" "$P"; do eval_rps "$url" 2s >/dev/null; batch_rps "$url" 2s >/dev/null; done
rows=()
for r in $(seq 1 "$ROUNDS"); do
  ce=$(eval_rps "$C" "$SLICE"); oe=$(eval_rps "$P" "$SLICE")
  ob=$(batch_rps "$P" "$SLICE"); cb=$(batch_rps "$C" "$SLICE")
  rows+=("$ce $oe $cb $ob")
done
printf '%s\n' "${rows[@]}" | python3 -c '
import statistics, sys
rows = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
for i, (ce, oe, cb, ob) in enumerate(rows, 1):
    print(f"round {i}: cerbos {ce:7.0f} / {cb:6.0f} req/s, this PDP {oe:7.0f} / {ob:6.0f} req/s"
          f"  ratio evaluation {oe/ce:.2f}, batch of 10 {ob/cb:.2f}")
print(f"median ratio (this/cerbos): evaluation {statistics.median(r[1]/r[0] for r in rows):.2f}, "
      f"batch of 10 {statistics.median(r[3]/r[2] for r in rows):.2f}   (goal >= 3.00 each)")
'
