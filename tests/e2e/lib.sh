# Helpers for end-to-end tests: start a real `skiff server` in a temporary data dir on a free
# port and drive it with the real kubectl.

e2e_init() {
  E2E_NAME=$1
  E2E_TMP=$(mktemp -d "/tmp/skiff-e2e-$1.XXXXXX")
  export E2E_TMP
  SKIFF_BIN=${SKIFF_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/skiff}
  export SKIFF_BIN
}

e2e_cleanup() {
  stop_server >/dev/null 2>&1 || true
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $E2E_TMP" >&2; else rm -rf "$E2E_TMP"; fi
}

# start_server [extra flags...]: starts a server on a free port (or $SERVER_PORT when set, to
# restart on the same port) with data in $E2E_TMP/data, waits until it is ready, and exports
# KUBECONFIG. Sets SERVER_PID and SERVER_PORT. The server runs without a node agent unless
# SERVER_AGENT is set (then pass --node-name, --bridge-name and --cluster-cidr unique to the
# test run).
start_server() {
  local data=${SERVER_DATA:-$E2E_TMP/data}
  mkdir -p "$data"
  local port=${SERVER_PORT:-0}
  local agent_flags=(--disable-agent)
  if [ -n "${SERVER_AGENT:-}" ]; then agent_flags=(); fi
  "$SKIFF_BIN" server --data-dir "$data" --port "$port" --bind-address 127.0.0.1 \
    "${agent_flags[@]}" "$@" >>"$E2E_TMP/server.log" 2>&1 &
  SERVER_PID=$!
  export KUBECONFIG=$data/kubeconfig.yaml
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited early:" >&2; tail -n 30 "$E2E_TMP/server.log" >&2; return 1
    fi
    if [ -f "$data/port" ]; then
      SERVER_PORT=$(cat "$data/port")
      if kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" get --raw /readyz \
           >/dev/null 2>&1; then
        return 0
      fi
    fi
    sleep 0.1
  done
  echo "server did not become ready" >&2
  tail -n 30 "$E2E_TMP/server.log" >&2
  return 1
}

# stop_server [signal]: stops the server (TERM by default, KILL for crash tests).
stop_server() {
  local sig=${1:-TERM}
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -s "$sig" "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# kc ARGS...: the real kubectl against the test server, with its own discovery cache.
kc() {
  timeout 60 kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" "$@"
}

fail() {
  echo "FAILED: $*" >&2
  return 1
}

# expect_eq ACTUAL EXPECTED [what]
expect_eq() {
  [ "$1" == "$2" ] || fail "${3:-value}: expected [$2], got [$1]"
}

# expect_contains HAYSTACK NEEDLE
expect_contains() {
  [[ "$1" == *"$2"* ]] || fail "expected output to contain [$2]; got:
$1"
}

expect_not_contains() {
  [[ "$1" != *"$2"* ]] || fail "expected output not to contain [$2]; got:
$1"
}

# expect_fail CMD...: the command must exit non-zero; its combined output is in $OUT.
expect_fail() {
  if OUT=$("$@" 2>&1); then
    fail "expected failure from: $* ; got success:
$OUT"
  fi
  return 0
}

# run_ok CMD...: the command must succeed; its combined output is in $OUT.
run_ok() {
  if ! OUT=$("$@" 2>&1); then
    fail "command failed: $*
$OUT"
  fi
  return 0
}

# wait_until SECONDS CMD...: retries CMD until it succeeds or the deadline passes.
wait_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out after ${limit}s waiting for: $*"
}
