#!/usr/bin/env bash
# The pod start benchmark: pods started through `skiff server` and a separate `skiff agent`
# (API POST -> scheduler -> agent: image present, overlay rootfs, CNI, runc under conmon) against
# a same-run baseline: a script starting the same container from prepared bundles with the same
# CNI ADD (bridge + host-local + portmap, loopback) and `runc run -d`, one container at a time as the
# skiff side starts one pod at a time. Also the memory of the agent with the pods running.
#
# Usage: bench/pod-start/run.sh   (needs root, $BUILD_DIR/skiff and
#                                  $BUILD_DIR/bench/pod-start/bench_pod_start; `make bench`
#                                  builds them and runs this)
# Environment:
#   BUILD_DIR        build directory (default: build)
#   POD_START_PODS   pods (and baseline containers) to start (default 100)
#   TMPDIR           where the data dirs live (default /tmp)
#   POD_START_SMAPS  if set, a file to copy the agent's /proc/PID/smaps into (steady state)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
skiff=$build/skiff
driver=$build/bench/pod-start/bench_pod_start
pods=${POD_START_PODS:-100}
cni=/usr/lib/cni

for f in "$skiff" "$driver"; do
  [ -x "$f" ] || { echo "missing $f: build first (cmake --build $build --target skiff bench_pod_start)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench/pod-start needs root (runc, network namespaces)" >&2; exit 1; }
for t in runc ip kubectl "$cni/bridge" "$cni/host-local" "$cni/loopback" /bin/busybox; do
  command -v "$t" >/dev/null || { echo "missing $t (scripts/install-deps.sh test)" >&2; exit 1; }
done

# shellcheck source=../../tests/e2e/lib.sh
source "$root/tests/e2e/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-pod-start.XXXXXX")
suffix=$(printf '%06x' $(( ((RANDOM << 15) | RANDOM) & 0xffffff )))
cidr=$(free_cluster_cidr)
prefix=${cidr%.0.0/16}
base_bridge=bb$suffix
node=bench-$suffix
agent_bridge=sb$suffix
server_pid=
agent_pid=

now_ns() { date +%s%N; }

cleanup() {
  set +e
  if [ -n "$server_pid" ] && [ -f "$tmp/server/kubeconfig.yaml" ]; then
    timeout 120 kubectl --kubeconfig "$tmp/server/kubeconfig.yaml" --cache-dir "$tmp/kcache" \
      delete pods -l app=bench-pod-start --grace-period=1 --wait=true >/dev/null 2>&1
  fi
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  local r id
  for r in "$tmp/base/runc" "$tmp/agent/agent/runtime/runc"; do
    [ -d "$r" ] || continue
    for id in $(runc --root "$r" list -q 2>/dev/null); do runc --root "$r" delete -f "$id" >/dev/null 2>&1; done
  done
  for id in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^bp$suffix-"); do ip netns del "$id"; done
  grep -o "$tmp/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link del "$base_bridge" 2>/dev/null
  ip link del "$agent_bridge" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

percentiles() {  # stdin: one number per line -> "p50 p99"
  sort -n | awk '{v[NR]=$1} END {i50=int(0.5*(NR-1)+0.5)+1; i99=int(0.99*(NR-1)+0.5)+1; printf "%.1f %.1f\n", v[i50], v[i99]}'
}

# --- the image, for both sides ---
write_busybox_archive "$tmp/busybox"
mkdir -p "$tmp/base/rootfs"
tar -xf "$tmp/busybox/layer.tar" -C "$tmp/base/rootfs"

# --- baseline: prepared bundles, then per container: netns + CNI ADD + runc run -d ---
echo "# baseline: preparing $pods bundles"
(cd "$tmp/base" && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"sleep", "3600"/' "$tmp/base/config.json"
# The agent's network configuration (src/agent/network/cni.cc): bridge with masquerading and
# hairpin, host-local IPAM, then portmap chained on its result; loopback on its own.
cat >"$tmp/base/bridge.conf" <<CONF
{"cniVersion":"1.0.0","name":"bench-$suffix","type":"bridge","bridge":"$base_bridge","isGateway":true,
 "ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"$prefix.250.0/24","gateway":"$prefix.250.1"}]],
         "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$tmp/base/ipam"}}
CONF
echo '{"cniVersion":"1.0.0","name":"lo","type":"loopback"}' >"$tmp/base/lo.conf"
for i in $(seq 0 $((pods - 1))); do
  b=$tmp/base/bundles/c$i
  mkdir -p "$b"
  sed "s#\"type\": \"network\"#\"type\": \"network\", \"path\": \"/var/run/netns/bp$suffix-$i\"#; s#\"path\": \"rootfs\"#\"path\": \"$tmp/base/rootfs\"#" \
    "$tmp/base/config.json" >"$b/config.json"
done
echo "# baseline: starting $pods containers one at a time"
: >"$tmp/base.ms"
for i in $(seq 0 $((pods - 1))); do
  t0=$(now_ns)
  ip netns add "bp$suffix-$i"
  result=$(CNI_COMMAND=ADD CNI_CONTAINERID="bp$suffix-$i" CNI_NETNS="/var/run/netns/bp$suffix-$i" \
    CNI_IFNAME=eth0 CNI_PATH=$cni "$cni/bridge" <"$tmp/base/bridge.conf")
  printf '{"cniVersion":"1.0.0","name":"bench-%s","type":"portmap","capabilities":{"portMappings":true},"snat":true,"prevResult":%s}' \
    "$suffix" "$result" | CNI_COMMAND=ADD CNI_CONTAINERID="bp$suffix-$i" \
    CNI_NETNS="/var/run/netns/bp$suffix-$i" CNI_IFNAME=eth0 CNI_PATH=$cni "$cni/portmap" >/dev/null
  CNI_COMMAND=ADD CNI_CONTAINERID="bp$suffix-$i" CNI_NETNS="/var/run/netns/bp$suffix-$i" \
    CNI_IFNAME=lo CNI_PATH=$cni "$cni/loopback" <"$tmp/base/lo.conf" >/dev/null
  runc --root "$tmp/base/runc" run -d --bundle "$tmp/base/bundles/c$i" "bp$suffix-$i" \
    </dev/null >/dev/null 2>&1
  t1=$(now_ns)
  echo "$(( (t1 - t0) / 1000 ))" | awk '{printf "%.1f\n", $1/1000}' >>"$tmp/base.ms"
done
read -r base_p50 base_p99 < <(percentiles <"$tmp/base.ms")
echo "# baseline: p50 $base_p50 ms, p99 $base_p99 ms"
for i in $(seq 0 $((pods - 1))); do
  runc --root "$tmp/base/runc" delete -f "bp$suffix-$i" >/dev/null 2>&1 || true
  CNI_COMMAND=DEL CNI_CONTAINERID="bp$suffix-$i" CNI_NETNS="/var/run/netns/bp$suffix-$i" \
    CNI_IFNAME=eth0 CNI_PATH=$cni "$cni/bridge" <"$tmp/base/bridge.conf" >/dev/null 2>&1 || true
  ip netns del "bp$suffix-$i" 2>/dev/null || true
done
ip link del "$base_bridge" 2>/dev/null || true

# --- skiff: a server without its own agent, and a separate `skiff agent` ---
mkdir -p "$tmp/server" "$tmp/agent"
"$skiff" server --data-dir "$tmp/server" --port 0 --bind-address 127.0.0.1 --disable-agent \
  --cluster-cidr "$cidr" >"$tmp/server.log" 2>&1 &
server_pid=$!
export KUBECONFIG=$tmp/server/kubeconfig.yaml
kc() { timeout 60 kubectl --kubeconfig "$KUBECONFIG" --cache-dir "$tmp/kcache" "$@"; }
for _ in $(seq 1 600); do
  [ -f "$tmp/server/port" ] && kc get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.1
done
port=$(cat "$tmp/server/port")
"$skiff" image import "$tmp/busybox" --data-dir "$tmp/agent" >/dev/null
"$skiff" agent --eviction-hard "nodefs.available<0%,nodefs.inodesFree<0%" \
  --image-gc-high-threshold 100 --server "https://127.0.0.1:$port" --token "$(cat "$tmp/server/token")" \
  --node-name "$node" --data-dir "$tmp/agent" --bridge-name "$agent_bridge" \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 600); do
  [ "$(kc get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ] && break
  sleep 0.1
done
# The default ServiceAccount must exist before pods can be created.
for _ in $(seq 1 300); do kc get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
echo "# skiff: starting $pods pods one at a time"
"$driver" --kubeconfig "$KUBECONFIG" --pods "$pods" >"$tmp/skiff.out"
awk '$1 == "pod" {print $3}' "$tmp/skiff.out" >"$tmp/skiff.ms"
read -r skiff_p50 skiff_p99 < <(percentiles <"$tmp/skiff.ms")

# Memory with the pods running: the agent's RSS, and the PSS of its container monitors.
# The agent's RSS is taken twice: right after the last pod started, and once the start burst
# is over (15 s later: past one housekeeping pass, which gives freed heap memory back);
# the target is judged on the second, the agent's steady state with the pods running.
agent_rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
sleep 15
agent_settled_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
agent_anon_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$agent_pid/status")
agent_file_kb=$(awk '/^RssFile:/ {print $2}' "/proc/$agent_pid/status")
[ -z "${POD_START_SMAPS:-}" ] || cp "/proc/$agent_pid/smaps" "$POD_START_SMAPS"
monitors=0
monitors_pss_kb=0
for p in $(pgrep -f "conmon.*$tmp/agent" || true); do
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  monitors=$((monitors + 1))
  monitors_pss_kb=$((monitors_pss_kb + ${pss:-0}))
done
server_rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
p50_ratio=$(ratio "$skiff_p50" "$base_p50")
echo
echo "== results ($pods pods started one at a time; baseline = the agent's CNI ADD + runc run -d from prepared bundles)"
printf '%-44s %10s %10s %10s\n' figure skiff baseline skiff/base
printf '%-44s %10s %10s %10s\n' "start latency p50, ms (lower)" "$skiff_p50" "$base_p50" "$p50_ratio"
printf '%-44s %10s %10s %10s\n' "start latency p99, ms (lower)" "$skiff_p99" "$base_p99" "$(ratio "$skiff_p99" "$base_p99")"
echo
echo "== memory with $pods pods running"
printf '%-44s %10s\n' "skiff agent RSS after the last start, MiB" "$(mib "$agent_rss_kb")"
printf '%-44s %10s\n' "skiff agent RSS 15 s later, MiB" "$(mib "$agent_settled_kb")"
printf '%-44s %10s\n' "  of which anonymous (heap, stacks), MiB" "$(mib "$agent_anon_kb")"
printf '%-44s %10s\n' "  of which mapped files (binary, libraries)" "$(mib "$agent_file_kb")"
printf '%-44s %10s\n' "container monitors (conmon): count" "$monitors"
printf '%-44s %10s\n' "container monitors: total PSS, MiB" "$(mib "$monitors_pss_kb")"
printf '%-44s %10s\n' "agent RSS + monitors PSS, MiB" "$(mib $((agent_settled_kb + monitors_pss_kb)))"
printf '%-44s %10s\n' "skiff server (API, controllers, scheduler) RSS, MiB" "$(mib "$server_rss_kb")"
echo
echo "== summary (targets: p50 <= 1.5x the baseline; the agent itself < 20 MiB)"
printf '%-44s %10s   %s\n' "p50 skiff/baseline <= 1.5" "$p50_ratio" \
  "$(awk -v r="$p50_ratio" 'BEGIN { print (r != "n/a" && r <= 1.5) ? "met" : "MISSED" }')"
printf '%-44s %10s   %s\n' "agent RSS (steady) < 20 MiB" "$(mib "$agent_settled_kb")" \
  "$(awk -v k="$agent_settled_kb" 'BEGIN { print (k < 20 * 1024) ? "met" : "MISSED" }')"
