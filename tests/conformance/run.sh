#!/bin/bash
# Run the OCI runtime-tools v0.9.0 validation suite against an OCI runtime.
#
#   tests/conformance/run.sh RUNTIME [--expect FILE] [--only a,b,...] [--timeout SEC]
#
# RUNTIME is a runc-compatible binary (path or name in PATH). The suite
# (58 programs under validation/, plus runtimetest) is fetched from the Go
# module proxy, built once into tests/conformance/work/rt and cached there.
# Each program runs with RUNTIME set, a per-program timeout (default 60 s)
# and its TAP output is parsed: PASS (exit 0, nothing failed), FAIL (a
# "not ok" or a failure diagnostic; the first is shown) or ERROR (the
# program gave up: non-zero exit, usually because the runtime failed a
# lifecycle step outside an assertion; or the timeout hit).
# TAP logs land in work/logs/<runtime>/, a summary in work/results/<runtime>.txt.
#
# --expect FILE: FILE lists programs expected to PASS, one per line, '#'
# comments allowed. The script then exits 1 if any of them does not pass.
# Without --expect it exits 0 whenever the suite ran. Needs root and go.
set -euo pipefail

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=v0.9.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${CONFORMANCE_WORK:-$here/work}
timeout_s=${CONFORMANCE_TIMEOUT:-60}
expect=
only=
runtime=

usage() {
	sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--expect) expect=${2:?--expect needs a file}; shift 2 ;;
	--expect=*) expect=${1#*=}; shift ;;
	--only) only=${2:?--only needs a list}; shift 2 ;;
	--only=*) only=${1#*=}; shift ;;
	--timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
	--timeout=*) timeout_s=${1#*=}; shift ;;
	-h | --help) usage ;;
	-*) echo "run.sh: unknown flag $1" >&2; usage ;;
	*)
		[[ -z $runtime ]] || usage
		runtime=$1
		shift
		;;
	esac
done
[[ -n $runtime ]] || usage

if [[ $runtime == */* ]]; then
	[[ -x $runtime ]] || { echo "run.sh: runtime $runtime: not an executable file" >&2; exit 2; }
	runtime=$(realpath "$runtime")
else
	runtime=$(command -v "$runtime") || { echo "run.sh: runtime not found in PATH" >&2; exit 2; }
fi
if [[ -n $expect && ! -r $expect ]]; then
	echo "run.sh: expect file $expect: not readable" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "run.sh: the validation suite creates containers: run as root" >&2
	exit 2
fi
command -v go >/dev/null || { echo "run.sh: go not found in PATH" >&2; exit 2; }

rt=$work/rt
log() { echo "conformance: $*" >&2; }
# since T0 prints the seconds elapsed since $EPOCHREALTIME was T0.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# build_suite fetches runtime-tools into $rt and builds runtimetest and the
# validation programs, unless a build with the same inputs is cached.
build_suite() {
	local stamp dir
	stamp="$RT_VERSION $(cat "$here/runtime-tools.go.mod" "$here/runtime-tools.go.sum" | cksum) $(go env GOVERSION)"
	if [[ -f $rt/.cove-stamp && $(cat "$rt/.cove-stamp") == "$stamp" ]]; then
		return 0
	fi
	log "building $RT_MODULE@$RT_VERSION in $rt"
	mkdir -p "$work/dl"
	printf 'module dl\n\ngo 1.22\n' >"$work/dl/go.mod"
	dir=$(cd "$work/dl" && go mod download -json "$RT_MODULE@$RT_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
	[[ -n $dir && -d $dir ]] || { log "go mod download of $RT_MODULE@$RT_VERSION failed"; return 1; }
	rm -rf "$rt"
	cp -r "$dir" "$rt"
	chmod -R u+w "$rt"
	cp "$here/runtime-tools.go.mod" "$rt/go.mod"
	cp "$here/runtime-tools.go.sum" "$rt/go.sum"
	(
		cd "$rt"
		export GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local
		# runtimetest runs inside the busybox rootfs: static, like upstream's Makefile.
		CGO_ENABLED=0 go build -o runtimetest ./cmd/runtimetest
		mkdir -p bin
		go build -o bin/ ./validation/...
	)
	local tarball
	tarball=rootfs-$(go env GOARCH).tar.gz
	if [[ ! -s $rt/$tarball ]]; then
		log "$tarball missing from the source tree: building one from busybox"
		rm -rf "$work/rootfs-tmp"
		"$here/../fixtures/mkrootfs.sh" "$work/rootfs-tmp"
		tar -C "$work/rootfs-tmp" -czf "$rt/$tarball" .
		rm -rf "$work/rootfs-tmp"
	fi
	echo "$stamp" >"$rt/.cove-stamp"
}

build_start=$EPOCHREALTIME
build_suite
build_secs=$(since "$build_start")

mapfile -t programs < <(find "$rt/bin" -maxdepth 1 -type f -executable -printf '%f\n' | sort)
if [[ -n $only ]]; then
	IFS=, read -r -a want <<<"$only"
	for w in "${want[@]}"; do
		[[ -x $rt/bin/$w ]] || { echo "run.sh: no validation program named $w" >&2; exit 2; }
	done
	programs=("${want[@]}")
fi

name=$(basename "$runtime")
logdir=$work/logs/$name
results=$work/results/$name.txt
mkdir -p "$logdir" "$work/results"
: >"$results"

# scrub DIR unmounts everything mounted under DIR (programs that share the
# host mount namespace leave the container's mounts there), then removes it.
scrub() {
	local m
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf --one-file-system "$1" 2>/dev/null || rm -rf --one-file-system "$1"
}

# scrub_cgroups removes the (empty) cgroups the cgroup programs leave:
# cgroupsPath /cgrouptest and testdir/cgrouptest/container, at the top of
# each hierarchy only.
scrub_cgroups() {
	local top
	for top in /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/cgrouptest /sys/fs/cgroup/testdir; do
		[[ -d $top ]] || continue
		find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
}

# list_ids prints the ids of the runtime's containers (empty if `list` fails).
list_ids() { timeout 10 "$runtime" list -q 2>/dev/null || true; }

# parse_tap FILE prints "PLAN OK NOTOK SKIP|first not-ok line|its diagnostic".
# A program may print several TAP streams (linux_cgroups_cpus does): plans
# add up. Some programs print no test line, only a YAML diagnostic and
# "1..0" (the hook tests): that diagnostic is reported as the failure.
parse_tap() {
	awk '
	function keep(line) {
		gsub(/^[ \t]+|[ \t]+$/, "", line)
		if (line ~ /^(---|\.\.\.|\{|\}|)$/) return
		if (line ~ /^"(error|stderr)"|^# *expect|"actual"/) { if (best == "") best = line }
		else if (other == "") other = line
	}
	/^TAP version/ { next }
	/^1\.\.[0-9]+/ { sub(/^1\.\./, ""); plan += $0 + 0; next }
	/^ok( |$)/ { ok++; if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++; indiag = 0; next }
	/^not ok( |$)/ {
		if ($0 ~ /# *[Tt][Oo][Dd][Oo]/) { ok++; indiag = 0; next }
		notok++
		indiag = (first == "")
		if (indiag) { first = $0; best = ""; other = "" }
		next
	}
	indiag || (ok + notok == 0) { keep($0) }
	END {
		diag = best != "" ? best : other
		printf "%d %d %d %d|%s|%s\n", plan, ok, notok, skip, first, diag
	}
	' "$1"
}

# stderr_summary FILE prints the most telling line of a program's stderr:
# the first runtime error message, else its first line.
stderr_summary() {
	{ grep -v -e '^[[:space:]]*$' -e '^TAP version' -e '^1\.\.' -e '^exit status' "$1" || true; } |
		awk 'NR == 1 { first = $0 } /msg=|[Ee]rror|MUST/ && pick == "" { pick = $0 }
			END { print (pick != "" ? pick : first) }'
}

printf 'runtime-tools %s validation against %s (timeout %ss per program)\n' "$RT_VERSION" "$runtime" "$timeout_s"
"$runtime" --version 2>/dev/null | head -1 | sed 's/^/  /' || true
printf '\n'

npass=0 nfail=0 nerr=0
suite_start=$EPOCHREALTIME
tmproot=$work/tmp
for prog in "${programs[@]}"; do
	before=$(list_ids)
	scrub "$tmproot/$prog"
	mkdir -p "$tmproot/$prog"
	t0=$EPOCHREALTIME
	rc=0
	(cd "$rt" && TMPDIR=$tmproot/$prog RUNTIME=$runtime \
		timeout -k 5 "$timeout_s" "./bin/$prog" >"$logdir/$prog.tap" 2>"$logdir/$prog.err" </dev/null) || rc=$?
	secs=$(since "$t0")

	# Clean up whatever the program left behind.
	after=$(list_ids)
	while read -r id; do
		[[ -n $id ]] || continue
		grep -qxF -- "$id" <<<"$before" && continue
		timeout 10 "$runtime" delete -f "$id" >/dev/null 2>&1 || true
	done <<<"$after"
	scrub "$tmproot/$prog"
	scrub_cgroups

	IFS='|' read -r counts first diag < <(parse_tap "$logdir/$prog.tap")
	read -r plan ok notok skip <<<"$counts"
	reason=
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		status=ERROR reason="timeout after ${timeout_s}s ($ok ok, $notok not ok so far)"
	elif [[ $notok -gt 0 ]]; then
		[[ -n $diag ]] || diag=$(stderr_summary "$logdir/$prog.err")
		status=FAIL reason="$first${diag:+ -- $diag}"
	elif [[ $ok -eq 0 && -n $diag ]]; then
		status=FAIL reason="no assertions; diagnostic: $diag"
	elif [[ $rc -ne 0 ]]; then
		# The program gave up (util.Fatal): the runtime failed a lifecycle
		# step outside any assertion, or a *_fail program saw no error.
		status=ERROR reason="exit $rc: $(stderr_summary "$logdir/$prog.err")"
	elif [[ $plan -gt 0 && $ok -ne $plan ]]; then
		status=ERROR reason="plan 1..$plan but $ok ok"
	else
		# Exit 0 and nothing failed. Programs that only print a diagnostic
		# on failure (hooks, *_fail) print no assertions at all when fine.
		status=PASS
	fi
	case $status in
	PASS) npass=$((npass + 1)) ;;
	FAIL) nfail=$((nfail + 1)) ;;
	ERROR) nerr=$((nerr + 1)) ;;
	esac
	summary="$ok/$plan ok"
	[[ $skip -gt 0 ]] && summary+=", $skip skip"
	printf '%-5s %-36s %-18s %6.1fs\n' "$status" "$prog" "$summary" "$secs"
	[[ -z $reason ]] || printf '      %s\n' "${reason:0:240}"
	printf '%s %s %s\n' "$status" "$prog" "$reason" >>"$results"
done
suite_secs=$(since "$suite_start")

total=${#programs[@]}
printf '\nTotal: %d programs: %d pass, %d fail, %d error (suite %.0fs, build %.0fs)\n' \
	"$total" "$npass" "$nfail" "$nerr" "$suite_secs" "$build_secs"
printf 'TAP logs: %s\nSummary:  %s\n' "$logdir" "$results"

[[ -n $expect ]] || exit 0

mapfile -t expected < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$expect" | grep -v '^$' || true)
bad=0
for e in "${expected[@]}"; do
	if [[ -n $only && ",$only," != *",$e,"* ]]; then
		continue
	fi
	got=$(awk -v p="$e" '$2 == p { print $1 }' "$results")
	if [[ -z $got ]]; then
		echo "EXPECTED $e: no such validation program" >&2
		bad=1
	elif [[ $got != PASS ]]; then
		echo "EXPECTED $e to pass, got $got" >&2
		bad=1
	fi
done
newly=$(awk 'NR == FNR { want[$0] = 1; next } $1 == "PASS" && !($2 in want) { print $2 }' \
	<(printf '%s\n' "${expected[@]}") "$results")
if [[ -n $newly ]]; then
	printf 'Passing but not in %s (consider adding):\n' "$expect"
	while read -r n; do printf '  %s\n' "$n"; done <<<"$newly"
fi
if [[ $bad -ne 0 ]]; then
	echo "conformance: regressions against $expect" >&2
	exit 1
fi
printf 'All %d expected programs pass.\n' "${#expected[@]}"
