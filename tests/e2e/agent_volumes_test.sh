# Pod volumes and env from ConfigMaps and Secrets on the node agent inside `skiff server`,
# driven with kubectl. Pods report what they see by writing into a hostPath dir under $E2E_TMP
# that the test reads. Needs root, runc, conmon, the CNI plugins and busybox-static
# (scripts/install-deps.sh).

setup_file() {
  agent_setup
}

teardown_file() {
  agent_teardown
}

# out_is FILE TEXT: the file the pods write under $OUT_DIR holds TEXT.
out_is() { [ "$(cat "$OUT_DIR/$1" 2>/dev/null)" == "$2" ]; }

# A fresh hostPath dir for one test's pods.
new_out_dir() {
  OUT_DIR=$E2E_TMP/out-$1
  mkdir -p "$OUT_DIR"
}

test_pod_reads_configmap_and_secret_through_files_and_env() {
  new_out_dir files
  kc create configmap app --from-literal=greeting=hello --from-literal=color=blue >/dev/null
  kc create secret generic creds --from-literal=password=s3cret >/dev/null
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: reader
  labels: {app: reader}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: cfg
    configMap:
      name: app
      items: [{key: greeting, path: conf/greeting.txt, mode: 0400}]
  - name: sec
    secret: {secretName: creds}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
  - name: out
    hostPath: {path: $OUT_DIR, type: Directory}
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: COLOR
      valueFrom: {configMapKeyRef: {name: app, key: color}}
    envFrom:
    - prefix: APP_
      configMapRef: {name: app}
    command:
    - sh
    - -c
    - |
      echo "\$COLOR \$PASSWORD \$APP_greeting" > /out/env
      cat /etc/sec/password > /out/secret
      stat -c %a /etc/cfg/..data/conf/greeting.txt > /out/mode
      cat /etc/info/labels > /out/labels
      cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > /out/ns
      test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo yes > /out/token
      if touch /etc/cfg/x 2>/dev/null; then echo rw > /out/ro; else echo ro > /out/ro; fi
      while true; do cat /etc/cfg/conf/greeting.txt > /out/live.tmp; cat /out/live.tmp > /out/live; sleep 0.2; done
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: info, mountPath: /etc/info}
    - {name: out, mountPath: /out}
EOF
  wait_until 90 out_is live hello
  expect_eq "$(cat "$OUT_DIR/env")" "blue s3cret hello" "env"
  expect_eq "$(cat "$OUT_DIR/secret")" "s3cret" "secret file"
  expect_eq "$(cat "$OUT_DIR/mode")" "400" "item mode"
  expect_eq "$(cat "$OUT_DIR/labels")" 'app="reader"' "downward API labels"
  expect_eq "$(cat "$OUT_DIR/ns")" "default" "service account namespace"
  expect_eq "$(cat "$OUT_DIR/token")" "yes" "service account token"
  expect_eq "$(cat "$OUT_DIR/ro")" "ro" "configMap volumes are read-only"

  # An update reaches the running container within the refresh.
  kc create configmap app --from-literal=greeting=bonjour --from-literal=color=blue \
    --dry-run=client -o yaml | kc apply -f - >/dev/null 2>&1
  wait_until 60 out_is live bonjour
  kc delete pod reader --grace-period=1 >/dev/null
}

test_empty_dir_is_shared_between_containers() {
  new_out_dir shared
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: sharing}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
  - {name: out, hostPath: {path: $OUT_DIR}}
  containers:
  - name: producer
    image: docker.io/library/busybox:1.36
    command: [sh, -c, "echo disk > /scratch/msg; echo memory > /mem/msg; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}, {name: mem, mountPath: /mem}]
  - name: consumer
    image: docker.io/library/busybox:1.36
    command:
    - sh
    - -c
    - "until test -f /in/msg && test -f /mem/msg; do sleep 0.1; done; cat /in/msg /mem/msg > /out/got; sleep 3600"
    volumeMounts:
    - {name: scratch, mountPath: /in}
    - {name: mem, mountPath: /mem}
    - {name: out, mountPath: /out}
EOF
  wait_until 90 out_is got "disk
memory"
  local uid
  uid=$(kc get pod sharing -o jsonpath='{.metadata.uid}')
  grep -q " $E2E_TMP/data/agent/pods/$uid/volumes/kubernetes.io~empty-dir/mem " /proc/self/mountinfo ||
    fail "the Memory emptyDir is no tmpfs"
  kc delete pod sharing --grace-period=1 >/dev/null
  wait_until 30 bash -c "! kubectl --kubeconfig '$KUBECONFIG' get pod sharing"
  # Volumes are removed with the pod, the tmpfs unmounted.
  if grep -q "$E2E_TMP/data/agent/pods/$uid/" /proc/self/mountinfo; then
    fail "a volume of the deleted pod is still mounted"
  fi
  [ ! -e "$E2E_TMP/data/agent/pods/$uid" ] || fail "the deleted pod's dir is left"
}

test_missing_configmap_blocks_only_its_pod() {
  kc run needs-env --image=docker.io/library/busybox:1.36 --restart=Never \
    --overrides='{"apiVersion":"v1","spec":{"containers":[{"name":"needs-env","image":"docker.io/library/busybox:1.36","command":["sleep","3600"],"env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"later","key":"k"}}}]}]}}' \
    >/dev/null
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: needs-vol}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: cfg, configMap: {name: later}}]
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: [sleep, "3600"]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
EOF
  kc run unaffected --image=docker.io/library/busybox:1.36 -- sleep 3600 >/dev/null
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod needs-env | grep -q CreateContainerConfigError"
  expect_eq "$(kc get pod needs-env -o jsonpath='{.status.containerStatuses[0].state.waiting.message}')" \
    'configmap "later" not found' "waiting message"
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get events --field-selector involvedObject.name=needs-vol | grep FailedMount | grep -q 'configmap \"later\" not found'"
  run_ok kc get pod needs-vol
  expect_contains "$OUT" "ContainerCreating"
  run_ok kc describe pod needs-vol
  expect_contains "$OUT" 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
  wait_until 60 kc wait --for=condition=Ready pod/unaffected --timeout=5s

  # Once the ConfigMap exists, both start.
  kc create configmap later --from-literal=k=v >/dev/null
  wait_until 90 kc wait --for=condition=Ready pod/needs-env --timeout=5s
  wait_until 90 kc wait --for=condition=Ready pod/needs-vol --timeout=5s
  kc delete pod needs-env needs-vol unaffected --grace-period=1 >/dev/null
}

test_host_path_type_is_checked() {
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hostpath-missing}
spec:
  volumes: [{name: h, hostPath: {path: $E2E_TMP/not-there, type: Directory}}]
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: [sleep, "3600"]
    volumeMounts: [{name: h, mountPath: /h}]
EOF
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get events --field-selector involvedObject.name=hostpath-missing | grep -q 'hostPath type check failed: $E2E_TMP/not-there is not a directory'"
  run_ok kc get pod hostpath-missing
  expect_contains "$OUT" "ContainerCreating"
  kc delete pod hostpath-missing --grace-period=0 --force >/dev/null 2>&1
}
