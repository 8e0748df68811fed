# `skiff cleanup`: after a server with its node agent is killed (kill -9), its containers keep
# running under conmon and its mounts, namespaces, bridge and rules stay; cleanup removes them
# all, keeps the images and the store, and is idempotent. Needs root, runc, conmon, the CNI
# plugins, nft and busybox-static (scripts/install-deps.sh).

setup_file() {
  agent_setup --kubelet-port 0
}

teardown_file() {
  agent_teardown
}

DATA() { echo "$E2E_TMP/data"; }

runc_containers() {
  local root
  root=$(DATA)/agent/runtime/runc
  [ -d "$root" ] || return 0
  runc --root "$root" list -q 2>/dev/null
}

mounts_under_data() {
  grep -F " $(DATA)/" /proc/self/mountinfo || true
}

# Processes of conmon watching a container under the data dir.
our_conmons() {
  local f data
  data=$(DATA)
  for f in /proc/[0-9]*/cmdline; do
    tr '\0' ' ' <"$f" 2>/dev/null | grep -q "^[^ ]*conmon .*$data/" && echo "${f%/cmdline}"
  done
  return 0
}

test_cleanup_removes_what_a_killed_server_left() {
  local host_port=$((20000 + RANDOM % 10000))
  kc run sleeper --image=docker.io/library/busybox:1.36 -- sh -c 'sleep 3600' >/dev/null
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: httpd
    image: docker.io/library/busybox:1.36
    command: [httpd, -f, -p, '8080']
    ports:
    - containerPort: 8080
      hostPort: $host_port
  - name: side
    image: docker.io/library/busybox:1.36
    command: [sleep, '3600']
EOF
  wait_until 60 kc wait --for=condition=Ready pod/sleeper pod/web --timeout=5s

  # What the agent set up is there.
  [ "$(runc_containers | wc -l)" -ge 3 ] || fail "expected 3 runc containers, got: $(runc_containers)"
  [ -n "$(mounts_under_data)" ] || fail "no mounts under the data dir"
  ip link show "$BRIDGE" >/dev/null || fail "no bridge $BRIDGE"
  [ -n "$(ls "$(DATA)/agent/netns")" ] || fail "no pod network namespaces"
  # The bridge plugin's masquerade rules carry the network (= bridge) name in their comment.
  # (Retried: a dump taken while another process changes the ruleset can fail.)
  wait_until 10 bash -c "iptables-save | grep -qF '$BRIDGE'" || fail "no CNI iptables rules for $BRIDGE"

  # The server dies without cleaning anything; the containers keep running under conmon.
  stop_server KILL
  [ "$(runc_containers | wc -l)" -ge 3 ] || fail "containers did not survive the server"
  [ -n "$(our_conmons)" ] || fail "no conmon processes left"

  run_ok "$SKIFF_BIN" cleanup --data-dir "$(DATA)" --bridge-name "$BRIDGE"
  echo "$OUT"
  expect_contains "$OUT" "removed container"
  expect_contains "$OUT" "removed mount $(DATA)/"
  expect_contains "$OUT" "removed bridge $BRIDGE"
  expect_contains "$OUT" "removed network namespaces of pod"
  expect_contains "$OUT" "removed nftables table ip skiff-"

  # Nothing is left.
  expect_eq "$(runc_containers)" "" "runc containers"
  expect_eq "$(mounts_under_data)" "" "mounts under the data dir"
  expect_fail ip link show "$BRIDGE"
  expect_eq "$(ls -A "$(DATA)/agent/netns" 2>/dev/null || true)" "" "pod network namespaces"
  expect_eq "$(our_conmons)" "" "conmon processes"
  expect_eq "$(iptables-save | grep -cF "$BRIDGE" || true)" 0 "CNI iptables rules of $BRIDGE"
  expect_fail nft list table ip "skiff-$BRIDGE"
  expect_fail nft list table ip "skiff-dns-$BRIDGE"
  expect_eq "$(iptables-save | grep -c -- "--dport $host_port " || true)" 0 "rules for host port $host_port"

  # Images and the store stay.
  run_ok "$SKIFF_BIN" image ls --data-dir "$(DATA)"
  expect_contains "$OUT" "busybox"
  [ -f "$(DATA)/state.db" ] || fail "the store is gone"

  # A second run finds nothing.
  run_ok "$SKIFF_BIN" cleanup --data-dir "$(DATA)" --bridge-name "$BRIDGE"
  expect_contains "$OUT" "nothing to clean up"

  # The node comes back on the cleaned host and runs its pods again.
  SERVER_AGENT=1 start_server --node-name "$NODE_NAME" --bridge-name "$BRIDGE" \
    --cluster-cidr "$CLUSTER_CIDR" --kubelet-port 0
  wait_until 60 node_ready
  wait_until 90 kc wait --for=condition=Ready pod/sleeper --timeout=5s
  kc delete pods --all --grace-period=1 >/dev/null
  stop_server TERM

  # --all takes the images and the store too.
  run_ok "$SKIFF_BIN" cleanup --data-dir "$(DATA)" --bridge-name "$BRIDGE" --all
  expect_eq "$(ls -A "$(DATA)")" "" "data dir after --all"
  expect_fail ip link show "$BRIDGE"
}

test_cleanup_rejects_bad_flags() {
  expect_fail "$SKIFF_BIN" cleanup --data-dir /
  expect_contains "$OUT" "absolute path other than /"
  expect_fail "$SKIFF_BIN" cleanup --no-such-flag
  expect_contains "$OUT" "unknown flag"
  run_ok "$SKIFF_BIN" cleanup --data-dir "$E2E_TMP/never-used" --bridge-name "skno$$"
  expect_contains "$OUT" "nothing to clean up"
}
