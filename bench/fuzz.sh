#!/usr/bin/env bash
# Fuzz bosun's parsers for a bounded time each (default 60 s): the DNS reply parser
# (network bytes read by PID 1), the stack file (YAML, schema, validation) and schedule
# expressions. Needs cargo-fuzz (`cargo install cargo-fuzz`); the machine's stable
# toolchain is used with RUSTC_BOOTSTRAP (cargo-fuzz needs nightly flags). Crashes are
# left in fuzz/artifacts/TARGET/; each one found becomes a unit test beside the code.
#   bench/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dns_reply stack_file schedule)
export RUSTC_BOOTSTRAP=1
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== $t: ${secs}s =="
    if ! cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)"; then
        status=1
    fi
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
done
exit $status
