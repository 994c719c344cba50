#!/usr/bin/env bash
# Smoke run of the fuzz targets: build them, run ops_sim, select and hostile briefly (they must
# find nothing), and run canary and hostile_canary until each finds its planted bug (they must,
# within CANARY_SECS).
#
#   bash fuzz/smoke.sh                 # from anywhere
#   SMOKE_SECS=60 bash fuzz/smoke.sh   # longer runs of ops_sim and select
#
# Works on stable Rust: `--sanitizer none` needs no nightly flag. Installs cargo-fuzz if missing.
# Each run starts from an empty corpus in a temporary folder, so the result does not depend on
# what earlier local fuzzing left in fuzz/corpus. Exit code 0 when all went as expected.
set -euo pipefail

SMOKE_SECS=${SMOKE_SECS:-20}   # ops_sim and select: this long each
CANARY_SECS=${CANARY_SECS:-60} # canary: must find its bug within this
CARGO_FUZZ_VERSION=0.13.2

cd "$(dirname "$0")"
started=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

echo "smoke: building the fuzz targets (cargo fuzz build --sanitizer none)"
t0=$(date +%s)
cargo fuzz build --sanitizer none
echo "smoke: built in $(($(date +%s) - t0))s"

triple=$(rustc -vV | sed -n 's/^host: //p')
bin=target/$triple/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# run TARGET SECONDS: runs the target from an empty corpus; leaves its output in $work/TARGET.log
# and its exit code in $rc.
run() {
  local target=$1 secs=$2
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  set +e
  "$bin/$target" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=512 \
    -artifact_prefix="$work/$target/artifacts/" \
    "$work/$target/corpus" >"$work/$target.log" 2>&1
  rc=$?
  set -e
}

# executed TARGET: how many inputs it ran (libFuzzer's last status line).
executed() {
  grep -oE '^#[0-9]+' "$work/$1.log" | tail -n 1 | tr -d '#' || true
}

for target in ops_sim select hostile; do
  t0=$(date +%s)
  run "$target" "$SMOKE_SECS"
  runs=$(executed "$target")
  if [ "$rc" -eq 0 ]; then
    echo "smoke: $target passed: $runs runs in $(($(date +%s) - t0))s, nothing found"
    passed=$((passed + 1))
  else
    echo "smoke: $target FAILED (exit $rc): it found a crash; its report:"
    sed -n '/panicked at/,/^stack backtrace/p' "$work/$target.log" | head -n 150 || true
    tail -n 20 "$work/$target.log"
    for a in "$work/$target/artifacts"/*; do
      [ -e "$a" ] || continue
      mkdir -p "artifacts/$target"
      cp "$a" "artifacts/$target/"
      echo "smoke: input saved as fuzz/artifacts/$target/$(basename "$a");" \
        "reproduce: cd fuzz && cargo fuzz run --sanitizer none $target artifacts/$target/$(basename "$a")"
    done
    failed=$((failed + 1))
  fi
done

for target in canary hostile_canary; do
  t0=$(date +%s)
  run "$target" "$CANARY_SECS"
  took=$(($(date +%s) - t0))
  if [ "$rc" -ne 0 ] && grep -q 'planted bug found' "$work/$target.log"; then
    echo "smoke: $target found its planted bug as it must: after $(executed "$target") runs, ${took}s"
    passed=$((passed + 1))
    grep -m1 -A3 'planted bug found' "$work/$target.log" | sed 's/^/    /' || true
  else
    echo "smoke: $target FAILED: its planted bug was not found in ${CANARY_SECS}s (exit $rc)"
    tail -n 30 "$work/$target.log"
    failed=$((failed + 1))
  fi
done

echo "smoke: took $(($(date +%s) - started))s in all"
echo "smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
