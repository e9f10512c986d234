# shellcheck shell=bash
# Shared helpers for bench/*.sh, sourced: . "$here/lib/common.sh"
#
# Results protocol: a group script that knows its numbers calls
#   bench_record GROUP METRIC SUBJECT UNIT MEDIAN MIN MAX N [BETTER]
# once per measured subject (cove or a peer). When bench/suite.sh runs the
# group, BENCH_DATA names a TSV file and the row is appended there; run on
# its own, bench_record does nothing. BETTER is "lower" (default: times,
# memory) or "higher" (throughput). MIN/MAX may be "-" when only a median
# is known. The suite computes cove/peer ratios from these rows: a subject
# whose name starts with "cove" is cove, every other subject is a peer.

# bench_record GROUP METRIC SUBJECT UNIT MEDIAN MIN MAX N [BETTER]
bench_record() {
	[[ -n ${BENCH_DATA:-} ]] || return 0
	local better=${9:-lower} f
	for f in "$1" "$2" "$3" "$4"; do
		[[ $f != *$'\t'* ]] || { echo "bench_record: tab in field '$f'" >&2; return 1; }
	done
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:--}" "${7:--}" "${8:--}" "$better" >>"$BENCH_DATA"
}

# bench_stats: "median min max n" of the numbers on stdin (one or more per
# line), or "- - - 0" when there are none.
bench_stats() {
	tr -s ' \t' '\n' | grep -E '^-?[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - - 0"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g %.6g %.6g %d\n", m, v[1], v[NR], NR }'
}

# bench_now_us: wall clock in microseconds.
bench_now_us() {
	local t=${EPOCHREALTIME/./}
	echo "${t#0}"
}

# bench_mem_available_kib: MemAvailable from /proc/meminfo, KiB.
bench_mem_available_kib() {
	awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo
}

# bench_pss_kib PID...: summed Pss (KiB) of the given processes; gone ones count 0.
bench_pss_kib() {
	local p sum=0 v
	for p in "$@"; do
		v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
