# `kubectl top`: metrics.k8s.io/v1beta1 served by the API server from the node agent's kubelet
# summary (/stats/summary), with real containers. Needs root, runc, conmon, the CNI plugins and
# busybox-static (scripts/install-deps.sh).

setup_file() {
  # Port 0: the kubelet API on a free port, so that parallel runs never collide.
  agent_setup --kubelet-port 0
}

teardown_file() {
  agent_teardown
}

# The CPU column of `kubectl top pod` for pod $1, in millicores ("" while there are no metrics).
pod_cpu_millis() {
  kubectl --kubeconfig "$KUBECONFIG" top pod "$1" --no-headers 2>/dev/null | awk '{ sub(/m$/, "", $2); print $2 }'
}

busy_cpu_above() {
  local cpu
  cpu=$(pod_cpu_millis busy)
  [ -n "$cpu" ] && [ "$cpu" -gt "$1" ]
}

start_busy_pod() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: busy
  labels: {app: busy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: spin
    image: docker.io/library/busybox:1.36
    command: [sh, -c, 'while :; do :; done']
    resources:
      limits: {cpu: 200m, memory: 64Mi}
  - name: idle
    image: docker.io/library/busybox:1.36
    command: [sleep, '3600']
EOF
  wait_until 60 kc wait --for=condition=Ready pod/busy --timeout=5s
}

test_metrics_group_is_discovered() {
  run_ok kc api-resources --api-group=metrics.k8s.io
  expect_contains "$OUT" "NodeMetrics"
  expect_contains "$OUT" "PodMetrics"
  run_ok kc get --raw /apis/metrics.k8s.io/v1beta1
  expect_contains "$OUT" '"kind":"APIResourceList"'
}

test_top_node_shows_cpu_and_memory_of_the_node() {
  wait_until 60 kc top node "$NODE_NAME"
  run_ok kc top node
  expect_contains "$OUT" "CPU(cores)"
  expect_contains "$OUT" "MEMORY(bytes)"
  local line
  line=$(echo "$OUT" | grep "^$NODE_NAME ")
  # NAME  CPU(cores)  CPU(%)  MEMORY(bytes)  MEMORY(%), with numbers (not <unknown>).
  [[ "$line" =~ ^$NODE_NAME\ +[0-9]+m\ +[0-9]+%\ +[0-9]+Mi\ +[0-9]+% ]] ||
    fail "unexpected top node line: $line"
  local mem
  mem=$(echo "$line" | awk '{ sub(/Mi$/, "", $4); print $4 }')
  [ "$mem" -gt 0 ] || fail "node memory is $mem"
  run_ok kc get --raw "/apis/metrics.k8s.io/v1beta1/nodes/$NODE_NAME"
  expect_contains "$OUT" '"kind":"NodeMetrics"'
  expect_fail kc get --raw /apis/metrics.k8s.io/v1beta1/nodes/no-such-node
  expect_contains "$OUT" "NotFound"
}

test_top_pod_shows_a_busy_pod() {
  start_busy_pod
  # A busy loop under a 200m limit: clearly above zero, and not much above the limit.
  wait_until 60 busy_cpu_above 20
  run_ok kc top pod
  expect_contains "$OUT" "CPU(cores)"
  expect_contains "$OUT" "busy"
  local cpu
  cpu=$(pod_cpu_millis busy)
  [ "$cpu" -gt 20 ] && [ "$cpu" -lt 400 ] || fail "busy pod uses ${cpu}m CPU"

  run_ok kc top pod --containers
  expect_contains "$OUT" "POD"
  local spin idle
  spin=$(echo "$OUT" | awk '$1 == "busy" && $2 == "spin" { sub(/m$/, "", $3); print $3 }')
  idle=$(echo "$OUT" | awk '$1 == "busy" && $2 == "idle" { sub(/m$/, "", $3); print $3 }')
  [ -n "$spin" ] && [ "$spin" -gt 20 ] || fail "container spin uses '${spin}'m CPU: $OUT"
  [ -n "$idle" ] && [ "$idle" -lt 20 ] || fail "container idle uses '${idle}'m CPU: $OUT"
  echo "$OUT" | awk '$1 == "busy" && $2 == "spin" { exit !($4 ~ /^[0-9]+Mi$/) }' ||
    fail "no memory for container spin: $OUT"
}

test_top_pod_selectors_namespaces_and_unknown_pods() {
  kubectl --kubeconfig "$KUBECONFIG" get pod busy >/dev/null 2>&1 || start_busy_pod
  wait_until 60 kc top pod busy
  run_ok kc top pod -l app=busy
  expect_contains "$OUT" "busy"
  run_ok kc top pod -l app=other
  expect_not_contains "$OUT" "busy"
  run_ok kc top pod -A
  expect_contains "$OUT" "NAMESPACE"
  expect_contains "$OUT" "default"
  expect_contains "$OUT" "busy"
  expect_fail kc top pod no-such-pod
  expect_contains "$OUT" "NotFound"
  # Metrics of another namespace's pods are not listed here.
  run_ok kc top pod -n kube-system
  expect_not_contains "$OUT" "busy"
}
