# Container probes run by the node agent inside `skiff server`, seen through kubectl: readiness
# (exec and httpGet) flipping the READY column and the Ready condition, liveness failures
# restarting the container, and a startup probe holding readiness back. Needs root, runc, conmon,
# the CNI plugins and busybox-static (scripts/install-deps.sh).
#
# Probe commands look at files the test creates or removes in the container's root filesystem
# from the host (the overlay mount of the container's bundle), so that each flip happens when
# the test says, not after a sleep in the container.

setup_file() {
  agent_setup
}

teardown_file() {
  agent_teardown
}

kcq() { kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" "$@"; }

# container_root POD [CONTAINER]: the host path of the root filesystem of the pod's current
# container (the first one by default).
container_root() {
  local uid restarts name
  uid=$(kcq get pod "$1" -o jsonpath='{.metadata.uid}')
  name=${2:-$(kcq get pod "$1" -o jsonpath='{.spec.containers[0].name}')}
  restarts=$(kcq get pod "$1" -o jsonpath="{.status.containerStatuses[?(@.name==\"$name\")].restartCount}")
  echo "$E2E_TMP/data/agent/runtime/containers/${uid}_${name}_${restarts:-0}/rootfs"
}

# pod_column POD COLUMN: a column of `kubectl get pod` (READY, STATUS, RESTARTS, ...).
pod_column() {
  kcq get pod "$1" --no-headers -o "custom-columns=X:$2" 2>/dev/null
}
ready_column() { kcq get pod "$1" --no-headers | awk '{print $2}'; }
ready_is() { [ "$(ready_column "$1")" == "$2" ]; }
ready_condition() { kcq get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
ready_condition_is() { [ "$(ready_condition "$1")" == "$2" ]; }
phase_is() { [ "$(kcq get pod "$1" -o jsonpath='{.status.phase}')" == "$2" ]; }
restarts_at_least() {
  local n
  n=$(kcq get pod "$1" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  [ "${n:-0}" -ge "$2" ]
}
describe_contains() { kcq describe pod "$1" | grep -qF -- "$2"; }

test_exec_readiness_flips_both_ways() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: gate
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: gate
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
    readinessProbe:
      exec:
        command: ["test", "-f", "/tmp/ready"]
      periodSeconds: 1
      failureThreshold: 1
EOF
  wait_until 60 phase_is gate Running
  # Running, but not ready until the probe succeeds.
  wait_until 30 describe_contains gate "Readiness probe failed"
  expect_eq "$(ready_column gate)" "0/1" "READY before the file exists"
  expect_eq "$(ready_condition gate)" "False" "Ready condition before the file exists"
  expect_eq "$(kc get pod gate -o jsonpath='{.status.conditions[?(@.type=="ContainersReady")].status}')" \
    "False" "ContainersReady"
  expect_eq "$(kc get pod gate -o jsonpath='{.status.containerStatuses[0].started}')" "true" "started"
  run_ok kc describe pod gate
  expect_contains "$OUT" "Unhealthy"

  touch "$(container_root gate)/tmp/ready"
  wait_until 30 ready_is gate 1/1
  expect_eq "$(ready_condition gate)" "True" "Ready condition once ready"
  expect_eq "$(kc get pod gate -o jsonpath='{.status.containerStatuses[0].ready}')" "true" "ready"

  rm "$(container_root gate)/tmp/ready"
  wait_until 30 ready_is gate 0/1
  expect_eq "$(ready_condition gate)" "False" "Ready condition after the file went"
  expect_eq "$(pod_column gate .status.phase)" "Running" "phase stays Running"
  expect_eq "$(kc get pod gate -o jsonpath='{.status.containerStatuses[0].restartCount}')" "0" \
    "readiness failures never restart"
  kc delete pod gate --grace-period=1 >/dev/null
}

test_liveness_failure_restarts_the_container() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: zombie
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: zombie
    image: docker.io/library/busybox:1.36
    command: ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/healthy"]
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
EOF
  wait_until 60 ready_is zombie 1/1
  expect_eq "$(pod_column zombie .status.containerStatuses[0].restartCount)" "0" "restarts at first"
  rm "$(container_root zombie)/tmp/healthy"
  wait_until 90 restarts_at_least zombie 1
  run_ok kc get pod zombie
  expect_contains "$OUT" "zombie"
  [ "$(kcq get pod zombie --no-headers | awk '{print $4}')" -ge 1 ] || fail "RESTARTS column: $OUT"
  run_ok kc describe pod zombie
  expect_contains "$OUT" "Liveness probe failed"
  expect_contains "$OUT" "Unhealthy"
  expect_contains "$OUT" "Container zombie failed liveness probe, will be restarted"
  expect_contains "$OUT" "Killing"
  # The killed attempt is the last state; the probe's 1 s grace ended it with SIGKILL
  # (sleep as PID 1 ignores SIGTERM).
  expect_eq "$(kc get pod zombie -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}')" \
    "137" "exit code of the killed attempt"
  # The new attempt touched the file again and runs healthy.
  wait_until 60 ready_is zombie 1/1
  kc delete pod zombie --grace-period=1 >/dev/null
}

test_http_readiness_against_busybox_httpd() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: docker.io/library/busybox:1.36
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; while [ ! -f /tmp/serve ]; do sleep 0.2; done; exec httpd -f -p 8080 -h /www"]
    ports:
    - name: http
      containerPort: 8080
    readinessProbe:
      httpGet:
        path: /index.html
        port: http
      periodSeconds: 1
      failureThreshold: 1
  - name: missing
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
    readinessProbe:
      httpGet:
        path: /missing
        port: 8080
        httpHeaders:
        - name: X-Probe
          value: skiff
      periodSeconds: 1
      failureThreshold: 1
EOF
  wait_until 60 phase_is web Running
  # Nothing listens yet: the connection is refused.
  wait_until 30 describe_contains web "connect: connection refused"
  expect_eq "$(ready_column web)" "0/2" "READY before httpd runs"
  touch "$(container_root web web)/tmp/serve"
  wait_until 30 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod web -o jsonpath='{.status.containerStatuses[?(@.name==\"web\")].ready}' | grep -q true"
  expect_eq "$(ready_column web)" "1/2" "READY with httpd serving"
  # The other container's probe gets a 404 from the same pod IP.
  wait_until 30 describe_contains web "Readiness probe failed: HTTP probe failed with statuscode: 404"
  expect_eq "$(ready_condition web)" "False" "Ready condition with one container unready"
  run_ok kc get pod web -o jsonpath='{.status.conditions[?(@.type=="ContainersReady")].message}'
  expect_contains "$OUT" "missing"
  kc delete pod web --grace-period=1 >/dev/null
}

test_startup_probe_delays_readiness() {
  kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: slowstart
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: slowstart
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
    startupProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 300
    livenessProbe:
      exec:
        command: ["test", "-f", "/tmp/started"]
      periodSeconds: 1
      failureThreshold: 1
EOF
  wait_until 60 phase_is slowstart Running
  wait_until 30 describe_contains slowstart "Startup probe failed"
  expect_eq "$(kc get pod slowstart -o jsonpath='{.status.containerStatuses[0].started}')" "false" \
    "started before the startup probe succeeded"
  expect_eq "$(ready_column slowstart)" "0/1" "READY while starting"
  expect_eq "$(ready_condition slowstart)" "False" "Ready condition while starting"
  touch "$(container_root slowstart)/tmp/started"
  wait_until 30 ready_is slowstart 1/1
  expect_eq "$(kc get pod slowstart -o jsonpath='{.status.containerStatuses[0].started}')" "true" \
    "started once the startup probe succeeded"
  expect_eq "$(ready_condition slowstart)" "True" "Ready condition once started"
  # The liveness probe (failureThreshold 1) was held back while starting: no restart.
  expect_eq "$(kc get pod slowstart -o jsonpath='{.status.containerStatuses[0].restartCount}')" "0" \
    "restarts"
  run_ok kc describe pod slowstart
  expect_not_contains "$OUT" "Liveness probe failed"
  kc delete pod slowstart --grace-period=1 >/dev/null
}
