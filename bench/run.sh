#!/usr/bin/env bash
# Runs the benchmarks one after another, each printing its figures as ratios against a
# baseline measured in the same run: api (skiff's API against etcd), scheduler (against a
# round-robin binder), rollout (a rolling update against plain pod creates). A benchmark that
# fails does not stop the others; the exit status says whether any failed.
#
# Usage: bench/run.sh [api] [scheduler] [rollout] [pod-start]   (default: all four; `make bench` builds
#                                                    them and runs this)
# Each benchmark's run.sh lists the environment it reads (BUILD_DIR, BENCH_ARGS,
# SCHEDULER_BENCH_ARGS, ROLLOUT_BENCH_ARGS, ...).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(api scheduler rollout pod-start)

failed=()
for name in "${names[@]}"; do
  if [ ! -x "$here/$name/run.sh" ]; then
    echo "no benchmark named $name (want api, scheduler, rollout or pod-start)" >&2
    failed+=("$name")
    continue
  fi
  echo "=== bench/$name"
  if ! "$here/$name/run.sh"; then failed+=("$name"); fi
  echo
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
