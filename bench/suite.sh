#!/bin/bash
# The whole side-by-side benchmark suite: every bench/*.sh group present,
# one report.
#
#   bench/suite.sh [--quick] [--only g1,g2]
#
# Runs each group (in this order, those whose script exists): runtime,
# engine, density, images, network, checkpoint, storage, live. Each group
# alternates cove and its peers within its own run (30+ iterations; a few
# with --quick, as CI runs it). The suite collects every group's median,
# min and max and the cove/peer ratios (rows a group records with
# bench_record, see bench/lib/common.sh, or parsed from its Markdown report
# by bench/lib/parse.sh) into bench/results/report-<date>.md, draws one PNG
# per group (bench/results/report-<date>-<group>.png: ratios with spread,
# gnuplot), and copies the report to bench/results/latest.md (charts to
# latest-<group>.png). A group that cannot run (peer missing, engine not
# built, no CRIU) is listed as skipped with the reason; a group that fails
# is listed as failed with its last log line, and the suite then exits 1
# after writing the report. Per-group logs stay in bench/results/work/suite/.
# Needs root.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"
# shellcheck source=bench/lib/parse.sh
. "$here/lib/parse.sh"
# shellcheck source=bench/lib/report.sh
. "$here/lib/report.sh"

quick=false only=
while [[ $# -gt 0 ]]; do
	case $1 in
	--quick) quick=true ;;
	--only) only=${2:-}; shift ;;
	--only=*) only=${1#--only=} ;;
	-h | --help) sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "suite.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[[ $(id -u) -eq 0 ]] || { echo "suite.sh: needs root" >&2; exit 2; }
say() { echo "suite: $*" >&2; }

groups=(runtime engine density images network checkpoint storage live)
declare -A title=(
	[runtime]="Runtime: run, create/start/delete, exec, peak RSS (cove-runc vs runc, crun)"
	[engine]="Engine: run --rm, time to first byte (cove vs podman, docker, ctr)"
	[density]="Density: N idle containers (time to all running, host memory each)"
	[images]="Images: pull + unpack from a local registry (cove vs podman, skopeo, ctr)"
	[network]="Network: throughput and latency (cove vs loopback, hand-made bridge, podman)"
	[checkpoint]="Checkpoint/restore (cove-runc vs runc, same CRIU)"
	[storage]="Storage"
	[live]="Live operations: pause, resume, ps, events, update (cove-runc vs runc)"
)
# Time limit per group: quick runs must fit CI's bench stage.
limit=3600
$quick && limit=240

stamp=$(date -u +%Y%m%d-%H%M%S)
results=$repo/bench/results
work=$results/work/suite
mkdir -p "$work"
data=$work/data-$stamp.tsv
: >"$data"
if ! command -v gnuplot >/dev/null; then
	say "installing gnuplot-nox"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || say "gnuplot-nox not installed: no charts"
fi

# precheck_GROUP: prints why GROUP cannot run here (then it is skipped), or
# nothing. Groups also skip themselves: exit 77, or exit 0 without a table.
# shellcheck disable=SC2317 # called indirectly, as precheck_$g
precheck_engine() {
	local b
	for b in cove cove-monitor cove-runc; do
		[[ -x $repo/bin/$b ]] || { echo "engine not built: bin/$b missing (make build)"; return; }
	done
	"$repo/bin/cove" run --help 2>&1 | grep -q -- --detach || echo "bin/cove has no run verb (rebuild with make build)"
}

declare -A status
ran=()
for g in "${groups[@]}"; do
	if [[ -n $only && ,$only, != *,"$g",* ]]; then
		continue
	fi
	script=$here/$g.sh
	if [[ ! -f $script ]]; then
		status[$g]="skipped: bench/$g.sh not present"
		ran+=("$g")
		continue
	fi
	ran+=("$g")
	if declare -F "precheck_$g" >/dev/null; then
		why=$("precheck_$g")
		if [[ -n $why ]]; then
			status[$g]="skipped: $why"
			say "$g: ${status[$g]}"
			continue
		fi
	fi
	args=()
	$quick && args+=(--quick)
	say "$g: bench/$g.sh ${args[*]}"
	gdata=$work/$g-$stamp.tsv
	: >"$gdata"
	start=$EPOCHREALTIME
	BENCH_DATA=$gdata timeout -k 30 "$limit" bash "$script" "${args[@]}" >"$work/$g.md" 2>"$work/$g.log"
	rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
	last=$(grep -v '^[[:space:]]*$' "$work/$g.log" | tail -1 | cut -c1-200)
	# Rows from the report when the group did not record any itself.
	if [[ ! -s $gdata ]] && declare -F "parse_$g" >/dev/null; then
		BENCH_DATA=$gdata "parse_$g" <"$work/$g.md"
	fi
	cat "$gdata" >>"$data"
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		status[$g]="failed: timed out after ${limit}s"
	elif [[ $rc -eq 77 ]]; then
		status[$g]="skipped: ${last:-no reason given}"
	elif [[ $rc -ne 0 ]]; then
		status[$g]="failed (exit $rc, ${secs}s): ${last:-no output}"
	elif ! grep -q '^|' "$work/$g.md"; then
		status[$g]="skipped: ${last:-no results}"
	else
		status[$g]="ok (${secs}s)"
	fi
	say "$g: ${status[$g]}"
done

report=$results/report-$stamp.md
failed=0
{
	printf '# cove benchmark suite, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'Host: %s, kernel %s, %s CPUs, load average at the end %s. Commit %s. Mode: %s.\n\n' \
		"$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')" "$(uname -r)" "$(nproc)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$($quick && echo "quick (a few iterations: breakage check, figures informational)" || echo full)"
	printf 'Ratios are cove/peer of medians; below 1 means cove needs less time or memory, '
	printf 'except for metrics marked "higher" (throughput), where above 1 is better. '
	printf 'Spread: the ratio of the fastest runs to that of the slowest (min/min..max/max).\n\n'
	printf '| group | status |\n|---|---|\n'
	for g in "${ran[@]}"; do
		printf '| %s | %s |\n' "$g" "${status[$g]}"
		[[ ${status[$g]} == failed* ]] && failed=1
	done
	printf '\n'
	for g in "${ran[@]}"; do
		[[ ${status[$g]} == ok* || ${status[$g]} == failed* ]] || continue
		printf '## %s\n\n' "${title[$g]:-$g}"
		if grep -q "^$g"$'\t' "$data"; then
			ratio_table "$g" <"$data"
			printf '\n'
			png=report-$stamp-$g.png
			if ratio_chart "$g" "$results/$png" "${title[$g]:-$g}" <"$data" 2>"$work/$g.gnuplot.log"; then
				printf '![%s ratios](%s)\n\n' "$g" "$png"
				cp "$results/$png" "$results/latest-$g.png"
			fi
			printf '<details><summary>All values</summary>\n\n'
			values_table "$g" <"$data"
			printf '\n</details>\n\n'
		fi
		printf "<details><summary>The group's own report (bench/%s.sh)</summary>\n\n" "$g"
		# Demote the group's headings below this one.
		sed 's/^#/###/' "$work/$g.md"
		printf '\n</details>\n\n'
	done
} >"$report"
sed 's/(report-[0-9-]*-\([a-z]*\)\.png)/(latest-\1.png)/' "$report" >"$results/latest.md"
cat "$report"
say "report: ${report#"$repo"/} (and bench/results/latest.md)"
exit "$failed"
