# The control plane as a kubectl user meets it: every line of the issue's tour, typed as a
# user would, against a real `skiff server`.

setup_file() {
  start_server
}

teardown_file() {
  stop_server
}

test_version_reports_kubernetes_1_32() {
  run_ok kc version -o json
  expect_contains "$OUT" '"minor": "32"'
  expect_contains "$OUT" '"gitVersion": "v1.32'
}

test_builtin_namespaces_exist() {
  run_ok kc get namespaces
  expect_contains "$OUT" "NAME"
  expect_contains "$OUT" "STATUS"
  for ns in default kube-system kube-public kube-node-lease; do
    expect_contains "$OUT" "$ns"
  done
  expect_contains "$OUT" "Active"
}

test_kubernetes_service_exists() {
  run_ok kc get svc kubernetes -n default -o jsonpath='{.spec.clusterIP}'
  expect_eq "$OUT" "10.43.0.1" "kubernetes service cluster IP"
}

test_imperative_creates_send_protobuf_and_work() {
  run_ok kc create namespace shop
  run_ok kc create configmap cfg -n shop --from-literal=a=1
  run_ok kc get cm cfg -n shop -o jsonpath='{.data.a}'
  expect_eq "$OUT" "1" "configmap data"
  run_ok kc create secret generic s -n shop --from-literal=p=x
  run_ok kc get secret s -n shop -o jsonpath='{.data.p}'
  expect_eq "$OUT" "eA==" "secret data (base64 of x)"
  run_ok kc create deployment web -n shop --image=x:1
  run_ok kc get deploy web -n shop -o jsonpath='{.spec.template.spec.containers[0].image}'
  expect_eq "$OUT" "x:1"
  # Defaults as Kubernetes sets them.
  run_ok kc get deploy web -n shop -o jsonpath='{.spec.replicas} {.spec.strategy.type} {.spec.revisionHistoryLimit}'
  expect_eq "$OUT" "1 RollingUpdate 10"
}

test_get_shows_kubectl_columns() {
  kc create namespace cols >/dev/null 2>&1 || true
  run_ok kc create deployment api -n cols --image=registry.local/api:1
  run_ok kc get deploy -n cols
  expect_contains "$OUT" "NAME"
  expect_contains "$OUT" "READY"
  expect_contains "$OUT" "UP-TO-DATE"
  expect_contains "$OUT" "AVAILABLE"
  expect_contains "$OUT" "AGE"
  run_ok kc get deploy -n cols -o wide
  expect_contains "$OUT" "IMAGES"
  expect_contains "$OUT" "registry.local/api:1"
  run_ok kc get all -n cols -o wide
  expect_contains "$OUT" "deployment.apps/api"
}

test_get_all_namespaces_with_labels() {
  kc create namespace lbl >/dev/null 2>&1 || true
  run_ok kc create configmap labelled -n lbl --from-literal=k=v
  run_ok kc label cm labelled -n lbl tier=backend
  run_ok kc get cm -A --show-labels
  expect_contains "$OUT" "NAMESPACE"
  expect_contains "$OUT" "LABELS"
  line=$(grep labelled <<<"$OUT")
  expect_contains "$line" "lbl"
  expect_contains "$line" "tier=backend"
}

test_apply_create_update_and_unchanged() {
  cat >"$E2E_TMP/app.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: applied
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: applied
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: applied
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.local/web:1
        ports:
        - containerPort: 8080
      - name: sidecar
        image: registry.local/side:1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: applied
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: applied
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list"]
EOF
  run_ok kc apply -f "$E2E_TMP/app.yaml"
  expect_contains "$OUT" "namespace/applied created"
  expect_contains "$OUT" "deployment.apps/web created"
  expect_contains "$OUT" "service/web created"
  run_ok kc apply -f "$E2E_TMP/app.yaml"
  expect_contains "$OUT" "deployment.apps/web unchanged"
  sed -i 's#registry.local/web:1#registry.local/web:2#; s/mode: fast/mode: safe/' "$E2E_TMP/app.yaml"
  run_ok kc apply -f "$E2E_TMP/app.yaml"
  expect_contains "$OUT" "deployment.apps/web configured"
  run_ok kc get deploy web -n applied -o jsonpath='{.spec.template.spec.containers[*].image}'
  expect_eq "$OUT" "registry.local/web:2 registry.local/side:1" "containers merged by name"
  run_ok kc get deploy web -n applied -o jsonpath='{.metadata.generation}'
  expect_eq "$OUT" "2" "generation bumped by the spec change"
  run_ok kc get cm settings -n applied -o jsonpath='{.data.mode}'
  expect_eq "$OUT" "safe"
  run_ok kc get svc web -n applied -o jsonpath='{.spec.clusterIP}'
  [[ "$OUT" == 10.43.* ]] || fail "service got no cluster IP: $OUT"
}

test_server_side_apply_and_diff() {
  cat >"$E2E_TMP/ssa.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  a: "1"
  b: "2"
EOF
  run_ok kc apply --server-side -f "$E2E_TMP/ssa.yaml"
  expect_contains "$OUT" "serverside-applied"
  run_ok kc get cm ssa -o jsonpath='{.data.a}{.data.b}'
  expect_eq "$OUT" "12"
  # No differences: diff exits 0.
  run_ok kc diff -f "$E2E_TMP/ssa.yaml"
  sed -i 's/b: "2"/b: "3"/' "$E2E_TMP/ssa.yaml"
  set +e
  OUT=$(kc diff -f "$E2E_TMP/ssa.yaml" 2>&1)
  rc=$?
  set -e
  expect_eq "$rc" "1" "kubectl diff exit code with differences"
  expect_contains "$OUT" '+  b: "3"'
  # diff is a dry run: nothing changed.
  run_ok kc get cm ssa -o jsonpath='{.data.b}'
  expect_eq "$OUT" "2"
  # Dropping a field from the applied config removes it.
  cat >"$E2E_TMP/ssa.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  a: "1"
EOF
  run_ok kc apply --server-side -f "$E2E_TMP/ssa.yaml"
  run_ok kc get cm ssa -o jsonpath='{.data}'
  expect_eq "$OUT" '{"a":"1"}'
}

test_server_side_apply_conflict_and_force() {
  kc create configmap owned --from-literal=k=v1 >/dev/null
  cat >"$E2E_TMP/owned.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: owned
data:
  k: v2
EOF
  expect_fail kc apply --server-side -f "$E2E_TMP/owned.yaml"
  expect_contains "$OUT" "conflict"
  run_ok kc apply --server-side --force-conflicts -f "$E2E_TMP/owned.yaml"
  run_ok kc get cm owned -o jsonpath='{.data.k}'
  expect_eq "$OUT" "v2"
}

test_watch_streams_every_change() {
  kc create namespace watched >/dev/null 2>&1 || true
  kc create deployment w -n watched --image=x:1 >/dev/null
  kc get deploy -n watched -w --output-watch-events -o jsonpath='{.type} {.object.spec.replicas}{"\n"}' \
    >"$E2E_TMP/watch.out" 2>&1 &
  local pid=$!
  wait_until 20 grep -q "ADDED 1" "$E2E_TMP/watch.out"
  kc scale deploy/w -n watched --replicas=3 >/dev/null
  wait_until 20 grep -q "MODIFIED 3" "$E2E_TMP/watch.out"
  kc delete deploy/w -n watched --wait=false >/dev/null
  wait_until 20 grep -q "DELETED" "$E2E_TMP/watch.out"
  kill "$pid" 2>/dev/null || true
}

test_table_watch_prints_rows() {
  kc get cm -n default -w >"$E2E_TMP/tw.out" 2>&1 &
  local pid=$!
  wait_until 20 grep -q "NAME" "$E2E_TMP/tw.out"
  kc create configmap streamed --from-literal=x=1 >/dev/null
  wait_until 20 grep -q "^streamed" "$E2E_TMP/tw.out"
  kill "$pid" 2>/dev/null || true
}

test_edit_label_annotate_and_patch() {
  kc create configmap editme --from-literal=a=1 >/dev/null
  cat >"$E2E_TMP/editor.sh" <<'EOF'
#!/bin/sh
sed -i 's/^  a: "1"/  a: "edited"/' "$1"
EOF
  chmod +x "$E2E_TMP/editor.sh"
  KUBE_EDITOR="$E2E_TMP/editor.sh" run_ok kc edit cm/editme
  run_ok kc get cm editme -o jsonpath='{.data.a}'
  expect_eq "$OUT" "edited"
  run_ok kc label cm editme env=prod
  run_ok kc annotate cm editme note=hello
  run_ok kc get cm editme -o jsonpath='{.metadata.labels.env} {.metadata.annotations.note}'
  expect_eq "$OUT" "prod hello"
  run_ok kc patch cm editme -p '{"data":{"b":"2"}}'
  run_ok kc patch cm editme --type=merge -p '{"data":{"c":"3"}}'
  run_ok kc patch cm editme --type=json -p '[{"op":"replace","path":"/data/a","value":"j"}]'
  run_ok kc get cm editme -o jsonpath='{.data.a}{.data.b}{.data.c}'
  expect_eq "$OUT" "j23"
  kc create deployment pd --image=x:1 >/dev/null
  # Strategic merge: the container list is merged by name, not replaced.
  run_ok kc patch deploy pd -p '{"spec":{"template":{"spec":{"containers":[{"name":"x","image":"x:2"}]}}}}'
  run_ok kc get deploy pd -o jsonpath='{.spec.template.spec.containers[0].image}'
  expect_eq "$OUT" "x:2"
  expect_fail kc patch cm editme --type=json -p '[{"op":"test","path":"/data/a","value":"nope"}]'
}

test_scale_deployment() {
  kc create deployment sc --image=x:1 >/dev/null
  run_ok kc scale deploy/sc --replicas=3
  expect_contains "$OUT" "deployment.apps/sc scaled"
  run_ok kc get deploy sc -o jsonpath='{.spec.replicas}'
  expect_eq "$OUT" "3"
}

test_create_token_and_can_i() {
  run_ok kc create token default
  [[ "$OUT" == *.*.* ]] || fail "not a JWT: $OUT"
  run_ok kc auth can-i create pods
  expect_eq "$OUT" "yes"
}

test_crd_and_its_objects() {
  cat >"$E2E_TMP/crd.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec: {type: string}
              replicas: {type: integer}
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
EOF
  run_ok kc apply -f "$E2E_TMP/crd.yaml"
  cat >"$E2E_TMP/ct.yaml" <<'EOF'
apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: every-minute
spec:
  cronSpec: "* * * * */1"
  replicas: 1
EOF
  wait_until 20 kc api-resources --api-group=stable.example.com
  run_ok kc apply -f "$E2E_TMP/ct.yaml"
  run_ok kc get ct
  expect_contains "$OUT" "every-minute"
  expect_contains "$OUT" "SPEC"
  expect_contains "$OUT" "* * * * */1"
  sed -i 's/replicas: 1/replicas: 1\n  bogus: 1/' "$E2E_TMP/ct.yaml"
  expect_fail kc apply -f "$E2E_TMP/ct.yaml"
  expect_contains "$OUT" 'unknown field "spec.bogus"'
}

test_api_resources_and_explain() {
  run_ok kc api-resources
  expect_contains "$OUT" "deployments"
  expect_contains "$OUT" "deploy"
  expect_contains "$OUT" "apps/v1"
  run_ok kc explain deployment.spec.replicas
  expect_contains "$OUT" "replicas"
  expect_contains "$OUT" "integer"
}

test_delete_file_removes_everything() {
  cat >"$E2E_TMP/del.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: gone1
---
apiVersion: v1
kind: Secret
metadata:
  name: gone2
stringData:
  k: v
EOF
  run_ok kc apply -f "$E2E_TMP/del.yaml"
  run_ok kc delete -f "$E2E_TMP/del.yaml"
  expect_contains "$OUT" 'configmap "gone1" deleted'
  expect_fail kc get cm gone1
  expect_contains "$OUT" "NotFound"
}

test_stale_update_is_rejected_with_conflict() {
  kc create configmap stale --from-literal=v=1 >/dev/null
  kc get cm stale -o yaml >"$E2E_TMP/stale.yaml"
  run_ok kc patch cm stale -p '{"data":{"v":"2"}}'
  expect_fail kc replace -f "$E2E_TMP/stale.yaml"
  expect_contains "$OUT" "the object has been modified"
  run_ok kc get cm stale -o jsonpath='{.data.v}'
  expect_eq "$OUT" "2"
}

test_server_dry_run_never_persists() {
  run_ok kc create configmap dry --from-literal=a=1 --dry-run=server
  expect_fail kc get cm dry
  expect_contains "$OUT" "NotFound"
}

test_namespace_deletion_removes_content() {
  kc create namespace doomed >/dev/null
  kc create configmap c1 -n doomed --from-literal=a=1 >/dev/null
  run_ok kc delete namespace doomed --timeout=60s
  expect_fail kc get ns doomed
  expect_fail kc get cm c1 -n doomed
  expect_contains "$OUT" "NotFound"
}

test_create_in_missing_namespace_is_refused() {
  expect_fail kc create configmap x -n nosuchns --from-literal=a=1
  expect_contains "$OUT" 'namespaces "nosuchns" not found'
}

test_lists_page_with_limit_and_continue() {
  kc create namespace paged >/dev/null
  for i in 1 2 3 4 5; do kc create configmap "p$i" -n paged --from-literal=a=$i >/dev/null; done
  # kubectl follows continue tokens; a chunk size of 2 needs three pages.
  run_ok kc get cm -n paged --chunk-size=2 -o name
  expect_eq "$(grep -c '^configmap/p' <<<"$OUT")" "5" "configmaps across pages"
  run_ok kc get --raw "/api/v1/namespaces/paged/configmaps?limit=2"
  [ "$(jq -r '.items | length' <<<"$OUT")" == "2" ] || fail "limit not honoured: $OUT"
  local cont
  cont=$(jq -r '.metadata.continue' <<<"$OUT")
  [ -n "$cont" ] && [ "$cont" != "null" ] || fail "no continue token"
}

test_delete_collection_and_selectors() {
  kc create namespace sel >/dev/null
  kc create configmap keep -n sel --from-literal=a=1 >/dev/null
  kc create configmap drop1 -n sel --from-literal=a=1 >/dev/null
  kc create configmap drop2 -n sel --from-literal=a=1 >/dev/null
  kc label cm drop1 drop2 -n sel tier=temp >/dev/null
  run_ok kc get cm -n sel -l tier=temp -o name
  expect_eq "$(wc -l <<<"$OUT")" "2"
  run_ok kc get cm -n sel --field-selector metadata.name=keep -o name
  expect_eq "$OUT" "configmap/keep"
  run_ok kc delete cm -n sel -l tier=temp
  run_ok kc get cm -n sel -o name
  expect_contains "$OUT" "configmap/keep"
  expect_not_contains "$OUT" "drop"
}

test_create_in_terminating_namespace_is_refused() {
  kc create namespace closing >/dev/null
  # A finalizer this server knows nothing about keeps the namespace Terminating.
  kc create configmap held -n closing --from-literal=a=1 >/dev/null
  kc patch cm held -n closing --type=merge -p '{"metadata":{"finalizers":["example.com/hold"]}}' >/dev/null
  kc delete namespace closing --wait=false >/dev/null
  wait_until 20 bash -c "kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get ns closing -o jsonpath='{.status.phase}' | grep -q Terminating"
  expect_fail kc create configmap late -n closing --from-literal=a=1
  expect_contains "$OUT" "because it is being terminated"
  # Releasing the finalizer lets the namespace finish.
  kc patch cm held -n closing --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
  wait_until 30 bash -c "! kubectl --kubeconfig '$KUBECONFIG' --cache-dir '$E2E_TMP/kcache' get ns closing >/dev/null 2>&1"
}

test_events_are_stored_and_selected_by_involved_object() {
  cat >"$E2E_TMP/ev.yaml" <<'EOF2'
apiVersion: v1
kind: Event
metadata:
  name: web.1
  namespace: default
involvedObject:
  kind: Deployment
  name: web
  namespace: default
  uid: "1234"
reason: ScalingReplicaSet
message: Scaled up replica set web-1 to 1
type: Normal
source:
  component: deployment-controller
EOF2
  run_ok kc apply -f "$E2E_TMP/ev.yaml"
  run_ok kc get events --field-selector involvedObject.name=web
  expect_contains "$OUT" "ScalingReplicaSet"
  expect_contains "$OUT" "Scaled up replica set web-1 to 1"
  run_ok kc get events --field-selector involvedObject.name=other -o name
  expect_eq "$OUT" ""
}

test_kubernetes_endpoints_point_at_the_server() {
  run_ok kc get endpoints kubernetes -n default -o jsonpath='{.subsets[0].ports[0].port}'
  expect_eq "$OUT" "$SERVER_PORT"
}

test_eviction_deletes_pods_unless_a_budget_forbids() {
  kc create namespace evict >/dev/null
  run_ok kc run victim -n evict --image=busybox:1.36 --labels=app=victim
  cat >"$E2E_TMP/eviction.json" <<EOF2
{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"victim","namespace":"evict"}}
EOF2
  # A budget that allows no disruption protects the running pod.
  kc patch pod victim -n evict --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null
  cat >"$E2E_TMP/pdb.yaml" <<'EOF2'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: keep-one
  namespace: evict
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: victim}
EOF2
  kc apply -f "$E2E_TMP/pdb.yaml" >/dev/null
  kc patch pdb keep-one -n evict --subresource=status --type=merge \
    -p '{"status":{"disruptionsAllowed":0,"currentHealthy":1,"desiredHealthy":1,"expectedPods":1,"observedGeneration":1}}' >/dev/null
  expect_fail kc create --raw /api/v1/namespaces/evict/pods/victim/eviction -f "$E2E_TMP/eviction.json"
  expect_contains "$OUT" "disruption budget"
  kc delete pdb keep-one -n evict >/dev/null
  run_ok kc create --raw /api/v1/namespaces/evict/pods/victim/eviction -f "$E2E_TMP/eviction.json"
  expect_fail kc get pod victim -n evict
  expect_contains "$OUT" "NotFound"
}
