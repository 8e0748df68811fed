# The node agent inside `skiff server`: the server registers its own node and runs pods as real
# containers (runc, overlayfs, CNI), driven with kubectl. Needs root, runc, conmon, the CNI
# plugins and busybox-static (scripts/install-deps.sh).

setup_file() {
  agent_setup
}

stop_joined_agent() {
  if [ -f "$E2E_TMP/joined.pid" ]; then kill -TERM "$(cat "$E2E_TMP/joined.pid")" 2>/dev/null || true; fi
}

teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_joined_agent agent_teardown "$E2E_TMP"/joined/agent/runtime/runc
}

pod_phase() { kc get pod "$1" -o jsonpath='{.status.phase}'; }

test_node_reports_the_host() {
  run_ok kc get node "$NODE_NAME" -o wide
  expect_contains "$OUT" "Ready"
  expect_contains "$OUT" "v1.32.0-skiff"
  expect_contains "$OUT" "runc://"
  expect_eq "$(kc get node "$NODE_NAME" -o jsonpath='{.status.capacity.pods}')" 110 "pods capacity"
  expect_eq "$(kc get lease -n kube-node-lease "$NODE_NAME" -o jsonpath='{.spec.holderIdentity}')" \
    "$NODE_NAME" "lease holder"
  # The node IPAM controller gave the node a pod CIDR from the cluster CIDR.
  expect_contains "$(kc get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}')" \
    "${CLUSTER_CIDR%.0.0/16}."
}

test_pod_runs_with_an_ip_and_is_deleted_gracefully() {
  kc run hello --image=docker.io/library/busybox:1.36 -- sh -c 'echo hi; sleep 3600' >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/hello --timeout=5s
  run_ok kc get pod hello -o wide
  expect_contains "$OUT" "Running"
  expect_contains "$OUT" "$NODE_NAME"
  expect_contains "$(kc get pod hello -o jsonpath='{.status.podIP}')" "${CLUSTER_CIDR%.0.0/16}."
  run_ok kc describe pod hello
  expect_contains "$OUT" "Started container hello"
  run_ok kc delete pod hello --grace-period=2
  expect_fail kc get pod hello
  expect_contains "$OUT" "NotFound"
}

test_job_pod_runs_to_completion() {
  kc create job once --image=docker.io/library/busybox:1.36 -- sh -c 'echo done' >/dev/null
  wait_until 90 kc wait --for=condition=complete job/once --timeout=5s
  run_ok kc get pods -l job-name=once
  expect_contains "$OUT" "Completed"
}

test_crashing_pod_backs_off() {
  kc run crash --image=docker.io/library/busybox:1.36 -- sh -c 'exit 1' >/dev/null
  wait_until 90 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod crash | grep -q CrashLoopBackOff"
  wait_until 60 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get pod crash -o jsonpath='{.status.containerStatuses[0].restartCount}')\" -ge 1 ]"
}

test_skiff_agent_joins_as_a_second_node() {
  local suffix node bridge data pid
  suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
  node=join-$suffix
  bridge=sk$suffix
  data=$E2E_TMP/joined
  echo "$bridge" >>"$E2E_TMP/bridges"
  "$SKIFF_BIN" image import "$E2E_TMP/busybox" --data-dir "$data" >/dev/null
  "$SKIFF_BIN" agent "${NODE_DISK_FLAGS[@]}" --server "https://127.0.0.1:$SERVER_PORT" \
    --token "$(cat "$E2E_TMP/data/token")" --node-name "$node" --data-dir "$data" \
    --bridge-name "$bridge" >>"$E2E_TMP/joined.log" 2>&1 &
  pid=$!
  echo "$pid" >"$E2E_TMP/joined.pid"
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get node $node | grep -q ' Ready '"
  kc run pinned --image=docker.io/library/busybox:1.36 \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$node\"}}" \
    -- sh -c 'sleep 3600' >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/pinned --timeout=5s
  run_ok kc get pod pinned -o wide
  expect_contains "$OUT" "$node"
  run_ok kc delete pod pinned --grace-period=1
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$E2E_TMP/joined.pid"
  # The agent's containers are gone with the pod; the node stays until deleted.
  expect_eq "$(runc --root "$data/agent/runtime/runc" list -q | wc -l)" 0 "containers left"
  run_ok kc delete node "$node"
}

test_security_context_and_qos_reach_the_container() {
  kc apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: secured
spec:
  securityContext:
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: ["sh", "-c", "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; echo oom=$(cat /proc/self/oom_score_adj); sleep 3600"]
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 100m, memory: 64Mi}
YAML
  wait_until 60 kc wait --for=condition=Ready pod/secured --timeout=5s
  expect_eq "$(kc get pod secured -o jsonpath='{.status.qosClass}')" Guaranteed "QoS class"
  wait_until 20 bash -c "kubectl --kubeconfig '$KUBECONFIG' logs secured | grep -q oom="
  run_ok kc logs secured
  expect_contains "$OUT" "NoNewPrivs:	1"
  expect_contains "$OUT" "Seccomp:	2"
  # Only CAP_NET_BIND_SERVICE (bit 10) is left.
  expect_contains "$OUT" "CapEff:	0000000000000400"
  # Guaranteed: -997, unless the host's root lacks CAP_SYS_RESOURCE (then the agent's own).
  local capeff want
  capeff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  if (( (16#$capeff >> 24) & 1 )); then want=-997; else want=$(cat "/proc/$SERVER_PID/oom_score_adj"); fi
  expect_contains "$OUT" "oom=$want"

  # runAsNonRoot with an image that runs as root: the container is refused, as the kubelet does.
  kc apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext: {runAsNonRoot: true}
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
YAML
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod nonroot | grep -q CreateContainerConfigError"
  run_ok kc get pod nonroot -o jsonpath='{.status.containerStatuses[0].state.waiting.message}'
  expect_contains "$OUT" "runAsNonRoot and image will run as root"
  kc delete pod secured nonroot --grace-period=1 >/dev/null
}
