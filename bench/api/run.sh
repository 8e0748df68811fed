#!/usr/bin/env bash
# The API benchmark: skiff's Kubernetes API against etcd 3.4 (the store Kubernetes puts behind
# its API server), measured in one run on one machine and printed as skiff/etcd ratios; then
# the idle RSS of `skiff server --disable-agent` and the size of the stripped binary.
#
# Each server runs pinned to one core (SERVER_CPU) and the load generator, bench_api, to
# another (LOAD_CPU). etcd keeps its default fsync behaviour and is driven through its v3 JSON
# gateway on loopback; skiff through its real API path (HTTPS, client certificate, admission,
# store). Figures are never asserted: the summary says which targets were met.
#
# Usage: bench/api/run.sh          (needs build/skiff and build/bench/api/bench_api;
#                                   `make bench` builds them and runs this)
# Environment:
#   BUILD_DIR      build directory (default: build)
#   SKIFF_BIN      the skiff binary (default: $BUILD_DIR/skiff)
#   SERVER_CPU     core for the servers (0);  LOAD_CPU  core for the load generator (1)
#   BENCH_ARGS     extra bench_api flags for both sides, e.g. "--creates 10000 --gets 20000"
#   IDLE_SECONDS   how long the idle server settles before its RSS is read (5)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
skiff=${SKIFF_BIN:-$build/skiff}
gen=$build/bench/api/bench_api
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
idle_seconds=${IDLE_SECONDS:-5}
read -r -a extra <<<"${BENCH_ARGS:-}"

for b in "$skiff" "$gen"; do
  if [ ! -x "$b" ]; then
    echo "missing $b: build first (make build, or cmake --build $build --target skiff bench_api)" >&2
    exit 1
  fi
done
for tool in etcd taskset strip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$tool is not installed: run scripts/install-deps.sh test" >&2
    exit 1
  fi
done
if ! taskset -c "$server_cpu" true 2>/dev/null || ! taskset -c "$load_cpu" true 2>/dev/null; then
  echo "cannot pin to CPUs $server_cpu and $load_cpu on this $(nproc)-CPU machine;" \
    "set SERVER_CPU and LOAD_CPU" >&2
  exit 1
fi
# Every watch is a connection: 1,000 watchers need more than the common limit of 1,024 files.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  ulimit -n 4096 2>/dev/null || echo "warning: cannot raise the open-file limit to 4096" >&2
fi

tmp=$(mktemp -d /tmp/skiff-bench-api.XXXXXX)
server_pid=
cleanup() {
  stop_server
  if [ -n "${BENCH_KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# start_skiff DIR [taskset prefix...]: starts a server with data in DIR; sets server_pid and
# skiff_port once it answers /readyz.
start_skiff() {
  local dir=$1
  shift
  mkdir -p "$dir"
  "$@" "$skiff" server --data-dir "$dir" --port 0 --bind-address 127.0.0.1 --disable-agent \
    >"$dir.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 60))
  while [ ! -s "$dir/port" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "skiff server did not start:" >&2
      tail -n 20 "$dir.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  skiff_port=$(cat "$dir/port")
  if ! "$gen" skiff --port "$skiff_port" --tls-dir "$dir/tls" --wait-ready 60; then
    tail -n 20 "$dir.log" >&2
    exit 1
  fi
}

echo "== etcd: $(etcd --version | head -n 1), JSON gateway on loopback, CPU $server_cpu"
mapfile -t ports < <("$gen" --free-ports 2)
client_port=${ports[0]}
peer_port=${ports[1]}
taskset -c "$server_cpu" etcd --name bench --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$client_port" \
  --advertise-client-urls "http://127.0.0.1:$client_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "bench=http://127.0.0.1:$peer_port" >"$tmp/etcd.log" 2>&1 &
server_pid=$!
if ! "$gen" etcd --port "$client_port" --wait-ready 30; then
  tail -n 20 "$tmp/etcd.log" >&2
  exit 1
fi
taskset -c "$load_cpu" "$gen" etcd --port "$client_port" --server-pid "$server_pid" "${extra[@]}" \
  2> >(tee "$tmp/etcd.err" >&2) | tee "$tmp/etcd.out" | grep '^#' || true
stop_server

echo "== skiff: $("$skiff" version 2>/dev/null | head -n 1), HTTPS with the admin client" \
  "certificate, CPU $server_cpu"
start_skiff "$tmp/skiff" taskset -c "$server_cpu"
taskset -c "$load_cpu" "$gen" skiff --port "$skiff_port" --tls-dir "$tmp/skiff/tls" \
  --server-pid "$server_pid" "${extra[@]}" 2> >(tee "$tmp/skiff.err" >&2) | tee "$tmp/skiff.out" | grep '^#' || true
stop_server

echo "== idle skiff server --disable-agent (RSS after ${idle_seconds} s)"
start_skiff "$tmp/idle"
sleep "$idle_seconds"
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
stop_server
strip -o "$tmp/skiff.stripped" "$skiff"
stripped_bytes=$(stat -c %s "$tmp/skiff.stripped")
unstripped_bytes=$(stat -c %s "$skiff")

# figure SIDE NAME: the value bench_api printed, or "fail".
figure() {
  local v
  v=$(awk -v n="$2" '$1 == n {print $2}' "$tmp/$1.out")
  echo "${v:-fail}"
}
# ratio A B: A/B to two places, or n/a.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else printf "n/a" }'
}

missing=0
echo
echo "== results ($(nproc) CPUs: servers on CPU $server_cpu, load generator on CPU $load_cpu;" \
  "work as in the # lines)"
printf '%-40s %12s %12s %11s\n' "figure" "skiff" "etcd" "skiff/etcd"
row() {  # row LABEL NAME
  local s e
  s=$(figure skiff "$2")
  e=$(figure etcd "$2")
  [ "$s" != fail ] && [ "$e" != fail ] || missing=1
  printf '%-40s %12s %12s %11s\n' "$1" "$s" "$e" "$(ratio "$s" "$e")"
}
row "creates/s (higher is better)" creates_per_s
row "gets/s (higher is better)" gets_per_s
row "list 10,000 ms, median (lower is better)" list10k_ms
row "watch p50 ms (lower is better)" watch_p50_ms
row "watch p99 ms (lower is better)" watch_p99_ms
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')
printf '%-40s %12s\n' "idle RSS, MiB" "$rss_mib"
printf '%-40s %12s   (unstripped %.1f MiB)\n' "stripped binary, MiB" \
  "$(awk -v b="$stripped_bytes" 'BEGIN {printf "%.1f", b / 1048576}')" \
  "$(awk -v b="$unstripped_bytes" 'BEGIN {printf "%.1f", b / 1048576}')"

creates_ratio=$(ratio "$(figure skiff creates_per_s)" "$(figure etcd creates_per_s)")
list_ratio=$(ratio "$(figure skiff list10k_ms)" "$(figure etcd list10k_ms)")
verdict() {  # verdict VALUE OP LIMIT
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v !~ /^[0-9.]+$/) { print "no figure"; exit }
    ok = (op == ">=") ? v + 0 >= l + 0 : (op == "<=") ? v + 0 <= l + 0 : v + 0 < l + 0
    print ok ? "met" : "MISSED" }'
}
echo
echo "== summary"
printf '%-34s %10s   %s\n' "creates/s ratio >= 1.0" "$creates_ratio" \
  "$(verdict "$creates_ratio" ">=" 1.0)"
printf '%-34s %10s   %s\n' "list-10k time ratio <= 1.0" "$list_ratio" \
  "$(verdict "$list_ratio" "<=" 1.0)"
printf '%-34s %10s   %s\n' "idle RSS < 30 MiB" "$rss_mib" "$(verdict "$rss_mib" "<" 30)"
if [ "$missing" -ne 0 ]; then
  echo "some figures are missing: a phase failed (see the bench_api messages above)" >&2
  exit 1
fi
