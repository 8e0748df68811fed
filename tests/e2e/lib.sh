# Helpers for end-to-end tests: start a real `skiff server` in a temporary data dir on a free
# port and drive it with the real kubectl.

e2e_init() {
  E2E_NAME=$1
  E2E_TMP=$(mktemp -d "/tmp/skiff-e2e-$1.XXXXXX")
  export E2E_TMP
  SKIFF_BIN=${SKIFF_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/skiff}
  export SKIFF_BIN
}

e2e_cleanup() {
  stop_server >/dev/null 2>&1 || true
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $E2E_TMP" >&2; else rm -rf "$E2E_TMP"; fi
}

# start_server [extra flags...]: starts a server on a free port (or $SERVER_PORT when set, to
# restart on the same port) with data in $E2E_TMP/data, waits until it is ready, and exports
# KUBECONFIG. Sets SERVER_PID and SERVER_PORT. The server runs without a node agent unless
# SERVER_AGENT is set (then pass --node-name, --bridge-name and --cluster-cidr unique to the
# test run).
# Node agents in tests ignore how full the host's disk is: no DiskPressure, no image GC (their
# own tests cover them), so that a test's outcome never depends on the machine's free space.
NODE_DISK_FLAGS=(--eviction-hard "nodefs.available<0%,nodefs.inodesFree<0%"
  --image-gc-high-threshold 100)

start_server() {
  local data=${SERVER_DATA:-$E2E_TMP/data}
  mkdir -p "$data"
  local port=${SERVER_PORT:-0}
  local agent_flags=(--disable-agent)
  if [ -n "${SERVER_AGENT:-}" ]; then agent_flags=("${NODE_DISK_FLAGS[@]}"); fi
  "$SKIFF_BIN" server --data-dir "$data" --port "$port" --bind-address 127.0.0.1 \
    "${agent_flags[@]}" "$@" >>"$E2E_TMP/server.log" 2>&1 &
  SERVER_PID=$!
  export KUBECONFIG=$data/kubeconfig.yaml
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited early:" >&2; tail -n 30 "$E2E_TMP/server.log" >&2; return 1
    fi
    if [ -f "$data/port" ]; then
      SERVER_PORT=$(cat "$data/port")
      if kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" get --raw /readyz \
           >/dev/null 2>&1; then
        return 0
      fi
    fi
    sleep 0.1
  done
  echo "server did not become ready" >&2
  tail -n 30 "$E2E_TMP/server.log" >&2
  return 1
}

# stop_server [signal]: stops the server (TERM by default, KILL for crash tests).
stop_server() {
  local sig=${1:-TERM}
  [ -n "${SERVER_PID:-}" ] || return 0
  kill -s "$sig" "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# kc ARGS...: the real kubectl against the test server, with its own discovery cache.
kc() {
  timeout 60 kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$E2E_TMP/kcache" "$@"
}

fail() {
  echo "FAILED: $*" >&2
  return 1
}

# expect_eq ACTUAL EXPECTED [what]
expect_eq() {
  [ "$1" == "$2" ] || fail "${3:-value}: expected [$2], got [$1]"
}

# expect_contains HAYSTACK NEEDLE
expect_contains() {
  [[ "$1" == *"$2"* ]] || fail "expected output to contain [$2]; got:
$1"
}

expect_not_contains() {
  [[ "$1" != *"$2"* ]] || fail "expected output not to contain [$2]; got:
$1"
}

# expect_fail CMD...: the command must exit non-zero; its combined output is in $OUT.
expect_fail() {
  if OUT=$("$@" 2>&1); then
    fail "expected failure from: $* ; got success:
$OUT"
  fi
  return 0
}

# run_ok CMD...: the command must succeed; its combined output is in $OUT.
run_ok() {
  if ! OUT=$("$@" 2>&1); then
    fail "command failed: $*
$OUT"
  fi
  return 0
}

# wait_until SECONDS CMD...: retries CMD until it succeeds or the deadline passes.
wait_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out after ${limit}s waiting for: $*"
}

# --- Tests with the node agent (real containers) ---

# A 10.x.0.0/16 cluster CIDR no route or address of this host overlaps.
free_cluster_cidr() {
  local x
  for _ in $(seq 1 50); do
    x=$((100 + RANDOM % 150))
    if ! ip -4 route | grep -q "^10\.$x\." && ! ip -4 addr | grep -q " 10\.$x\."; then
      echo "10.$x.0.0/16"
      return 0
    fi
  done
  return 1
}

# write_busybox_archive DIR: a docker-archive directory of a busybox-static image tagged
# docker.io/library/busybox:1.36 (applets as symlinks in /bin).
write_busybox_archive() {
  local dir=$1
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  local a
  for a in sh sleep echo cat true false hostname ls test wget nc httpd mkdir touch rm id env \
           printf head tail grep ps kill dd date sed seq wc stat; do
    ln -sf busybox "$dir/rootfs/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/rootfs/etc/passwd"
  echo 'root:x:0:' >"$dir/rootfs/etc/group"
  (cd "$dir/rootfs" && tar cf ../layer.tar .)
  rm -rf "$dir/rootfs"
  local diff config
  diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(dpkg --print-architecture 2>/dev/null || echo amd64)" "$diff" >"$dir/config.json"
  config=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/$config.json"
  printf '[{"Config":"%s.json","RepoTags":["docker.io/library/busybox:1.36"],"Layers":["layer.tar"]}]' \
    "$config" >"$dir/manifest.json"
}

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]
}

# agent_setup [extra server flags...]: a server with its node agent on a node name, bridge and
# cluster CIDR unique to this run, the busybox image imported; waits for the node to be Ready.
# Sets NODE_NAME, BRIDGE and CLUSTER_CIDR.
agent_setup() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; return 1; }
  local suffix
  suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
  NODE_NAME=e2e-$suffix
  BRIDGE=sk$suffix
  CLUSTER_CIDR=$(free_cluster_cidr)
  export NODE_NAME BRIDGE CLUSTER_CIDR
  write_busybox_archive "$E2E_TMP/busybox"
  "$SKIFF_BIN" image import "$E2E_TMP/busybox" --data-dir "$E2E_TMP/data" >/dev/null
  SERVER_AGENT=1 start_server --node-name "$NODE_NAME" --bridge-name "$BRIDGE" \
    --cluster-cidr "$CLUSTER_CIDR" "$@"
  wait_until 60 node_ready
}

# agent_teardown [extra runc roots...]: deletes every pod (so that containers, addresses and
# rules go through the agents), runs $AGENT_TEARDOWN_HOOK when set, stops the server, then
# removes whatever a failed test left: containers, mounts under $E2E_TMP, the bridges named in
# $E2E_TMP/bridges and $BRIDGE, and their service proxy and DNS tables.
agent_teardown() {
  kc delete pods --all --all-namespaces --grace-period=1 --wait=true >/dev/null 2>&1 || true
  if [ -n "${AGENT_TEARDOWN_HOOK:-}" ]; then "$AGENT_TEARDOWN_HOOK" || true; fi
  stop_server TERM
  local root id bridge
  for root in "$E2E_TMP"/data/agent/runtime/runc "$@"; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do runc --root "$root" delete -f "$id"; done
  done
  grep -o "$E2E_TMP/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  for bridge in "$BRIDGE" $(cat "$E2E_TMP/bridges" 2>/dev/null); do
    ip link del "$bridge" 2>/dev/null || true
    nft delete table ip "skiff-$bridge" 2>/dev/null || true
    nft delete table ip "skiff-dns-$bridge" 2>/dev/null || true
    for d in /sys/fs/cgroup/kubepods-"$bridge" /sys/fs/cgroup/*/kubepods-"$bridge"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  done
}
