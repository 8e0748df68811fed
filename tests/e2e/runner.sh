#!/usr/bin/env bash
# Runs one end-to-end test file: setup_file (if defined), every test_* function in its own
# subshell with errexit, then teardown_file. Prints "PASS <name>" or "FAIL <name>" plus the
# tail of the failing test's output.
set -uo pipefail
file=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck disable=SC1090
source "$file"
e2e_init "$(basename "$file" .sh)"
trap 'e2e_cleanup' EXIT
if declare -F setup_file >/dev/null; then
  if ! setup_file >"$E2E_TMP/setup.log" 2>&1; then
    for t in $(declare -F | awk '{print $3}' | grep '^test_'); do echo "FAIL $t (setup failed)"; done
    tail -n 40 "$E2E_TMP/setup.log"
    exit 1
  fi
fi
for t in $(declare -F | awk '{print $3}' | grep '^test_'); do
  # E2E_ONLY=<regex> runs a subset while debugging.
  if [ -n "${E2E_ONLY:-}" ] && ! [[ "$t" =~ $E2E_ONLY ]]; then continue; fi
  log="$E2E_TMP/$t.log"
  # A test that restarts the server owns the new process: it is stopped when the test ends,
  # and later tests keep using the file's own server.
  E2E_FILE_SERVER_PID=${SERVER_PID:-}
  # Not in an `if` condition: bash ignores errexit there, even inside the subshell.
  (
    set -eE -o pipefail
    trap 'echo "failed at line $LINENO: $BASH_COMMAND" >&2' ERR
    trap '[ "${SERVER_PID:-}" != "$E2E_FILE_SERVER_PID" ] && stop_server KILL' EXIT
    "$t"
  ) >"$log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "PASS $t"
  else
    echo "FAIL $t"
    tail -n 30 "$log" | sed 's/^/    /'
  fi
done
if declare -F teardown_file >/dev/null; then teardown_file >/dev/null 2>&1 || true; fi
