#!/bin/bash
# Checkpoint/restore benchmark: cove-runc vs runc, both driving the same
# CRIU (the cove-criu wrapper from .ci/criu.sh, or $CRIU).
#
#   bench/checkpoint.sh [--quick]
#
# Each runtime runs one busybox container (a shell counting in memory and
# into a file, every 50 ms). Then, N times (BENCH_RUNS, default 10;
# --quick: 3), alternating runtimes: `RUNTIME checkpoint --image-path D ID`
# (the container stops) and `RUNTIME restore -d --image-path D ID` of the
# same container, each timed on its own. Prints the median of each, the
# ratio cove-runc/runc, and the image size; writes the report to
# bench/results/checkpoint-<date>.md. Needs root.
#
# cove-runc is $COVE_RUNC, else ./bin/cove-runc (built if missing). The
# container's stdio is its own /dev/null (the shell redirects it), which
# runc and cove-runc both checkpoint; runc cannot dump host stdio files.
# The container shares the host's network namespace (see below;
# BENCH_NETNS=private gives it its own).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${BENCH_RUNS:-10}
quick=false
for a in "$@"; do
	case $a in
	--quick) quick=true ;;
	-h | --help) sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "checkpoint.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
$quick && runs=3
[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "checkpoint.sh: BENCH_RUNS must be a number >= 1" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "checkpoint.sh: needs root" >&2; exit 2; }
say() { echo "bench: $*" >&2; }

criu=${CRIU:-$(command -v cove-criu || echo /usr/local/sbin/cove-criu)}
if ! "$criu" check >/dev/null 2>&1; then
	say "no working CRIU at $criu (run .ci/criu.sh); skipping the checkpoint benchmark"
	exit 0
fi
cove=${COVE_RUNC:-$repo/bin/cove-runc}
if [[ ! -x $cove ]]; then
	(cd "$repo" && make -s build)
fi
runc=$(command -v runc || true)

work=$(mktemp -d /tmp/cove-bench-cr.XXXXXX)
ids=()
cleanup() {
	for entry in "${ids[@]}"; do
		read -r rt root id <<<"$entry"
		"$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

# One bundle per runtime: each container writes its own root.
script='exec </dev/null >/dev/null 2>&1; i=0; while true; do i=$((i+1)); echo $i >/count; sleep 0.05; done'
names=(cove-runc)
bins=("$cove")
if [[ -n $runc ]]; then
	names+=(runc)
	bins+=("$runc")
else
	say "runc not installed: cove-runc only"
fi
for i in "${!names[@]}"; do
	MKSPEC_FLAGS=-rw "$repo/tests/fixtures/mkbundle.sh" "$work/b$i" sh -c "$script" >/dev/null
	# The host's network namespace: with a private one, CRIU saves and
	# restores its configuration (ip, iptables-save: ~10 helper processes)
	# for cove-runc, while runc always passes --empty-ns network, which
	# would make the comparison unequal.
	# BENCH_NETNS=private keeps the spec's own network namespace.
	if [[ ${BENCH_NETNS:-host} == host ]]; then
		perl -0pi -e 's/\{\s*"type":\s*"network"\s*\},?//' "$work/b$i/config.json"
	fi
	mkdir -p "$work/root$i"
	id=bench-cr-$$-$i
	ids+=("${bins[$i]} $work/root$i $id")
	(cd "$work/b$i" && "${bins[$i]}" --root "$work/root$i" run -d --bundle "$work/b$i" "$id")
done
sleep 0.5

# now_ms prints the time in milliseconds with microseconds.
now() { echo "${EPOCHREALTIME/./}"; }
declare -A ck rs size
fail=()
for ((n = 0; n < runs; n++)); do
	for i in "${!names[@]}"; do
		rt=${bins[$i]} root=$work/root$i id=bench-cr-$$-$i img=$work/img$i-$n
		t0=$(now)
		if ! out=$("$rt" --root "$root" --criu "$criu" checkpoint --image-path "$img" "$id" 2>&1); then
			fail+=("${names[$i]} checkpoint: $out")
			continue
		fi
		t1=$(now)
		if ! out=$("$rt" --root "$root" --criu "$criu" restore -d --bundle "$work/b$i" --image-path "$img" "$id" 2>&1); then
			fail+=("${names[$i]} restore: $out")
			continue
		fi
		t2=$(now)
		ck[$i]+="$(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) "
		rs[$i]+="$(((t2 - t1) / 1000)).$(((t2 - t1) % 1000 / 100)) "
		size[$i]=$(du -sk "$img" | cut -f1)
		rm -rf "$img"
	done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR == 0) {print "-"; exit} if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
report=$work/report.md
{
	echo "## Checkpoint/restore: cove-runc vs runc ($(date -u +%Y-%m-%dT%H:%MZ))"
	echo
	echo "$("$criu" --version | head -1 | sed 's/Version: /CRIU /'), $runs iterations alternating, busybox counter container (${BENCH_NETNS:-host} netns); median wall time."
	echo
	echo "| runtime | checkpoint ms | restore ms | image KiB |"
	echo "|---|---|---|---|"
	declare -A med_ck med_rs
	for i in "${!names[@]}"; do
		med_ck[$i]=$(median <<<"${ck[$i]:-}")
		med_rs[$i]=$(median <<<"${rs[$i]:-}")
		echo "| ${names[$i]} | ${med_ck[$i]} | ${med_rs[$i]} | ${size[$i]:--} |"
	done
	if [[ ${#names[@]} -eq 2 && ${med_ck[1]} != - && ${med_ck[0]} != - ]]; then
		echo
		awk -v a="${med_ck[0]}" -v b="${med_ck[1]}" -v c="${med_rs[0]}" -v d="${med_rs[1]}" \
			'BEGIN { printf "cove-runc/runc: checkpoint %.2fx, restore %.2fx\n", a/b, c/d }'
	fi
	for f in "${fail[@]}"; do
		echo
		echo "FAILED: $f"
	done
} >"$report"
cat "$report"
mkdir -p "$here/results"
cp "$report" "$here/results/checkpoint-$(date -u +%Y%m%d-%H%M).md"
[[ ${#fail[@]} -eq 0 ]]
