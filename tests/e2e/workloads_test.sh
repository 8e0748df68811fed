# Workload controllers and the scheduler as a kubectl user meets them, on simulated nodes
# (`skiff sim-nodes`: node agents that register, renew their leases and report pods Running
# without starting containers).

setup_file() {
  start_server
  "$SKIFF_BIN" sim-nodes --kubeconfig "$KUBECONFIG" --count 3 --name-prefix node- \
    >>"$E2E_TMP/sim.log" 2>&1 &
  SIM_PID=$!
  wait_until 60 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get nodes --no-headers 2>/dev/null | grep -c ' Ready')\" = 3 ]"
}

teardown_file() {
  kill "$SIM_PID" 2>/dev/null || true
  wait "$SIM_PID" 2>/dev/null || true
  stop_server
}

# jsonpath_is WANT GET-ARGS... PATH: true when `kubectl get GET-ARGS -o jsonpath=PATH` prints
# exactly WANT.
jsonpath_is() {
  local want=$1
  shift
  local path=${*: -1}
  [ "$(kc get "${@:1:$#-1}" -o jsonpath="$path" 2>/dev/null)" = "$want" ]
}

test_nodes_register_ready() {
  run_ok kc get nodes
  expect_contains "$OUT" "node-0"
  expect_contains "$OUT" "Ready"
  run_ok kc get node node-0 -o jsonpath='{.spec.podCIDR}'
  [[ "$OUT" == 10.42.*.0/24 ]] || fail "no pod CIDR from the cluster CIDR: $OUT"
}

test_deployment_rolls_out_and_back() {
  run_ok kc create deployment web --image=registry.local/web:1 --replicas=3
  run_ok kc rollout status deploy/web --timeout=60s
  expect_contains "$OUT" "successfully rolled out"
  run_ok kc get pods -l app=web -o wide
  expect_eq "$(grep -c Running <<<"$OUT")" "3" "running pods"
  run_ok kc set image deploy/web web=registry.local/web:2
  run_ok kc rollout status deploy/web --timeout=60s
  run_ok kc rollout history deploy/web
  expect_contains "$OUT" "REVISION"
  run_ok kc rollout undo deploy/web
  run_ok kc rollout status deploy/web --timeout=60s
  run_ok kc get deploy web -o jsonpath='{.spec.template.spec.containers[0].image}'
  expect_eq "$OUT" "registry.local/web:1"
  run_ok kc scale deploy/web --replicas=5
  run_ok kc rollout status deploy/web --timeout=60s
  run_ok kc get deploy web -o jsonpath='{.status.readyReplicas}'
  expect_eq "$OUT" "5"
  run_ok kc describe deploy/web
  expect_contains "$OUT" "ScalingReplicaSet"
}

test_rollout_pause_and_resume() {
  kc create deployment paused --image=x:1 --replicas=2 >/dev/null
  kc rollout status deploy/paused --timeout=60s >/dev/null
  run_ok kc rollout pause deploy/paused
  kc set image deploy/paused x=x:2 >/dev/null
  run_ok kc get rs -l app=paused -o name
  expect_eq "$(wc -l <<<"$OUT")" "1" "no new ReplicaSet while paused"
  run_ok kc rollout resume deploy/paused
  run_ok kc rollout status deploy/paused --timeout=60s
  run_ok kc get rs -l app=paused -o name
  expect_eq "$(wc -l <<<"$OUT")" "2"
}

test_service_gets_endpoints_from_ready_pods() {
  kc create deployment api --image=x:1 --replicas=2 >/dev/null
  kc rollout status deploy/api --timeout=60s >/dev/null
  run_ok kc expose deploy/api --port=80 --target-port=8080
  wait_until 30 bash -c "kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get endpoints api -o jsonpath='{.subsets[0].addresses[*].ip}' | grep -q '10.42'"
  run_ok kc get endpoints api -o jsonpath='{.subsets[0].addresses[*].ip}'
  expect_eq "$(wc -w <<<"$OUT")" "2" "endpoint addresses"
  run_ok kc get endpointslices -l kubernetes.io/service-name=api -o jsonpath='{.items[0].endpoints[*].addresses[0]}'
  expect_eq "$(wc -w <<<"$OUT")" "2" "endpointslice endpoints"
}

test_jobs_and_cronjobs() {
  run_ok kc create job once --image=busybox:1.36 -- true
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get job once -o jsonpath='{.status.succeeded}' | grep -q 1"
  run_ok kc create cronjob tick --image=busybox:1.36 --schedule='*/1 * * * *' -- true
  wait_until 130 bash -c "kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get jobs -o name | grep -q tick-"
}

test_cordon_and_drain() {
  kc create deployment drained --image=x:1 --replicas=3 >/dev/null
  kc rollout status deploy/drained --timeout=60s >/dev/null
  run_ok kc cordon node-1
  run_ok kc get node node-1
  expect_contains "$OUT" "SchedulingDisabled"
  run_ok kc drain node-1 --ignore-daemonsets --timeout=60s
  run_ok kc get pods -l app=drained -o jsonpath='{.items[*].spec.nodeName}'
  expect_not_contains "$OUT" "node-1"
  kc rollout status deploy/drained --timeout=60s >/dev/null
  run_ok kc uncordon node-1
}

test_deleting_a_deployment_removes_its_replicasets_and_pods() {
  kc create deployment gone --image=x:1 --replicas=2 >/dev/null
  kc rollout status deploy/gone --timeout=60s >/dev/null
  run_ok kc delete deploy/gone
  wait_until 30 bash -c "[ -z \"\$(kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get rs,pods -l app=gone -o name)\" ]"
}

test_deleting_a_namespace_removes_everything_in_it() {
  kc create namespace shop >/dev/null
  kc create deployment web -n shop --image=x:1 --replicas=2 >/dev/null
  kc rollout status deploy/web -n shop --timeout=60s >/dev/null
  run_ok kc delete namespace shop --timeout=90s
  expect_fail kc get ns shop
}

test_cascade_orphan_keeps_pods_and_foreground_waits_for_them() {
  kc create deployment orphans --image=x:1 --replicas=2 >/dev/null
  kc rollout status deploy/orphans --timeout=60s >/dev/null
  run_ok kc delete deploy/orphans --cascade=orphan
  sleep 2
  run_ok kc get rs -l app=orphans -o name
  expect_eq "$(wc -l <<<"$OUT")" "1" "orphaned ReplicaSet kept"
  run_ok kc get rs -l app=orphans -o jsonpath='{.items[0].metadata.ownerReferences}'
  expect_eq "$OUT" "" "orphan has no owner left"
  run_ok kc delete rs -l app=orphans --cascade=foreground
  run_ok kc get pods -l app=orphans -o name
  expect_eq "$OUT" "" "foreground deletion returns after the pods are gone"
}

test_daemonset_runs_one_pod_per_node() {
  cat >"$E2E_TMP/ds.yaml" <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "x:1"}]
YAML
  run_ok kc apply -f "$E2E_TMP/ds.yaml"
  run_ok kc rollout status ds/agent --timeout=60s
  run_ok kc get pods -l app=agent -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}'
  expect_eq "$(sort -u <<<"$OUT" | wc -l)" "3" "one pod on each node"
  run_ok kc set image ds/agent agent=x:2
  run_ok kc rollout status ds/agent --timeout=90s
  run_ok kc get pods -l app=agent -o jsonpath='{.items[*].spec.containers[0].image}'
  expect_eq "$OUT" "x:2 x:2 x:2"
  run_ok kc rollout history ds/agent
  expect_contains "$OUT" "2"
}

test_statefulset_has_stable_ordered_names() {
  cat >"$E2E_TMP/sts.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: "pg:1"}]
YAML
  run_ok kc apply -f "$E2E_TMP/sts.yaml"
  run_ok kc rollout status sts/db --timeout=90s
  run_ok kc get pods -l app=db -o jsonpath='{.items[*].metadata.name}'
  expect_eq "$(tr ' ' '\n' <<<"$OUT" | sort | tr '\n' ' ')" "db-0 db-1 db-2 "
  run_ok kc get pod db-1 -o jsonpath='{.spec.hostname}.{.spec.subdomain}'
  expect_eq "$OUT" "db-1.db"
  run_ok kc scale sts/db --replicas=1
  wait_until 60 jsonpath_is "db-0" pods -l app=db '{.items[*].metadata.name}'
}

test_unschedulable_pod_says_why() {
  run_ok kc run huge --image=x:1 --overrides='{"spec":{"containers":[{"name":"huge","image":"x:1","resources":{"requests":{"cpu":"64"}}}]}}'
  wait_until 30 jsonpath_is "False" pod huge '{.status.conditions[?(@.type=="PodScheduled")].status}'
  run_ok kc get pod huge
  expect_contains "$OUT" "Pending"
  run_ok kc get pod huge -o jsonpath='{.status.conditions[?(@.type=="PodScheduled")].reason}'
  expect_eq "$OUT" "Unschedulable"
  run_ok kc describe pod huge
  expect_contains "$OUT" "FailedScheduling"
  expect_contains "$OUT" "Insufficient cpu"
  run_ok kc delete pod huge --wait=false
}

test_pods_of_a_lost_node_are_replaced_elsewhere() {
  "$SKIFF_BIN" sim-nodes --kubeconfig "$KUBECONFIG" --count 1 --name-prefix edge- \
    --label zone=edge >>"$E2E_TMP/sim-edge.log" 2>&1 &
  local edge=$!
  wait_until 60 jsonpath_is "True" node edge-0 '{.status.conditions[?(@.type=="Ready")].status}'
  cat >"$E2E_TMP/edge.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: edgy}
spec:
  replicas: 2
  selector: {matchLabels: {app: edgy}}
  template:
    metadata: {labels: {app: edgy}}
    spec:
      affinity:
        nodeAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            preference: {matchExpressions: [{key: zone, operator: In, values: [edge]}]}
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
      containers: [{name: app, image: "x:1"}]
YAML
  run_ok kc apply -f "$E2E_TMP/edge.yaml"
  run_ok kc rollout status deploy/edgy --timeout=60s
  run_ok kc get pods -l app=edgy -o jsonpath='{.items[*].spec.nodeName}'
  expect_eq "$OUT" "edge-0 edge-0" "preferred node"
  kill -9 "$edge"
  wait "$edge" 2>/dev/null || true
  # The lease lapses (40 s), the node is tainted unreachable, the pods are evicted after
  # their tolerationSeconds and the ReplicaSet replaces them on the nodes still alive.
  wait_until 120 jsonpath_is "Unknown" node edge-0 '{.status.conditions[?(@.type=="Ready")].status}'
  run_ok kc get node edge-0 -o jsonpath='{.spec.taints[*].key}'
  expect_contains "$OUT" "node.kubernetes.io/unreachable"
  wait_until 90 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get pods -l app=edgy --field-selector=status.phase=Running -o jsonpath='{.items[*].spec.nodeName}' | tr ' ' '\\n' | grep -c '^node-')\" = 2 ]"
  kc delete node edge-0 >/dev/null
}
