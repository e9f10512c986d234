#!/bin/bash
# Latency of the live-operation verbs: cove-runc vs runc vs crun.
#
#   bench/live.sh [--quick]
#
# Starts one busybox `sleep` container per runtime, then times BENCH_RUNS
# rounds (default 30; --quick: 5) of: pause, resume, ps --format json,
# events --stats and update --pids-limit, each a separate process as an
# engine runs them. Prints a Markdown table of median (min-max) ms and the
# ratio of each runtime's median to cove-runc's, and writes it to
# bench/results/live-<date>.md. Needs root.
#
# cove-runc is $COVE_RUNC, else ./bin/cove-runc. A runtime whose container
# does not start (crun 1.8.1 refuses hybrid cgroup hosts) is skipped with a
# note.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${BENCH_RUNS:-30}
for a in "$@"; do
	case $a in
	--quick) runs=5 ;;
	-h | --help) sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "live.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "live.sh: BENCH_RUNS must be a number >= 1" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "live.sh: needs root" >&2; exit 2; }

work=$(mktemp -d /tmp/cove-bench-live.XXXXXX)
bundle=$work/bundle
"$repo/tests/fixtures/mkbundle.sh" "$bundle" sleep 100000 >/dev/null
id=live-bench-$$
ops=(pause resume ps events update)

names=() paths=() notes=()
add() {
	local name=$1 path=$2
	if [[ -z $path || ! -x $path ]]; then
		notes+=("$name skipped: not found")
		return
	fi
	tried+=("$name $path")
	# Output to a file: the detached container keeps its stdio open.
	if ! "$path" --root "$work/$name" run -d --bundle "$bundle" "$id" </dev/null >"$work/$name.log" 2>&1; then
		notes+=("$name skipped: run failed: $(tail -1 "$work/$name.log")")
		"$path" --root "$work/$name" delete -f "$id" >/dev/null 2>&1 || true
		return
	fi
	names+=("$name")
	paths+=("$path")
}
tried=()
cleanup() {
	local t
	for t in "${tried[@]}"; do
		${t#* } --root "$work/${t%% *}" delete -f "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
add cove-runc "${COVE_RUNC:-$repo/bin/cove-runc}"
add runc "$(command -v runc || true)"
add crun "$(command -v crun || true)"
[[ ${#names[@]} -gt 0 ]] || { printf '%s\n' "${notes[@]}" >&2; exit 1; }

us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
# time_op FILE CMD...: append the command's wall time in microseconds.
time_op() {
	local f=$1 t0
	shift
	t0=$(us)
	"$@" >/dev/null
	echo $(($(us) - t0)) >>"$f"
}
# Runtimes take turns within each round, so that load from elsewhere on
# the machine falls on all of them alike.
for ((k = 0; k < runs; k++)); do
	for i in "${!names[@]}"; do
		n=${names[$i]} rt=("${paths[$i]}" --root "$work/${names[$i]}")
		time_op "$work/$n.pause" "${rt[@]}" pause "$id"
		time_op "$work/$n.resume" "${rt[@]}" resume "$id"
		time_op "$work/$n.ps" "${rt[@]}" ps --format json "$id"
		time_op "$work/$n.events" "${rt[@]}" events --stats "$id"
		time_op "$work/$n.update" "${rt[@]}" update --pids-limit $((100 + k)) "$id"
	done
done

# median FILE: median in microseconds; span FILE: "min-max" in ms.
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
span() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.1f-%.1f", v[1] / 1000, v[NR] / 1000 }'; }

report=$(
	echo "## Live operations, $(date -u '+%Y-%m-%d %H:%M') UTC, $runs runs, $(nproc) CPUs, $(uname -r)"
	echo
	printf '| op |'
	for n in "${names[@]}"; do printf ' %s ms (min-max) |' "$n"; done
	for n in "${names[@]:1}"; do printf ' %s / %s |' "$n" "${names[0]}"; done
	echo
	printf '|---|'
	for _ in "${names[@]}" "${names[@]:1}"; do printf -- '---|'; done
	echo
	for op in "${ops[@]}"; do
		printf '| %s |' "$op"
		for n in "${names[@]}"; do
			printf ' %.1f (%s) |' "$(awk -v m="$(median "$work/$n.$op")" 'BEGIN { print m / 1000 }')" "$(span "$work/$n.$op")"
		done
		base=$(median "$work/${names[0]}.$op")
		for n in "${names[@]:1}"; do
			printf ' %.2f |' "$(awk -v a="$(median "$work/$n.$op")" -v b="$base" 'BEGIN { print a / b }')"
		done
		echo
	done
	echo
	echo "ops: pause, resume, \`ps --format json\`, \`events --stats\`, \`update --pids-limit N\`; each a fresh process."
	for n in "${notes[@]}"; do echo "- $n"; done
)
mkdir -p "$repo/bench/results"
out=$repo/bench/results/live-$(date -u +%Y%m%d-%H%M).md
echo "$report" | tee "$out"
echo "bench: wrote $out" >&2
