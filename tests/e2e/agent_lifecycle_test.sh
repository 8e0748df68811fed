# Container lifecycle across what the host does to it: a container over its memory limit is
# OOM-killed and reported as the kubelet does (OOMKilled, exit code 137); a node agent killed
# with kill -9 and started again adopts the pods it was running (same containers, never
# restarted or duplicated) and removes what belongs to pods deleted while it was down. Needs
# root, runc, conmon, the CNI plugins and busybox-static (scripts/install-deps.sh).

setup_file() {
  # The runner runs no teardown_file after a failed setup_file.
  agent_setup --kubelet-port 0 || { teardown_file; return 1; }
}

stop_joined_agent() {
  if [ -f "$E2E_TMP/joined.pid" ]; then kill -TERM "$(cat "$E2E_TMP/joined.pid")" 2>/dev/null || true; fi
}

teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_joined_agent agent_teardown "$E2E_TMP"/joined/agent/runtime/runc
}

# start_joined_agent: a `skiff agent` joining the server as node $JOINED_NODE with its data in
# $E2E_TMP/joined (its name and bridge are made once per run). Sets JOINED_PID.
start_joined_agent() {
  if [ -z "${JOINED_NODE:-}" ]; then
    local suffix
    suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
    JOINED_NODE=join-$suffix
    JOINED_BRIDGE=sk$suffix
    echo "$JOINED_BRIDGE" >>"$E2E_TMP/bridges"
    "$SKIFF_BIN" image import "$E2E_TMP/busybox" --data-dir "$E2E_TMP/joined" >/dev/null
  fi
  "$SKIFF_BIN" agent "${NODE_DISK_FLAGS[@]}" --server "https://127.0.0.1:$SERVER_PORT" \
    --token "$(cat "$E2E_TMP/data/token")" --node-name "$JOINED_NODE" \
    --data-dir "$E2E_TMP/joined" --bridge-name "$JOINED_BRIDGE" --kubelet-port 0 \
    >>"$E2E_TMP/joined.log" 2>&1 &
  JOINED_PID=$!
  echo "$JOINED_PID" >"$E2E_TMP/joined.pid"
}

joined_runc() { runc --root "$E2E_TMP/joined/agent/runtime/runc" "$@"; }

# pod_uid POD
pod_uid() { kc get pod "$1" -o jsonpath='{.metadata.uid}'; }

# containers_of UID: the runc containers of a pod on the joined node, one per line.
containers_of() { joined_runc list -q | grep "^$1_" || true; }

# pinned_pod NAME COMMAND: a pod on the joined node running `sh -c COMMAND`.
pinned_pod() {
  kc run "$1" --image=docker.io/library/busybox:1.36 \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$JOINED_NODE\"}}" \
    -- sh -c "$2" >/dev/null
}

test_container_over_its_memory_limit_is_oom_killed() {
  # dd's 64 MiB block buffer is filled by the kernel: far over the 20 MiB limit.
  kc apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources:
      limits: {memory: 20Mi}
---
apiVersion: v1
kind: Pod
metadata:
  name: hog-restarted
spec:
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources:
      limits: {memory: 20Mi}
YAML
  wait_until 60 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod hog -o jsonpath='{.status.phase}')\" == Failed ]"
  run_ok kc get pod hog -o jsonpath='{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}'
  expect_eq "$OUT" "OOMKilled 137" "terminated state of hog"
  run_ok kc get pod hog --no-headers
  expect_contains "$OUT" "OOMKilled"

  # Restarted (restartPolicy Always): after its back-off the container runs again, the OOM
  # kill its last state.
  wait_until 90 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod hog-restarted -o jsonpath='{.status.containerStatuses[0].restartCount}')\" -ge 1 ]"
  wait_until 30 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod hog-restarted -o jsonpath='{.status.containerStatuses[0].lastState.terminated.reason}')\" == OOMKilled ]"
  run_ok kc get pod hog-restarted -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}'
  expect_eq "$OUT" 137 "last exit code of hog-restarted"
  kc delete pod hog hog-restarted --grace-period=1 >/dev/null
}

test_restarted_agent_adopts_its_pods_and_removes_orphans() {
  start_joined_agent
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get node $JOINED_NODE | grep -q ' Ready '"
  pinned_pod kept 'sleep 3600'
  pinned_pod dropped 'sleep 3600'
  wait_until 60 kc wait --for=condition=Ready pod/kept pod/dropped --timeout=5s
  run_ok kc exec kept -- touch /tmp/before-restart
  local uid dropped_uid id pid status
  uid=$(pod_uid kept)
  dropped_uid=$(pod_uid dropped)
  id=$(containers_of "$uid")
  expect_eq "$(wc -l <<<"$id")" 1 "containers of kept"
  pid=$(joined_runc state "$id" | jq -r .pid)
  status=$(kc get pod kept -o jsonpath='{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}')
  expect_contains "$status" "runc://$id 0 "

  # The agent dies; its containers keep running under conmon.
  kill -KILL "$JOINED_PID"
  wait "$JOINED_PID" 2>/dev/null || true
  kill -0 "$pid" || fail "the container of kept died with its agent"
  expect_eq "$(joined_runc state "$id" | jq -r .status)" running "runc state of kept"
  # While it is down, one of its pods is deleted and a new one is bound to it.
  kc delete pod dropped --force --grace-period=0 >/dev/null 2>&1
  pinned_pod arrived 'sleep 3600'

  start_joined_agent
  wait_until 60 kc wait --for=condition=Ready pod/arrived --timeout=5s
  # The deleted pod's container, sandbox and directory are removed.
  wait_until 60 bash -c "! runc --root '$E2E_TMP/joined/agent/runtime/runc' list -q | grep -q '^${dropped_uid}_'"
  wait_until 30 bash -c "! ls '$E2E_TMP/joined/agent/netns' | grep -q '$dropped_uid'"
  wait_until 30 bash -c "[ ! -e '$E2E_TMP/joined/agent/pods/$dropped_uid' ]"

  # The running pod is the same container: same process, same status, its files still there.
  expect_eq "$(containers_of "$uid")" "$id" "containers of kept after the restart"
  expect_eq "$(joined_runc state "$id" | jq -r .pid)" "$pid" "pid of kept"
  expect_eq "$(kc get pod kept -o jsonpath='{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}')" \
    "$status" "status of kept"
  run_ok kc exec kept -- ls /tmp/before-restart
  expect_eq "$(kc get pod kept -o jsonpath='{.status.phase}')" Running "phase of kept"
  # One container per pod container on the node, nothing else.
  expect_eq "$(joined_runc list -q | wc -l)" 2 "containers on the joined node"
  expect_eq "$(containers_of "$(pod_uid arrived)" | wc -l)" 1 "containers of arrived"

  kc delete pod kept arrived --grace-period=1 >/dev/null
  stop_joined_agent
  wait "$JOINED_PID" 2>/dev/null || true
  rm -f "$E2E_TMP/joined.pid"
  expect_eq "$(joined_runc list -q | wc -l)" 0 "containers left"
  run_ok kc delete node "$JOINED_NODE"
}
