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

# kubectl's plain SPDY/3.1 transport (KUBECTL_PORT_FORWARD_WEBSOCKETS=false; older kubectl):
# POST with `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version: portforward.k8s.io`.
test_port_forward_over_plain_spdy() {
  start_httpd_pod pfspdy
  KUBECTL_PORT_FORWARD_WEBSOCKETS=false start_port_forward pfspdy -v=7 pod/pfspdy :80
  expect_contains "$(cat "$PF_OUT")" "POST https://"
  expect_contains "$(cat "$PF_OUT")" "X-Stream-Protocol-Version: portforward.k8s.io"
  expect_contains "$(cat "$PF_OUT")" "Response Status: 101 Switching Protocols"
  run_ok fetch index.html
  expect_eq "$OUT" "hello from pfspdy" "first connection"
  expect_eq "$(fetch big.txt | md5sum)" "$(seq 1 300000 | md5sum)" "big.txt over SPDY"
  # Two at once, both complete.
  fetch big.txt >"$E2E_TMP/spdy-a.txt" &
  local a=$!
  fetch big.txt >"$E2E_TMP/spdy-b.txt" &
  local b=$!
  wait "$a" || fail "first parallel download"
  wait "$b" || fail "second parallel download"
  expect_eq "$(md5sum <"$E2E_TMP/spdy-a.txt")" "$(seq 1 300000 | md5sum)" "parallel a"
  expect_eq "$(md5sum <"$E2E_TMP/spdy-b.txt")" "$(seq 1 300000 | md5sum)" "parallel b"
  kill -TERM "$PF_PID"
  # Toward the pod: what a local client sends arrives whole. (nc's stdin stays open: at its
  # EOF nc would end its side of the connection, and kubectl then drops what it has not sent.)
  kc run pfspdyin --image=docker.io/library/busybox:1.36 -- \
    sh -c 'sleep 3600 | { nc -l -p 9000 >/tmp/recv; touch /tmp/done; }' >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/pfspdyin --timeout=5s
  KUBECTL_PORT_FORWARD_WEBSOCKETS=false start_port_forward pfspdyin pod/pfspdyin :9000
  # nc listens (port 9000 is 2328 in /proc/net/tcp*) before kubectl's first connection.
  wait_until 30 kc exec pfspdyin -- sh -c 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":2328 "'
  seq 1 200000 >"$E2E_TMP/spdy-up.txt"
  bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_PORT && cat '$E2E_TMP/spdy-up.txt' >&3 && exec 3>&-" ||
    fail "sending to the forwarded port"
  wait_until 30 kc exec pfspdyin -- test -f /tmp/done
  expect_eq "$(kc exec pfspdyin -- cat /tmp/recv | md5sum)" "$(md5sum <"$E2E_TMP/spdy-up.txt")" \
    "bytes sent to the pod"
  kill -TERM "$PF_PID"
}
