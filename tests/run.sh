#!/usr/bin/env bash
# Runs every test: the unit tests (sanitizer build) and the end-to-end tests (real server,
# real kubectl). Prints a line per failure and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
passed=0
failed=0

unit_dir=${SKIFF_UNIT_DIR:-build-asan/tests}
for bin in "$unit_dir"/unit_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  out=$("$bin" --gtest_brief=1 2>&1)
  rc=$?
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?.*/\1/p' <<<"$out" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\?, listed below.*/\1/p' <<<"$out" | tail -n 1)
  p=${p:-0}
  f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1  # crashed or sanitizer report: count the binary as one failure
    echo "FAIL $name (exit $rc)"
    tail -n 40 <<<"$out"
  elif [ "$f" -gt 0 ]; then
    grep '^\[  FAILED  \]' <<<"$out" | sed "s/^/FAIL $name: /"
    grep -B2 -A12 'Failure$' <<<"$out" | head -n 80
  fi
  echo "unit $name: $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
done

export SKIFF_BIN=${SKIFF_BIN:-$root/build/skiff}
for file in tests/e2e/*_test.sh; do
  [ -f "$file" ] || continue
  out=$(bash tests/e2e/runner.sh "$file" 2>&1)
  p=$(grep -c '^PASS ' <<<"$out")
  f=$(grep -c '^FAIL ' <<<"$out")
  grep -v '^PASS ' <<<"$out" | sed 's/^/  /' | grep -q . && grep -v '^PASS ' <<<"$out"
  echo "e2e $(basename "$file"): $p passed, $f failed"
  passed=$((passed + p))
  failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
