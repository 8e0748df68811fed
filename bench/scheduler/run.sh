#!/usr/bin/env bash
# The scheduler benchmark: skiff's scheduler against a trivial round-robin binder, both
# placing pods on 5,000 simulated nodes through the same API in one process, printed as
# scheduler/binder ratios with the targets (bench/scheduler/main.cc describes the phases).
#
# Usage: bench/scheduler/run.sh   (needs $BUILD_DIR/bench/scheduler/bench_scheduler;
#                                  `make bench` builds it and runs this)
# Environment:
#   BUILD_DIR              build directory (default: build)
#   SCHEDULER_BENCH_ARGS   extra bench_scheduler flags, e.g. "--pods 20000 --https"
#   TMPDIR                 where the servers keep their SQLite stores (default /tmp); the
#                          store fsyncs every commit, so a slow disk slows both sides alike
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
bench=$build/bench/scheduler/bench_scheduler
read -r -a extra <<<"${SCHEDULER_BENCH_ARGS:-}"

if [ ! -x "$bench" ]; then
  echo "missing $bench: build first (cmake --build $build --target bench_scheduler)" >&2
  exit 1
fi
# With --https every watch and pooled connection is a file.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  ulimit -n 4096 2>/dev/null || echo "warning: cannot raise the open-file limit to 4096" >&2
fi
exec "$bench" "${extra[@]}"
