#!/usr/bin/env bash
# The rollout benchmark: a 100-replica Deployment's rolling update against creating 100 plain
# pods, on simulated nodes, with the controllers and the scheduler wired as in `skiff server`
# (bench/rollout/main.cc describes what is timed).
#
# Usage: bench/rollout/run.sh   (needs $BUILD_DIR/bench/rollout/bench_rollout;
#                                `make bench` builds it and runs this)
# Environment:
#   BUILD_DIR            build directory (default: build)
#   ROLLOUT_BENCH_ARGS   extra bench_rollout flags, e.g. "--nodes 100 --repeats 9"
#   TMPDIR               where the server keeps its SQLite store (default /tmp)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
bench=$build/bench/rollout/bench_rollout
read -r -a extra <<<"${ROLLOUT_BENCH_ARGS:-}"

if [ ! -x "$bench" ]; then
  echo "missing $bench: build first (cmake --build $build --target bench_rollout)" >&2
  exit 1
fi
exec "$bench" "${extra[@]}"
