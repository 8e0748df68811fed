# Services on real nodes: every node agent runs the service proxy (nftables) and the cluster
# DNS for its pods. Two busybox web pods behind `kubectl expose`, reached from a client pod by
# ClusterIP, by name and through the search path, and from the host through a NodePort; only
# ready pods (readinessProbe) take traffic. A joined `skiff agent` serves its own pods too.
# Needs root, runc, conmon, the CNI plugins, nftables and busybox-static
# (scripts/install-deps.sh).

BUSYBOX=docker.io/library/busybox:1.36

setup_file() {
  # A service CIDR of this run's own, apart from every cluster CIDR free_cluster_cidr picks
  # (10.100-249.x), so that parallel runs never share a ClusterIP in this host's rules.
  SERVICE_CIDR="10.$((250 + RANDOM % 5)).$((RANDOM % 256)).0/24"
  DNS_IP="${SERVICE_CIDR%.0/24}.10"
  export SERVICE_CIDR DNS_IP
  agent_setup --service-cidr "$SERVICE_CIDR"
  kc apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: $BUSYBOX
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
          failureThreshold: 1
EOF
  kc expose deploy web --port=80 --target-port=8080 >/dev/null
  kc run client --image=$BUSYBOX -- sleep 3600 >/dev/null
  wait_until 90 kc wait --for=condition=Ready pod/client --timeout=5s
  wait_until 90 web_pods_running
}

stop_joined_agent() {
  if [ -f "$E2E_TMP/joined.pid" ]; then kill -TERM "$(cat "$E2E_TMP/joined.pid")" 2>/dev/null || true; fi
}

# Besides what agent_teardown removes: the nftables tables of agents that could not stop.
teardown_file() {
  AGENT_TEARDOWN_HOOK=stop_joined_agent agent_teardown "$E2E_TMP"/joined/agent/runtime/runc
  local bridge
  for bridge in "$BRIDGE" $(cat "$E2E_TMP/bridges" 2>/dev/null); do
    nft delete table ip "skiff-$bridge" 2>/dev/null || true
    nft delete table ip "skiff-dns-$bridge" 2>/dev/null || true
  done
}

web_pods() { kc get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }

web_pods_running() {
  [ "$(kc get pods -l app=web -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c Running)" -eq 2 ]
}

# in_pod POD CMD...: runs CMD in the pod's container.
in_pod() { kc exec "$1" -- "${@:2}"; }

# set_ready POD true|false: makes the pod's readiness probe pass or fail.
set_ready() {
  if [ "$2" == true ]; then in_pod "$1" touch /tmp/ready; else in_pod "$1" rm -f /tmp/ready; fi
}

# The web endpoints as "<pod>=<ready>" words, sorted.
web_endpoints() {
  kc get endpointslices -l kubernetes.io/service-name=web \
    -o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name}={.conditions.ready}{"\n"}{end}' |
    sort | tr '\n' ' '
}

# only_ready POD: makes POD the only ready web pod and waits until the Service says so.
only_ready() {
  local p want=""
  for p in $(web_pods); do
    if [ "$p" == "$1" ]; then set_ready "$p" true; else set_ready "$p" false; fi
  done
  for p in $(web_pods); do
    if [ "$p" == "$1" ]; then want+="$p=true "; else want+="$p=false "; fi
  done
  wait_until 30 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name}={.conditions.ready}{\"\\n\"}{end}' | sort | tr '\\n' ' ')\" == '$want' ]"
}

# fetch_from_client N URL: N requests from the client pod; the answers, one per line.
fetch_from_client() {
  in_pod client sh -c "for i in \$(seq $1); do wget -qO- '$2' || echo FAILED; done"
}

# all_from N URL POD: N requests from the client all answered by POD.
all_from() {
  local out
  out=$(fetch_from_client "$1" "$2")
  [ "$(echo "$out" | wc -l)" -eq "$1" ] && [ "$(echo "$out" | sort -u)" == "$3" ]
}

first_web_pod() { web_pods | head -n1; }
second_web_pod() { web_pods | tail -n1; }

test_kube_dns_service_has_the_tenth_service_address() {
  expect_eq "$(kc get svc -n kube-system kube-dns -o jsonpath='{.spec.clusterIP}')" "$DNS_IP" \
    "kube-dns clusterIP"
  run_ok kc get svc -n kube-system -l k8s-app=kube-dns -o name
  expect_eq "$OUT" "service/kube-dns"
  run_ok in_pod client cat /etc/resolv.conf
  expect_contains "$OUT" "nameserver $DNS_IP"
  expect_contains "$OUT" "search default.svc.cluster.local svc.cluster.local cluster.local"
}

test_cluster_ip_name_and_search_path_reach_the_service() {
  local a ip
  a=$(first_web_pod)
  only_ready "$a"
  ip=$(kc get svc web -o jsonpath='{.spec.clusterIP}')
  expect_contains "$ip" "${SERVICE_CIDR%.0/24}."
  wait_until 30 all_from 1 "http://$ip/" "$a"
  run_ok fetch_from_client 1 "http://$ip/"
  expect_eq "$OUT" "$a" "answer by ClusterIP"
  run_ok fetch_from_client 1 "http://web.default.svc.cluster.local/"
  expect_eq "$OUT" "$a" "answer by name"
  run_ok fetch_from_client 1 "http://web/"
  expect_eq "$OUT" "$a" "answer through the search path"
  run_ok fetch_from_client 1 "http://web.default/"
  expect_eq "$OUT" "$a" "answer by <svc>.<ns>"
}

test_dns_answers_a_srv_and_nxdomain() {
  local ip
  ip=$(kc get svc web -o jsonpath='{.spec.clusterIP}')
  run_ok in_pod client busybox nslookup web.default.svc.cluster.local
  expect_contains "$OUT" "Address: $ip"
  run_ok in_pod client busybox nslookup -type=srv web.default.svc.cluster.local
  expect_contains "$OUT" "80 web.default.svc.cluster.local"
  run_ok in_pod client busybox nslookup kube-dns.kube-system.svc.cluster.local
  expect_contains "$OUT" "Address: $DNS_IP"
  expect_fail in_pod client busybox nslookup nothing-here.default.svc.cluster.local
  expect_contains "$OUT" "NXDOMAIN"
}

test_node_port_answers_from_the_host() {
  local a node_ip port
  a=$(first_web_pod)
  only_ready "$a"
  kc expose deploy web --name web-np --type=NodePort --port=80 --target-port=8080 >/dev/null
  port=$(kc get svc web-np -o jsonpath='{.spec.ports[0].nodePort}')
  node_ip=$(kc get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
  [ -n "$port" ] && [ -n "$node_ip" ] || fail "no nodePort ($port) or node IP ($node_ip)"
  wait_until 30 curl -sf --max-time 3 "http://$node_ip:$port/"
  run_ok curl -sf --max-time 3 "http://$node_ip:$port/"
  expect_eq "$OUT" "$a" "answer through the NodePort"
  run_ok kc delete svc web-np
  wait_until 30 bash -c "! curl -sf --max-time 3 http://$node_ip:$port/"
}

test_only_ready_pods_answer_and_traffic_follows_readiness() {
  local a b
  a=$(first_web_pod)
  b=$(second_web_pod)
  [ "$a" != "$b" ] || fail "want two web pods, got $a"
  only_ready "$a"
  wait_until 30 all_from 5 http://web/ "$a"
  run_ok all_from 40 http://web/ "$a"
  # Flip: b becomes the only ready pod.
  only_ready "$b"
  wait_until 30 all_from 5 http://web/ "$b"
  run_ok all_from 40 http://web/ "$b"
  # Both ready: both answer.
  set_ready "$a" true
  wait_until 30 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{range .items[*].endpoints[*]}{.conditions.ready}{\"\\n\"}{end}' | grep -c true)\" -eq 2 ]"
  wait_until 60 bash -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG' exec client -- sh -c 'for i in \$(seq 20); do wget -qO- http://web/; done' | sort -u | wc -l)\" -eq 2 ]"
}

test_skiff_agent_serves_its_own_pods() {
  local suffix node bridge data pid a
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
  a=$(first_web_pod)
  only_ready "$a"
  kc run remote --image=$BUSYBOX \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"$node\"}}" -- sleep 3600 >/dev/null
  wait_until 60 kc wait --for=condition=Ready pod/remote --timeout=5s
  # The joined agent learned the cluster DNS address from the kube-dns Service.
  run_ok in_pod remote cat /etc/resolv.conf
  expect_contains "$OUT" "nameserver $DNS_IP"
  wait_until 30 in_pod remote wget -qO- http://web.default.svc.cluster.local/
  run_ok in_pod remote wget -qO- http://web.default.svc.cluster.local/
  expect_eq "$OUT" "$a" "answer on the joined node"
  run_ok nft list table ip "skiff-$bridge"
  run_ok nft list table ip "skiff-dns-$bridge"
  run_ok kc delete pod remote --grace-period=1
  kill -TERM "$pid"
  wait "$pid" || true
  rm -f "$E2E_TMP/joined.pid"
  # A stopped agent leaves no rules behind.
  expect_fail nft list table ip "skiff-$bridge"
  expect_fail nft list table ip "skiff-dns-$bridge"
  run_ok kc delete node "$node"
}
