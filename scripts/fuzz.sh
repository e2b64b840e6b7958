#!/usr/bin/env bash
# Fuzzes each cargo-fuzz target of fuzz/ for a set time, one after the
# other, then minimises its corpus into fuzz/corpus/<target>/ (which
# tests/it/fuzz_regressions.rs replays in every `cargo test`). Not run in CI.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 60
#   TARGET              default: every target (cargo fuzz list)
# Environment:
#   FUZZ_SANITIZER  cargo-fuzz sanitizer: none (default; works on stable
#                   Rust) or address (needs nightly, or RUSTC_BOOTSTRAP=1)
#   FUZZ_MAX_LEN    largest input tried, in bytes (default 4096)
#
# A crash stops the script: its input is in fuzz/artifacts/<target>/.
# Fix the code, copy the input into fuzz/corpus/<target>/ as a regression
# test, and run again. See docs/FUZZING.md.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
max_len="${FUZZ_MAX_LEN:-4096}"

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

build=(--sanitizer "$sanitizer")
if [ "$sanitizer" != none ] && ! rustc --version | grep -q nightly; then
    # Sanitizers need -Z flags; let the stable compiler accept them.
    export RUSTC_BOOTSTRAP=1
fi

echo "== building ${#targets[@]} targets (sanitizer: $sanitizer)"
cargo fuzz build "${build[@]}"

summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    log="$(mktemp)"
    echo "== $t: fuzzing for ${seconds}s"
    # New interesting inputs are written to corpus/$t; seeds/$t is read only.
    set +e
    cargo fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        2>&1 | tee "$log" | grep --line-buffered -E '^#[0-9]+.*(pulse|DONE)'
    status="${PIPESTATUS[0]}"
    set -e
    if [ "$status" -ne 0 ] || grep -q -E '^(==[0-9]+== ERROR|SUMMARY: libFuzzer|thread .* panicked)' "$log"; then
        echo "!! $t failed: see fuzz/artifacts/$t/ and $log" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')"
    rm -f "$log"

    echo "== $t: minimising the corpus"
    # Keep the inputs that reach new edges (not new hit counts): the
    # committed corpus stays a few hundred small files.
    cargo fuzz cmin "${build[@]}" "$t" "corpus/$t" -- -max_len="$max_len" -use_counters=0 >/dev/null 2>&1
    files="$(find "corpus/$t" -type f | wc -l)"
    bytes="$(cat "corpus/$t"/* | wc -c)"
    summary+=("$t: ${seconds}s, $runs executions, corpus $files files ($bytes bytes)")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
