# Nothing acknowledged is lost: restarts and kill -9 keep every write that returned success,
# and watches resume across a restart from the revision a client last saw.

# Each test runs its own server in its own data dir, since each restarts it.

test_watch_resumes_after_server_restart() {
  SERVER_DATA=$E2E_TMP/resume start_server
  kc create configmap before-restart --from-literal=a=1 >/dev/null
  local rv
  rv=$(kc get cm before-restart -o jsonpath='{.metadata.resourceVersion}')
  stop_server TERM
  SERVER_DATA=$E2E_TMP/resume start_server
  kc create configmap after-restart --from-literal=b=2 >/dev/null
  # A client resuming its watch from the last revision it saw gets exactly what came after.
  run_ok kc get --raw "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=$rv&timeoutSeconds=2"
  echo "$OUT" >"$E2E_TMP/resume.out"
  expect_contains "$OUT" '"type":"ADDED"'
  expect_contains "$OUT" '"name":"after-restart"'
  if grep -q "before-restart" "$E2E_TMP/resume.out"; then
    fail "watch from $rv replayed an older event: $(cat "$E2E_TMP/resume.out")"
  fi
}

test_kill_9_during_concurrent_writes_loses_nothing_acknowledged() {
  SERVER_DATA=$E2E_TMP/crash start_server
  kc create namespace crash >/dev/null
  : >"$E2E_TMP/acked"
  local pids=()
  for w in 1 2 3 4 5 6; do
    (
      for i in $(seq 1 200); do
        if kc create configmap "w$w-$i" -n crash --from-literal=v="$w-$i" >/dev/null 2>&1; then
          echo "w$w-$i" >>"$E2E_TMP/acked"
        fi
      done
    ) &
    pids+=($!)
  done
  wait_until 60 bash -c "[ \$(wc -l <'$E2E_TMP/acked') -ge 30 ]"
  stop_server KILL
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  local acked
  acked=$(wc -l <"$E2E_TMP/acked")
  SERVER_DATA=$E2E_TMP/crash start_server
  run_ok kc get cm -n crash -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
  local missing=0
  while read -r name; do
    grep -qx "$name" <<<"$OUT" || { echo "lost acknowledged write: $name" >&2; missing=$((missing + 1)); }
  done <"$E2E_TMP/acked"
  expect_eq "$missing" "0" "acknowledged writes lost (of $acked)"
  # Values survive too, and the store keeps accepting writes with higher revisions.
  local first
  first=$(head -n 1 "$E2E_TMP/acked")
  run_ok kc get cm "$first" -n crash -o jsonpath='{.data.v}'
  expect_eq "$OUT" "${first#w}"
  run_ok kc create configmap after-crash -n crash --from-literal=a=1
}
