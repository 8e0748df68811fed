# Images from a real registry and the failures a user sees in `kubectl get pod`: a pod's image
# is pulled from Debian's docker-registry on a loopback port (pushed there with skopeo); a
# missing image, a corrupted layer, a missing command and a missing hostPath each leave their
# pod waiting with the kubelet's reason while the node keeps running its other pods. Needs root,
# runc, conmon, the CNI plugins, busybox-static, docker-registry and skopeo
# (scripts/install-deps.sh test).

# start_registry: docker-registry on 127.0.0.1:<free port>, its config and storage under
# $E2E_TMP/registry. Sets REGISTRY (host:port) and REGISTRY_PID.
start_registry() {
  local dir=$E2E_TMP/registry port
  mkdir -p "$dir/storage"
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if ss -ltnH | awk '{print $4}' | grep -q ":$port\$"; then continue; fi
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
    REGISTRY_PID=$!
    echo "$REGISTRY_PID" >"$E2E_TMP/registry.pid"
    REGISTRY=127.0.0.1:$port
    if wait_until 20 bash -c "kill -0 $REGISTRY_PID && curl -sf http://$REGISTRY/v2/"; then
      export REGISTRY REGISTRY_PID
      return 0
    fi
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
  done
  echo "docker-registry did not start:" >&2
  tail -n 20 "$dir/registry.log" >&2
  return 1
}

stop_registry() {
  if [ -f "$E2E_TMP/registry.pid" ]; then
    kill -TERM "$(cat "$E2E_TMP/registry.pid")" 2>/dev/null || true
    rm -f "$E2E_TMP/registry.pid"
  fi
}

# push ARCHIVE_DIR REPO:TAG: pushes a docker-archive directory into the registry.
push() {
  local src=$1 dest=$2 tarball
  tarball=$(mktemp "$E2E_TMP/push.XXXXXX.tar")
  tar -C "$src" -cf "$tarball" .
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$E2E_TMP/policy.json"
  skopeo --policy "$E2E_TMP/policy.json" copy --quiet --dest-tls-verify=false \
    "docker-archive:$tarball" "docker://$REGISTRY/$dest"
  rm -f "$tarball"
}

# write_marker_archive DIR: a one-layer image whose only file holds random bytes, so that its
# layer blob is shared with no other image in the registry.
write_marker_archive() {
  local dir=$1 diff config
  mkdir -p "$dir/rootfs"
  head -c 4096 /dev/urandom >"$dir/rootfs/marker"
  (cd "$dir/rootfs" && tar cf ../layer.tar .)
  rm -rf "$dir/rootfs"
  diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/marker"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(dpkg --print-architecture 2>/dev/null || echo amd64)" "$diff" >"$dir/config.json"
  config=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/$config.json"
  printf '[{"Config":"%s.json","RepoTags":["marker:1"],"Layers":["layer.tar"]}]' "$config" \
    >"$dir/manifest.json"
}

# blob_file DIGEST: where the registry stores a blob.
blob_file() {
  local hex=${1#sha256:}
  echo "$E2E_TMP/registry/storage/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
}

setup_registry_and_pods() {
  agent_setup --kubelet-port 0 || return 1
  start_registry || return 1
  push "$E2E_TMP/busybox" busybox:1.36 || return 1
  write_marker_archive "$E2E_TMP/marker"
  push "$E2E_TMP/marker" corrupt/marker:1 || return 1
  # A pod that runs through all the failures below.
  kc run steady --image=docker.io/library/busybox:1.36 -- sh -c 'sleep 3600' >/dev/null &&
    wait_until 60 kc wait --for=condition=Ready pod/steady --timeout=5s || return 1
  kc get pod steady -o jsonpath='{.status.containerStatuses[0].containerID}' >"$E2E_TMP/steady.id"
}

setup_file() {
  # The runner runs no teardown_file after a failed setup_file.
  setup_registry_and_pods || { teardown_file; return 1; }
}

teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_registry agent_teardown
  stop_registry
}

# pod_reason POD: the waiting reason of the pod's first container.
pod_reason() {
  kc get pod "$1" -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}'
}

# watch_waiting POD: records every waiting reason and message of POD's first container, as
# `kubectl get -w` shows each status the node writes, into $E2E_TMP/POD.watch (started before
# the pod exists). Sets WATCH_PID.
watch_waiting() {
  kc get pods --field-selector "metadata.name=$1" -w \
    -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}{"|"}{.status.containerStatuses[0].state.waiting.message}{"\n"}' \
    >"$E2E_TMP/$1.watch" 2>&1 &
  WATCH_PID=$!
}

# pulls_at_least POD N: the node has pulled (or tried to pull) POD's image N times.
pulls_at_least() {
  local n
  n=$(kc get events --field-selector "involvedObject.name=$1,reason=Pulling" \
        -o jsonpath='{range .items[*]}{.count}{"\n"}{end}' | awk '{n += $1} END {print n + 0}')
  [ "$n" -ge "$2" ]
}

# watched_in_order POD REASON...: the watch saw the reasons in this order.
watched_in_order() {
  local file=$E2E_TMP/$1.watch line=0 n
  shift
  for r in "$@"; do
    n=$(tail -n +$((line + 1)) "$file" | grep -n "^$r|" | head -n1 | cut -d: -f1)
    [ -n "$n" ] || return 1
    line=$((line + n))
  done
}

# The pod that has been running since setup is still the same container, never restarted, and
# a new pod still starts: the node kept serving.
expect_node_keeps_serving() {
  run_ok kc get pod steady -o jsonpath='{.status.phase} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].containerID}'
  expect_eq "$OUT" "Running 0 $(cat "$E2E_TMP/steady.id")" "the steady pod"
  local probe=probe-$RANDOM
  kc run "$probe" --image=docker.io/library/busybox:1.36 -- sh -c 'sleep 3600' >/dev/null
  wait_until 60 kc wait --for=condition=Ready "pod/$probe" --timeout=5s
  kc delete pod "$probe" --grace-period=1 >/dev/null
}

test_pod_image_is_pulled_from_the_registry_and_runs() {
  kc run pulled --image="$REGISTRY/busybox:1.36" -- sh -c 'echo from-registry; sleep 3600' >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/pulled --timeout=5s
  wait_until 20 bash -c "kubectl --kubeconfig '$KUBECONFIG' logs pulled | grep -q from-registry"
  run_ok kc describe pod pulled
  expect_contains "$OUT" "Pulling image \"$REGISTRY/busybox:1.36\""
  expect_contains "$OUT" "Successfully pulled image \"$REGISTRY/busybox:1.36\""
  run_ok kc get events --field-selector involvedObject.name=pulled
  expect_contains "$OUT" "Pulled"
  # The image ID names the digest the registry served.
  expect_contains "$(kc get pod pulled -o jsonpath='{.status.containerStatuses[0].imageID}')" \
    "$REGISTRY/busybox@sha256:"
  kc delete pod pulled --grace-period=1 >/dev/null
}

test_missing_image_gives_err_image_pull_then_back_off() {
  watch_waiting missing
  kc run missing --image="$REGISTRY/busybox:no-such-tag" -- sh -c 'sleep 3600' >/dev/null
  wait_until 60 watched_in_order missing ErrImagePull ImagePullBackOff
  kill "$WATCH_PID"
  expect_contains "$(grep '^ErrImagePull|' "$E2E_TMP/missing.watch")" "manifest unknown"
  run_ok kc get pod missing --no-headers
  expect_contains "$OUT" "ImagePullBackOff"
  expect_eq "$(kc get pod missing -o jsonpath='{.status.phase}')" Pending "phase"
  run_ok kc get events --field-selector involvedObject.name=missing
  expect_contains "$OUT" "Error: ErrImagePull"
  expect_contains "$OUT" "Back-off pulling image \"$REGISTRY/busybox:no-such-tag\""
  # The pull is retried after the back-off, failing again.
  wait_until 60 pulls_at_least missing 2
  expect_node_keeps_serving
  kc delete pod missing --grace-period=1 >/dev/null
}

test_corrupted_layer_fails_the_pull_with_a_digest_mismatch() {
  # The layer blob keeps its digest path and size but no longer holds the digest's bytes.
  local manifest layer file size
  manifest=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/corrupt/marker:1")
  layer=$(jq -r '.layers[0].digest' <<<"$manifest")
  file=$(blob_file "$layer")
  [ -f "$file" ] || fail "no blob file $file"
  size=$(stat -c %s "$file")
  head -c "$size" /dev/zero | tr '\0' x >"$file"
  watch_waiting corrupt
  kc run corrupt --image="$REGISTRY/corrupt/marker:1" -- sh -c 'sleep 3600' >/dev/null
  wait_until 60 watched_in_order corrupt ErrImagePull ImagePullBackOff
  kill "$WATCH_PID"
  expect_contains "$(grep '^ErrImagePull|' "$E2E_TMP/corrupt.watch")" "digest mismatch for $layer"
  run_ok kc get pod corrupt --no-headers
  expect_contains "$OUT" "ImagePullBackOff"
  run_ok kc get events --field-selector involvedObject.name=corrupt
  expect_contains "$OUT" "digest mismatch"
  # Nothing of the broken image was kept.
  run_ok "$SKIFF_BIN" image list --data-dir "$E2E_TMP/data"
  expect_not_contains "$OUT" "corrupt/marker"
  expect_node_keeps_serving
  kc delete pod corrupt --grace-period=1 >/dev/null
}

test_missing_command_gives_a_container_error() {
  kc run nocmd --image=docker.io/library/busybox:1.36 --command -- /bin/no-such-command >/dev/null
  # As CRI-O with runc reports it: CreateContainerError (containerd says RunContainerError).
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod nocmd --no-headers | grep -Eq 'CreateContainerError|RunContainerError'"
  run_ok kc get pod nocmd -o jsonpath='{.status.containerStatuses[0].state.waiting.message}'
  expect_contains "$OUT" 'exec: "/bin/no-such-command": stat /bin/no-such-command: no such file or directory'
  # runc's own log format (time=... level=error msg=...) is not passed on.
  expect_not_contains "$OUT" "level=error"
  run_ok kc get events --field-selector involvedObject.name=nocmd
  expect_contains "$OUT" "/bin/no-such-command"
  # A command found in no PATH entry says so.
  kc run nopath --image=docker.io/library/busybox:1.36 --command -- no-such-command >/dev/null
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod nopath --no-headers | grep -Eq 'CreateContainerError|RunContainerError'"
  run_ok kc get pod nopath -o jsonpath='{.status.containerStatuses[0].state.waiting.message}'
  expect_contains "$OUT" 'exec: "no-such-command": executable file not found in $PATH'
  expect_not_contains "$OUT" "level=error"
  # A failed create leaves no container behind.
  local uid
  for uid in $(kc get pod nocmd nopath -o jsonpath='{.items[*].metadata.uid}'); do
    expect_eq "$(runc --root "$E2E_TMP/data/agent/runtime/runc" list -q | grep -c "^${uid}_" || true)" 0 \
      "runc containers of pod $uid"
  done
  expect_node_keeps_serving
  kc delete pod nocmd nopath --grace-period=1 >/dev/null
}

test_missing_host_path_directory_waits_with_failed_mount() {
  local missing=$E2E_TMP/no-such-dir
  kc apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: badmount
spec:
  containers:
  - name: main
    image: docker.io/library/busybox:1.36
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: host, mountPath: /host}
  volumes:
  - name: host
    hostPath: {path: $missing, type: Directory}
YAML
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get events --field-selector involvedObject.name=badmount,reason=FailedMount | grep -q FailedMount"
  run_ok kc get events --field-selector involvedObject.name=badmount,reason=FailedMount
  expect_contains "$OUT" "$missing is not a directory"
  run_ok kc get pod badmount --no-headers
  expect_contains "$OUT" "ContainerCreating"
  expect_eq "$(kc get pod badmount -o jsonpath='{.status.phase}')" Pending "phase"
  expect_node_keeps_serving
  # Once the directory exists the pod starts.
  mkdir -p "$missing"
  wait_until 60 kc wait --for=condition=Ready pod/badmount --timeout=5s
  kc delete pod badmount --grace-period=1 >/dev/null
}

# As the kubelet keeps it until its next sync of the pod, ErrImagePull stays long enough for
# a polling `kubectl get pod` to see it (the node's own status write does not resync the pod).
test_err_image_pull_is_shown_until_the_pull_is_retried() {
  kc run missing-polled --image="$REGISTRY/busybox:no-such-tag-either" -- sh -c 'sleep 3600' >/dev/null
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get pod missing-polled --no-headers | grep -q ErrImagePull"
  kc delete pod missing-polled --grace-period=1 >/dev/null
}
