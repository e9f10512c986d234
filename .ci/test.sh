#!/bin/bash
# The stages of `make test`, each with a header, a time limit and its
# duration; a summary at the end, followed by go test's package summary.
# A failing stage does not stop the independent ones after it, but stages
# that need bin/cove-runc are skipped when the build fails. Exits 1 if any
# stage failed. Each stage is a Makefile target, so `make vet` etc. run one.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
mkdir -p out
gotest_log=out/gotest.log
: >"$gotest_log"

names=() results=() times=()
failed=0 build_ok=1

# stage NAME LIMIT TARGET: run `make TARGET` under a time limit.
stage() {
	local name=$1 limit=$2 target=$3 start rc secs
	printf '\n==== [%s] %s (make %s, limit %s) ====\n' "$(date -u +%H:%M:%S)" "$name" "$target" "$limit"
	start=$EPOCHREALTIME
	timeout --foreground -k 30 "$limit" make --no-print-directory -s "$target"
	rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
	if [[ $rc -eq 0 ]]; then
		results+=(ok)
	elif [[ $rc -eq 124 ]]; then
		results+=("FAILED (timed out)")
		failed=1
	else
		results+=("FAILED (exit $rc)")
		failed=1
	fi
	names+=("$name") times+=("$secs")
	printf '==== %s: %s in %ss ====\n' "$name" "${results[-1]}" "$secs"
	return "$rc"
}
skip() {
	names+=("$1") results+=("skipped: $2") times+=(0)
	printf '\n==== %s: skipped (%s) ====\n' "$1" "$2"
}

total_start=$EPOCHREALTIME
stage build 10m build || build_ok=0
if command -v shellcheck >/dev/null; then
	stage shellcheck 2m lint-sh
else
	skip shellcheck "shellcheck not installed"
fi
stage gofmt 2m fmt-check
stage "go vet" 10m vet
stage staticcheck 10m staticcheck
stage "go test" 20m gotest
stage "fuzz (quick)" 5m fuzz-quick
if [[ -x tests/cgroupv2/run.sh ]]; then
	stage "cgroup v2 VM" 15m cgroupv2
else
	skip "cgroup v2 VM" "tests/cgroupv2/run.sh not present"
fi
if [[ $build_ok -eq 1 ]]; then
	stage conformance 12m conformance
	stage "bench (quick, informational)" 5m bench-quick
else
	skip conformance "build failed"
	skip "bench (quick, informational)" "build failed"
fi
total=$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

printf '\n==== Summary (%ss) ====\n' "$total"
for i in "${!names[@]}"; do
	printf '  %-30s %-22s %5ss\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
printf '\n==== go test summary (full log: %s) ====\n' "$gotest_log"
grep -E '^(ok|FAIL|--- FAIL|panic:)' "$gotest_log" || echo "  (no go test output)"
if [[ $failed -ne 0 ]]; then
	printf '\nmake test: FAILED\n'
	exit 1
fi
printf '\nmake test: all stages passed\n'
