# Bad input gets a Kubernetes Status with the right code and a message a person understands,
# and loses nothing: the server keeps serving and no half-written object appears.

setup_file() {
  start_server
}

teardown_file() {
  stop_server
}

# api METHOD PATH [curl args...]: an authenticated request with the admin certificate; the
# HTTP code is in $CODE and the body in $BODY.
api() {
  local method=$1 path=$2
  shift 2
  local tls=$E2E_TMP/data/tls
  local out
  out=$(curl -sS -o "$E2E_TMP/body" -w '%{http_code}' --max-time 30 -X "$method" \
    --cacert "$tls/ca.crt" --cert "$tls/client-admin.crt" --key "$tls/client-admin.key" \
    "https://127.0.0.1:$SERVER_PORT$path" "$@")
  CODE=$out
  BODY=$(cat "$E2E_TMP/body")
}

expect_status() {
  local code=$1 reason=$2
  expect_eq "$CODE" "$code" "HTTP code (body: $BODY)"
  [ "$(jq -r .kind <<<"$BODY")" == "Status" ] || fail "not a Status: $BODY"
  expect_eq "$(jq -r .reason <<<"$BODY")" "$reason" "reason"
  expect_eq "$(jq -r .code <<<"$BODY")" "$code" "code in body"
}

cm_path=/api/v1/namespaces/default/configmaps

test_unauthenticated_requests_get_401() {
  local code
  code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$SERVER_PORT$cm_path")
  expect_eq "$code" "401"
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer not-a-token' \
    "https://127.0.0.1:$SERVER_PORT$cm_path")
  expect_eq "$code" "401"
  code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$SERVER_PORT/readyz")
  expect_eq "$code" "200"
}

test_oversized_body_is_refused_with_413() {
  head -c $((4 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$E2E_TMP/big"
  api POST "$cm_path" -H 'Content-Type: application/json' --data-binary @"$E2E_TMP/big"
  expect_status 413 RequestEntityTooLarge
  api GET "$cm_path"
  expect_eq "$CODE" "200" "server still serving"
}

test_deep_nesting_is_rejected() {
  local deep
  deep=$(printf '%.0s[' $(seq 1 5000))
  api POST "$cm_path" -H 'Content-Type: application/json' --data-binary "$deep"
  expect_status 400 BadRequest
  expect_contains "$BODY" "nest"
}

test_malformed_json_is_rejected() {
  api POST "$cm_path" -H 'Content-Type: application/json' --data-binary '{"apiVersion":"v1",'
  expect_status 400 BadRequest
}

test_malformed_yaml_and_alias_bomb_are_rejected() {
  api PATCH "$cm_path/x?fieldManager=t" -H 'Content-Type: application/apply-patch+yaml' \
    --data-binary $'a: [b\n  c: :'
  expect_status 400 BadRequest
  cat >"$E2E_TMP/bomb.yaml" <<'EOF'
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
EOF
  api PATCH "$cm_path/bomb?fieldManager=t" -H 'Content-Type: application/apply-patch+yaml' \
    --data-binary @"$E2E_TMP/bomb.yaml"
  expect_status 400 BadRequest
  api GET "$cm_path/bomb"
  expect_eq "$CODE" "404" "nothing half-written"
}

test_wrong_field_type_is_rejected() {
  api POST "$cm_path" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"wt"},"data":{"a":1}}'
  expect_status 400 BadRequest
  expect_contains "$BODY" "cannot unmarshal number"
  api GET "$cm_path/wt"
  expect_eq "$CODE" "404"
}

test_unknown_field_under_strict_is_rejected() {
  api POST "$cm_path?fieldValidation=Strict" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"uf"},"dta":{}}'
  expect_status 400 BadRequest
  expect_contains "$BODY" 'unknown field \"dta\"'
  # Warn (the default) accepts it, drops the field and says so in a Warning header.
  local hdr
  hdr=$(curl -sS -D - -o /dev/null --cacert "$E2E_TMP/data/tls/ca.crt" \
    --cert "$E2E_TMP/data/tls/client-admin.crt" --key "$E2E_TMP/data/tls/client-admin.key" \
    -H 'Content-Type: application/json' -X POST "https://127.0.0.1:$SERVER_PORT$cm_path" \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"uf"},"dta":{}}')
  expect_contains "$hdr" 'unknown field'
}

test_invalid_name_is_rejected_with_invalid() {
  api POST "$cm_path" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}'
  expect_status 422 Invalid
  expect_contains "$BODY" "RFC 1123"
  expect_eq "$(jq -r '.details.causes[0].field' <<<"$BODY")" "metadata.name"
}

test_immutable_selector_change_is_refused() {
  kc create deployment imm2 --image=x:1 >/dev/null
  expect_fail kc patch deploy imm2 --type=merge \
    -p '{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}'
  expect_contains "$OUT" "immutable"
  run_ok kc get deploy imm2 -o jsonpath='{.spec.selector.matchLabels.app}'
  expect_eq "$OUT" "imm2"
}

test_unknown_kind_and_resource_are_not_found() {
  api GET /api/v1/namespaces/default/widgets
  expect_status 404 NotFound
  api POST "$cm_path" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion":"v1","kind":"Widget","metadata":{"name":"w"}}'
  expect_status 400 BadRequest
}

test_stale_resource_version_update_conflicts() {
  kc create configmap rv --from-literal=a=1 >/dev/null
  api PUT "$cm_path/rv" -H 'Content-Type: application/json' \
    --data-binary '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"rv","resourceVersion":"1"},"data":{"a":"2"}}'
  expect_status 409 Conflict
  run_ok kc get cm rv -o jsonpath='{.data.a}'
  expect_eq "$OUT" "1"
}

test_watch_ends_at_timeout_seconds_with_initial_events() {
  kc create configmap wt1 --from-literal=a=1 >/dev/null
  local start=$SECONDS
  api GET "$cm_path?watch=true&resourceVersion=0&timeoutSeconds=1"
  expect_eq "$CODE" "200"
  expect_contains "$BODY" '"type":"ADDED"'
  expect_contains "$BODY" '"name":"wt1"'
  [ $((SECONDS - start)) -lt 10 ] || fail "watch did not end at its timeout"
}

test_invalid_watch_resource_version_is_bad_request() {
  api GET "$cm_path?watch=true&resourceVersion=abc"
  expect_status 400 BadRequest
}

test_bad_selectors_are_bad_requests() {
  api GET "$cm_path?labelSelector=a%20in%20(b"
  expect_status 400 BadRequest
  api GET "$cm_path?fieldSelector=spec.bogus%3Dx"
  expect_status 400 BadRequest
}

test_protobuf_garbage_is_rejected() {
  printf 'k8s\0\x0a\xff\xff\xff' >"$E2E_TMP/pb"
  api POST "$cm_path" -H 'Content-Type: application/vnd.kubernetes.protobuf' \
    --data-binary @"$E2E_TMP/pb"
  expect_status 400 BadRequest
  api GET /readyz
  expect_eq "$CODE" "200"
}
