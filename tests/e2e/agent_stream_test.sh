# kubectl logs, exec and attach against real containers: the API server proxies pods/log,
# pods/exec and pods/attach to the node agent's kubelet API (TLS, the join secret as bearer),
# both for the server's own node and for a node joined with `skiff agent`. Needs root, runc,
# conmon, the CNI plugins and busybox-static (scripts/install-deps.sh).

BB=docker.io/library/busybox:1.36

setup_file() {
  agent_setup --kubelet-port 0
}

stop_joined_agent() {
  if [ -f "$E2E_TMP/joined.pid" ]; then kill -TERM "$(cat "$E2E_TMP/joined.pid")" 2>/dev/null || true; fi
}

teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_joined_agent agent_teardown "$E2E_TMP"/joined/agent/runtime/runc
}

ready() { wait_until 90 kc wait --for=condition=Ready "pod/$1" --timeout=5s; }

logs_contain() { kc logs "$1" 2>/dev/null | grep -q -- "$2"; }

test_node_reports_its_kubelet_endpoint() {
  local port
  port=$(kc get node "$NODE_NAME" -o jsonpath='{.status.daemonEndpoints.kubeletEndpoint.Port}')
  [ "$port" -gt 0 ] || fail "kubelet port: [$port]"
  expect_contains "$(grep 'kubelet API of node' "$E2E_TMP/server.log")" ":$port"
}

test_logs_plain_tail_timestamps_and_limits() {
  kc run logs1 --image=$BB --restart=Never -- sh -c 'seq 1 5 | sed s/^/line-/; echo oops >&2; sleep 3600' >/dev/null
  ready logs1
  wait_until 30 logs_contain logs1 oops
  run_ok kc logs logs1
  expect_eq "$OUT" $'line-1\nline-2\nline-3\nline-4\nline-5\noops' "plain logs"
  run_ok kc logs logs1 --tail=2
  expect_eq "$OUT" $'line-5\noops' "--tail=2"
  run_ok kc logs logs1 --tail=1 --timestamps
  [[ "$OUT" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)\ oops$ ]] ||
    fail "--timestamps: got [$OUT]"
  run_ok kc logs logs1 --limit-bytes=6
  expect_eq "$OUT" "line-1" "--limit-bytes"
  run_ok kc logs logs1 --since=1h --tail=1
  expect_eq "$OUT" "oops" "--since"
  run_ok kc logs logs1 -c logs1 --tail=1
  expect_eq "$OUT" "oops" "-c"
}

test_logs_follow_shows_new_lines_live_and_ends_with_the_container() {
  kc run follow --image=$BB --restart=Never -- \
    sh -c 'echo start; while [ ! -f /tmp/go ]; do sleep 0.2; done; echo after-go' >/dev/null
  ready follow
  kc logs -f follow >"$E2E_TMP/follow.out" 2>&1 &
  local fpid=$!
  wait_until 30 grep -q start "$E2E_TMP/follow.out"
  expect_not_contains "$(cat "$E2E_TMP/follow.out")" "after-go"
  run_ok kc exec follow -- touch /tmp/go
  wait_until 30 grep -q after-go "$E2E_TMP/follow.out"
  # The container exits after its last line: the stream ends and kubectl with it.
  wait_until 30 bash -c "! kill -0 $fpid 2>/dev/null"
  wait "$fpid"
  expect_eq "$(cat "$E2E_TMP/follow.out")" $'start\nafter-go' "followed output"
}

test_logs_previous_after_a_restart() {
  kc run restarts --image=$BB --restart=Always -- sh -c 'echo boot-$(date +%s%N); sleep 1; exit 1' >/dev/null
  wait_until 60 logs_contain restarts boot-
  expect_fail kc logs restarts --previous
  expect_contains "$OUT" 'previous terminated container "restarts" in pod "restarts" not found'
  local first
  first=$(kc logs restarts)
  wait_until 90 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod restarts -o jsonpath='{.status.containerStatuses[0].restartCount}')\" -ge 1 ]"
  run_ok kc logs restarts --previous
  expect_eq "$OUT" "$first" "--previous"
}

test_logs_errors_are_clear() {
  kc run errs --image=$BB --restart=Never -- sleep 3600 >/dev/null
  ready errs
  expect_fail kc logs errs -c nope
  expect_contains "$OUT" "container nope is not valid for pod errs"
  expect_fail kc logs no-such-pod
  expect_contains "$OUT" 'pods "no-such-pod" not found'
  # Not yet running: the kubelet's reason.
  kc run waiting --image=docker.io/library/not-there:1 --restart=Never >/dev/null
  wait_until 30 bash -c "kubectl --kubeconfig '$KUBECONFIG' logs waiting 2>&1 | grep -q 'is waiting to start'"
  expect_fail kc logs waiting
  expect_contains "$OUT" 'container "waiting" in pod "waiting" is waiting to start'
}

test_exec_output_exit_code_and_stdin() {
  kc run ex --image=$BB --restart=Never -- sleep 3600 >/dev/null
  ready ex
  run_ok kc exec ex -- echo hello
  expect_eq "$OUT" "hello" "exec output"
  local rc=0
  kc exec ex -- sh -c 'echo partial; exit 3' >"$E2E_TMP/exit3.out" 2>&1 || rc=$?
  expect_eq "$rc" 3 "exec exit code"
  expect_contains "$(cat "$E2E_TMP/exit3.out")" "partial"
  expect_contains "$(cat "$E2E_TMP/exit3.out")" "command terminated with exit code 3"
  OUT=$(printf 'abc\ndef\n' | kc exec -i ex -- sh -c 'cat; echo lines=$(echo x | wc -l)')
  expect_eq "$OUT" $'abc\ndef\nlines=1' "stdin through exec -i"
  OUT=$(printf 'one\ntwo\nthree\n' | kc exec -i ex -- wc -l)
  expect_eq "$(echo "$OUT" | tr -d ' ')" "3" "wc -l of piped stdin"
  kc exec ex -- sh -c 'echo to-stderr >&2' 2>"$E2E_TMP/stderr.out" >"$E2E_TMP/stdout.out"
  expect_eq "$(cat "$E2E_TMP/stderr.out")" "to-stderr" "stderr"
  expect_eq "$(cat "$E2E_TMP/stdout.out")" "" "stdout"
  # A terminal: kubectl needs one of its own for -t.
  OUT=$(script -qec "kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' exec -it ex -- sh -c 'test -t 0 && echo is-a-tty'" /dev/null </dev/null)
  expect_contains "$OUT" "is-a-tty"
  expect_fail kc exec ex -c nope -- true
  expect_contains "$OUT" "container nope is not valid for pod ex"
}

# kubectl's plain SPDY/3.1 transport, as older kubectl versions and client-go's SPDY executor
# use it: POST with `Upgrade: SPDY/3.1` and X-Stream-Protocol-Version, then SPDY streams.
kc_spdy() { KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kc "$@"; }

test_exec_over_spdy_output_exit_code_and_stdin() {
  kc run exs --image=$BB --restart=Never -- sleep 3600 >/dev/null
  ready exs
  # The request really is the SPDY upgrade (a POST with X-Stream-Protocol-Version; kubectl
  # -v=7 prints the request and the answer's status; its WebSocket upgrade is a GET).
  kc_spdy -v=7 exec exs -- echo hello >"$E2E_TMP/spdy1.out" 2>"$E2E_TMP/spdy1.err" ||
    fail "exec over SPDY: $(cat "$E2E_TMP/spdy1.err")"
  expect_eq "$(cat "$E2E_TMP/spdy1.out")" "hello" "exec output over SPDY"
  expect_contains "$(cat "$E2E_TMP/spdy1.err")" "POST https://"
  expect_contains "$(cat "$E2E_TMP/spdy1.err")" "X-Stream-Protocol-Version: v4.channel.k8s.io"
  expect_contains "$(cat "$E2E_TMP/spdy1.err")" "Response Status: 101 Switching Protocols"
  local rc=0
  kc_spdy exec exs -- sh -c 'echo partial; echo oops >&2; exit 7' \
    >"$E2E_TMP/spdy7.out" 2>"$E2E_TMP/spdy7.err" || rc=$?
  expect_eq "$rc" 7 "exit code over SPDY"
  expect_eq "$(cat "$E2E_TMP/spdy7.out")" "partial" "stdout over SPDY"
  expect_contains "$(cat "$E2E_TMP/spdy7.err")" "oops"
  expect_contains "$(cat "$E2E_TMP/spdy7.err")" "command terminated with exit code 7"
  OUT=$(printf 'abc\ndef\n' | kc_spdy exec -i exs -- sh -c 'cat; echo done')
  expect_eq "$OUT" $'abc\ndef\ndone' "stdin through exec -i over SPDY"
  # More stdin than the SPDY windows and the pipe hold.
  OUT=$(seq 1 200000 | kc_spdy exec -i exs -- wc -l)
  expect_eq "$(echo "$OUT" | tr -d ' ')" "200000" "wc -l of 1.2 MB of stdin over SPDY"
  OUT=$(script -qec "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' exec -it exs -- sh -c 'test -t 0 && echo is-a-tty'" /dev/null </dev/null)
  expect_contains "$OUT" "is-a-tty"
  expect_fail kc_spdy exec exs -c nope -- true
  expect_contains "$OUT" "container nope is not valid for pod exs"
}

test_attach_to_a_pod_with_stdin() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: att}
spec:
  restartPolicy: Never
  containers:
  - name: att
    image: $BB
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "while read l; do echo got:\$l; done; echo bye"]
EOF
  ready att
  OUT=$(printf 'hello\nworld\n' | kc attach -i att 2>&1)
  expect_contains "$OUT" "got:hello"
  expect_contains "$OUT" "got:world"
  # stdinOnce: closing stdin ended the loop, and the container.
  wait_until 30 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod att -o jsonpath='{.status.phase}')\" = Succeeded ]"
  run_ok kc logs att
  expect_contains "$OUT" "bye"
}

test_attach_over_spdy() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: atts}
spec:
  restartPolicy: Never
  containers:
  - name: atts
    image: $BB
    stdin: true
    stdinOnce: true
    command: ["sh", "-c", "while read l; do echo got:\$l; done; echo bye"]
EOF
  ready atts
  OUT=$(printf 'hello\nworld\n' | kc_spdy attach -i atts 2>&1)
  expect_contains "$OUT" "got:hello"
  expect_contains "$OUT" "got:world"
  wait_until 30 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod atts -o jsonpath='{.status.phase}')\" = Succeeded ]"
}

test_run_interactive_attaches() {
  OUT=$(printf 'hi\n' | kc run runi -i --rm --restart=Never --image=$BB -- sh -c 'read l; echo got:$l' 2>&1)
  expect_contains "$OUT" "got:hi"
}

test_logs_and_exec_through_a_joined_agent() {
  local suffix node bridge data pid
  suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
  node=join-$suffix
  bridge=sk$suffix
  data=$E2E_TMP/joined
  echo "$bridge" >>"$E2E_TMP/bridges"
  "$SKIFF_BIN" image import "$E2E_TMP/busybox" --data-dir "$data" >/dev/null
  "$SKIFF_BIN" agent "${NODE_DISK_FLAGS[@]}" --server "https://127.0.0.1:$SERVER_PORT" \
    --token "$(cat "$E2E_TMP/data/token")" --node-name "$node" --data-dir "$data" \
    --bridge-name "$bridge" --kubelet-port 0 >>"$E2E_TMP/joined.log" 2>&1 &
  pid=$!
  echo "$pid" >"$E2E_TMP/joined.pid"
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get node $node | grep -q ' Ready '"
  local port
  port=$(kc get node "$node" -o jsonpath='{.status.daemonEndpoints.kubeletEndpoint.Port}')
  [ "$port" -gt 0 ] || fail "joined kubelet port: [$port]"
  kc run pinned --image=$BB \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$node\"}}" \
    -- sh -c 'echo from-joined; sleep 3600' >/dev/null
  ready pinned
  wait_until 30 logs_contain pinned from-joined
  run_ok kc logs pinned
  expect_eq "$OUT" "from-joined" "logs through the joined agent"
  run_ok kc exec pinned -- hostname
  expect_eq "$OUT" "pinned" "exec through the joined agent"
  local rc=0
  kc exec pinned -- sh -c 'exit 5' >/dev/null 2>&1 || rc=$?
  expect_eq "$rc" 5 "exit code through the joined agent"
  # The kubelet API refuses callers without the join secret.
  local ip
  ip=$(kc get node "$node" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  expect_eq "$(curl -sk -o /dev/null -w '%{http_code}' "https://$ip:$port/containerLogs/default/pinned/pinned")" \
    401 "unauthenticated kubelet call"
  run_ok kc delete pod pinned --grace-period=1
  kill -TERM "$pid"
  wait "$pid" || true
  # Gone for good: later tests must not be scheduled onto it.
  run_ok kc delete node "$node"
}
