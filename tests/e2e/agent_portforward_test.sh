# `kubectl port-forward` to pods on the server's own node: kubectl's SPDY/3.1-over-WebSocket
# tunnel through the API server to the node agent, which connects to the port inside the pod's
# network namespace. Needs root, runc, conmon, the CNI plugins and busybox-static
# (scripts/install-deps.sh).

setup_file() {
  agent_setup
}

stop_port_forwards() {
  local pid
  for pid in $(cat "$E2E_TMP/pf.pids" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
}

teardown_file() {
  stop_port_forwards
  agent_teardown
}

# start_httpd_pod NAME: a busybox pod serving /www on port 80 (index.html says "hello from
# NAME"; big.txt is `seq 1 300000`, about 2 MB), Ready.
start_httpd_pod() {
  kc run "$1" --image=docker.io/library/busybox:1.36 -- sh -c \
    'mkdir -p /www && echo "hello from $(hostname)" >/www/index.html &&
     seq 1 300000 >/www/big.txt && exec httpd -f -p 80 -h /www' >/dev/null
  wait_until 60 kc wait --for=condition=Ready "pod/$1" --timeout=5s
}

# start_port_forward NAME ARGS...: `kubectl port-forward ARGS...` in the background; waits
# until it listens and sets PF_PID, PF_PORT (the local port it chose) and PF_OUT (its output).
start_port_forward() {
  PF_OUT=$E2E_TMP/pf-$1.out
  shift
  kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" port-forward "$@" \
    >"$PF_OUT" 2>&1 &
  PF_PID=$!
  echo "$PF_PID" >>"$E2E_TMP/pf.pids"
  wait_until 30 grep -q 'Forwarding from 127.0.0.1:' "$PF_OUT"
  PF_PORT=$(grep -oE 'Forwarding from 127\.0\.0\.1:[0-9]+' "$PF_OUT" | head -n1 | sed 's/.*://')
  [ -n "$PF_PORT" ] || fail "no local port in: $(cat "$PF_OUT")"
}

fetch() { wget -qO- -T 10 "http://127.0.0.1:$PF_PORT/$1"; }

pf_exited() { ! kill -0 "$PF_PID" 2>/dev/null; }

# Tries a connection (which tells kubectl about a failure) and reports whether kubectl exited.
connect_then_check_exited() {
  wget -qO- -T 3 "http://127.0.0.1:$PF_PORT/" >/dev/null 2>&1 || true
  pf_exited
}

test_port_forward_serves_sequential_connections() {
  start_httpd_pod pfweb
  start_port_forward pfweb pod/pfweb :80
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfweb" "first connection"
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfweb" "second connection"
  # More than the SPDY windows (64 KiB) in one response, byte for byte.
  expect_eq "$(fetch big.txt | md5sum)" "$(seq 1 300000 | md5sum)" "big.txt"
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfweb" "after the large transfer"
  expect_contains "$(cat "$PF_OUT")" "Handling connection for $PF_PORT"
  kill -TERM "$PF_PID"
}

test_killing_the_pod_ends_the_port_forward() {
  start_httpd_pod pfgone
  start_port_forward pfgone pod/pfgone :80
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfgone"
  run_ok kc delete pod pfgone --grace-period=1 --wait=true
  # kubectl learns that the pod is gone at the latest from its next connection's error
  # stream, then drops the tunnel and exits.
  wait_until 60 connect_then_check_exited
  if wait "$PF_PID" 2>/dev/null; then fail "kubectl port-forward exited 0"; fi
  expect_contains "$(cat "$PF_OUT")" "lost connection to pod"
}

test_port_without_a_listener_reports_the_error() {
  start_httpd_pod pfrefused
  start_port_forward pfrefused pod/pfrefused :81
  expect_fail fetch index.html
  wait_until 30 pf_exited
  expect_contains "$(cat "$PF_OUT")" "error forwarding port 81"
  expect_contains "$(tr 'A-Z' 'a-z' <"$PF_OUT")" "connection refused"
  # The pod itself is untouched.
  start_port_forward pfrefused2 pod/pfrefused :80
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfrefused"
  kill -TERM "$PF_PID"
}
