#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on its committed corpus:
#   fuzz/run.sh [SECONDS]
# Needs the nightly toolchain (cargo +nightly); without it, says so and exits 0. Installs
# cargo-fuzz if missing. Exits non-zero if any target crashes (the input is left in
# fuzz/artifacts/<target>/; reproduce with `cargo +nightly fuzz run <target> <file>`).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
targets=(frame_decode session flow_control rpc_decode)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped (no nightly toolchain: cargo +nightly is unavailable)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

failed=()
for target in "${targets[@]}"; do
  echo "==> fuzz ${target} for ${seconds}s"
  mkdir -p "corpus/${target}"
  # New inputs go to a scratch directory: the committed corpus stays as it is.
  scratch="$(mktemp -d)"
  log="${scratch}/log"
  mkdir -p "${scratch}/new"
  if cargo +nightly fuzz run "${target}" "${scratch}/new" "corpus/${target}" -- \
    -max_total_time="${seconds}" -print_final_stats=1 >"${log}" 2>&1; then
    grep -E '^(#[0-9]+ +DONE|Done |stat::)' "${log}" || tail -n 5 "${log}"
  else
    # The panic message, the crashing input and how to reproduce it.
    grep -E -A 2 'panicked at|^==[0-9]+==ERROR' "${log}" || true
    grep -E -A 2 'Test unit written to|Reproduce with|Minimize test case' "${log}" || tail -n 40 "${log}"
    failed+=("${target}")
  fi
  rm -rf "${scratch}"
done

if ((${#failed[@]})); then
  echo "fuzz: failed (crash, or build error above): ${failed[*]}; crashing inputs are in fuzz/artifacts/"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
