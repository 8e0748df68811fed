# A second node on its own network: `skiff agent` runs in a separate network namespace, joined
# to the host by a veth pair, reaches the server on the host's end of it, and runs pods there
# with addresses from its own pod CIDR; kubectl logs and exec reach them through that node's
# kubelet API on its address. Needs root, runc, conmon, the CNI plugins, iproute2, util-linux
# (nsenter) and busybox-static (scripts/install-deps.sh).
#
# The agent enters only the network namespace (nsenter --net): `ip netns exec` would also give
# it a mount namespace with a fresh /sys, without the cgroup hierarchies runc needs.

# free_subnet24: a 192.168.x.0/24 (printed as 192.168.x) no address or route of this host uses.
free_subnet24() {
  local x
  for _ in $(seq 1 50); do
    x=$((RANDOM % 250 + 2))
    if ! ip -4 route | grep -q "192\.168\.$x\." && ! ip -4 addr | grep -q " 192\.168\.$x\."; then
      echo "192.168.$x"
      return 0
    fi
  done
  return 1
}

# The network namespace and the veth pair, named after this run; the server listens on the
# host's end (HOST_IP), the agent's node address is the namespace's end (NODE_IP).
setup_namespaced_node() {
  local suffix net
  suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
  NETNS=skiff-e2e-$suffix
  VETH_HOST=vh$suffix
  VETH_NODE=vn$suffix
  NS_NODE=ns-$suffix
  NS_BRIDGE=sn$suffix
  net=$(free_subnet24) || return 1
  HOST_IP=$net.1
  NODE_IP=$net.2
  export NETNS VETH_HOST VETH_NODE NS_NODE NS_BRIDGE HOST_IP NODE_IP
  printf '%s\n' "$NETNS" >"$E2E_TMP/netns"
  printf '%s\n' "$VETH_HOST" >"$E2E_TMP/veth"
  ip netns add "$NETNS" &&
    ip link add "$VETH_HOST" type veth peer name "$VETH_NODE" &&
    ip link set "$VETH_NODE" netns "$NETNS" &&
    ip addr add "$HOST_IP/24" dev "$VETH_HOST" &&
    ip link set "$VETH_HOST" up &&
    ip -n "$NETNS" link set lo up &&
    ip -n "$NETNS" addr add "$NODE_IP/24" dev "$VETH_NODE" &&
    ip -n "$NETNS" link set "$VETH_NODE" up &&
    ip -n "$NETNS" route add default via "$HOST_IP" || return 1

  agent_setup --kubelet-port 0 --bind-address "$HOST_IP" --tls-san "$HOST_IP" || return 1
  "$SKIFF_BIN" image import "$E2E_TMP/busybox" --data-dir "$E2E_TMP/nsnode" >/dev/null || return 1
  nsenter --net="/run/netns/$NETNS" -- "$SKIFF_BIN" agent "${NODE_DISK_FLAGS[@]}" --server "https://$HOST_IP:$SERVER_PORT" \
    --token "$(cat "$E2E_TMP/data/token")" --node-name "$NS_NODE" --node-ip "$NODE_IP" \
    --data-dir "$E2E_TMP/nsnode" --bridge-name "$NS_BRIDGE" --kubelet-port 0 \
    >>"$E2E_TMP/nsnode.log" 2>&1 &
  echo $! >"$E2E_TMP/nsnode.pid"
  wait_until 60 bash -c "kubectl --kubeconfig '$KUBECONFIG' get node $NS_NODE | grep -q ' Ready '"
}

setup_file() {
  # The runner runs no teardown_file after a failed setup_file.
  setup_namespaced_node || { tail -n 20 "$E2E_TMP/nsnode.log" 2>/dev/null; teardown_file; return 1; }
}

stop_ns_agent() {
  if [ -f "$E2E_TMP/nsnode.pid" ]; then
    local pid
    pid=$(cat "$E2E_TMP/nsnode.pid")
    kill -TERM "$pid" 2>/dev/null || true
    # Not a child of this shell when setup ran elsewhere: wait for it to exit.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$E2E_TMP/nsnode.pid"
  fi
}

teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_ns_agent agent_teardown "$E2E_TMP"/nsnode/agent/runtime/runc
  # The namespace's bridge, rules and pod links go with it; the veth pair with its host end.
  ip netns del "$(cat "$E2E_TMP/netns")" 2>/dev/null || true
  ip link del "$(cat "$E2E_TMP/veth")" 2>/dev/null || true
}

test_node_in_its_own_network_namespace_joins_with_its_address() {
  run_ok kc get node "$NS_NODE" -o wide
  expect_contains "$OUT" "Ready"
  expect_contains "$OUT" "$NODE_IP"
  expect_eq "$(kc get node "$NS_NODE" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')" \
    "$NODE_IP" "InternalIP"
}

test_pod_runs_on_the_namespaced_node_with_an_address_from_its_cidr() {
  local cidr prefix ip
  kc run remote --image=docker.io/library/busybox:1.36 \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$NS_NODE\"}}" \
    -- sh -c 'echo hello from $(hostname); sleep 3600' >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/remote --timeout=5s
  cidr=$(kc get node "$NS_NODE" -o jsonpath='{.spec.podCIDR}')
  [ -n "$cidr" ] || fail "node $NS_NODE has no pod CIDR"
  expect_contains "$cidr" "${CLUSTER_CIDR%.0.0/16}."
  # A /24 from the cluster's /16: the pod's address shares its first three octets.
  prefix=${cidr%.*}.
  ip=$(kc get pod remote -o jsonpath='{.status.podIP}')
  [[ "$ip" == "$prefix"* ]] || fail "pod IP $ip is not in $cidr"
  expect_eq "$(kc get pod remote -o jsonpath='{.status.hostIP}')" "$NODE_IP" "hostIP"
  run_ok kc get pod remote -o wide
  expect_contains "$OUT" "$NS_NODE"
  expect_contains "$OUT" "$ip"
  # The pod's address lives in the node's namespace, on its bridge, which the host lacks.
  ip -n "$NETNS" link show "$NS_BRIDGE" >/dev/null || fail "no bridge $NS_BRIDGE in $NETNS"
  expect_fail ip link show "$NS_BRIDGE"
  ip -n "$NETNS" -4 route | grep -q "${cidr} dev $NS_BRIDGE" ||
    fail "no route to $cidr on $NS_BRIDGE in $NETNS: $(ip -n "$NETNS" -4 route)"
  ip netns exec "$NETNS" busybox ping -c1 -W2 "$ip" >/dev/null || fail "$ip does not answer in $NETNS"

  # logs and exec go through the node's kubelet API on its namespace's address.
  wait_until 20 bash -c "kubectl --kubeconfig '$KUBECONFIG' logs remote | grep -q 'hello from remote'"
  run_ok kc exec remote -- sh -c 'echo exec-ok; cat /etc/hostname'
  expect_contains "$OUT" "exec-ok"
  expect_contains "$OUT" "remote"
  run_ok kc exec remote -- cat /proc/net/fib_trie
  expect_contains "$OUT" "$ip"
  kc delete pod remote --grace-period=1 >/dev/null
  wait_until 30 bash -c "[ -z \"\$(runc --root '$E2E_TMP/nsnode/agent/runtime/runc' list -q)\" ]"
}
