#!/bin/bash
# Engine benchmark: `cove run --rm IMG true` vs podman (runc and crun), ctr
# and docker running the same busybox image, plus the per-container
# supervisor's memory (cove-monitor vs conmon).
#
#   bench/engine.sh [--quick]
#
# Every engine gets private state under a work directory (podman --root/
# --runroot, a containerd and a dockerd of their own on private sockets)
# and the image from one `cove image save` archive. All run with no
# network (cove's default today; podman/docker --network none; ctr's
# default). BENCH_RUNS runs per engine (default 20; --quick: 5 and only
# cove and podman+runc), engines taking turns within each round; prints
# medians, ratios to cove, and RSS/PSS of one idle container's supervisor.
# Needs root. Binaries: $COVE_BIN (default ./bin) with cove, cove-monitor,
# cove-runc.
#
# crun 1.8.1 refuses hybrid cgroup hosts: podman+crun runs in a private
# mount namespace where /sys/fs/cgroup/unified/cgroup.controllers is
# bind-mounted from an empty file (the wrapper costs ~2 ms; not subtracted).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${BENCH_RUNS:-20}
quick=false
for a in "$@"; do
	case $a in
	--quick) quick=true ;;
	-h | --help) sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "engine.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
$quick && runs=5
[[ $(id -u) -eq 0 ]] || { echo "engine.sh: needs root" >&2; exit 2; }
say() { echo "bench: $*" >&2; }

bin=${COVE_BIN:-$repo/bin}
for b in cove cove-monitor cove-runc; do
	[[ -x $bin/$b ]] || { echo "engine.sh: $bin/$b missing (make build)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/cove-bench-engine.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[[ -n ${pod:-} ]] && $pod system reset -f >/dev/null 2>&1
	awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# --- the image -------------------------------------------------------------
"$repo/tests/fixtures/mkrootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
export COVE_RUNROOT=$work/cove-run
cove=("$bin/cove" --root "$work/cove")
img=localhost/bench/busybox:latest
"${cove[@]}" image import "$work/rootfs.tar" "$img" >/dev/null
"${cove[@]}" image save -o "$work/image.tar" "$img"

names=()
declare -A cmd
add() { names+=("$1"); cmd[$1]=$2; }
add cove "${cove[*]} run --rm --network none $img true"

ulim=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
if command -v podman >/dev/null; then
	pod="podman --root $work/podman --runroot $work/podman-run --storage-driver overlay --cgroup-manager cgroupfs --events-backend none"
	if $pod load -q -i "$work/image.tar" >/dev/null 2>&1; then
		add podman-runc "$pod --runtime runc run --rm --network none ${ulim[*]} $img true"
		if ! $quick && command -v crun >/dev/null; then
			: >"$work/empty"
			cat >"$work/crun-wrap.sh" <<EOS
#!/bin/sh
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then mount --bind $work/empty /sys/fs/cgroup/unified/cgroup.controllers; fi
exec "\$@"
EOS
			chmod +x "$work/crun-wrap.sh"
			add podman-crun "unshare -m --propagation private $work/crun-wrap.sh $pod --runtime crun run --rm --network none ${ulim[*]} $img true"
		fi
	else
		say "podman load failed; podman skipped"
	fi
fi
if ! $quick && command -v containerd >/dev/null && command -v ctr >/dev/null; then
	mkdir -p "$work/ctrd"
	containerd --root "$work/ctrd/root" --state "$work/ctrd/state" --address "$work/ctrd/sock" >"$work/ctrd/log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do ctr -a "$work/ctrd/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
	if ctr -a "$work/ctrd/sock" images import "$work/image.tar" >/dev/null 2>&1; then
		add ctr "ctr -a $work/ctrd/sock run --rm $img bench-ctr true"
	else
		say "ctr import failed; ctr skipped"
	fi
fi
if ! $quick && [[ -x /usr/sbin/dockerd ]] && command -v docker >/dev/null && [[ -n ${pids[0]:-} ]]; then
	mkdir -p "$work/docker"
	echo '{"deprecated-key-path": "'"$work"'/docker/key.json"}' >"$work/docker/daemon.json"
	dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" --exec-root "$work/docker/exec" \
		--pidfile "$work/docker/pid" --host "unix://$work/docker/sock" --containerd "$work/ctrd/sock" \
		--bridge none --iptables=false --ip-forward=false --ip-masq=false >"$work/docker/log" 2>&1 &
	pids+=($!)
	dk="docker -H unix://$work/docker/sock"
	for _ in $(seq 100); do $dk version >/dev/null 2>&1 && break; sleep 0.1; done
	if $dk load -q -i "$work/image.tar" >/dev/null 2>&1; then
		add docker "$dk run --rm --network none $img true"
	else
		say "docker load failed; docker skipped"
	fi
fi

# --- rounds ----------------------------------------------------------------
declare -A times
for name in "${names[@]}"; do
	times[$name]=""
	eval "${cmd[$name]}" >/dev/null 2>"$work/err" || { say "$name smoke run failed: $(tail -3 "$work/err")"; cmd[$name]=""; }
done
for ((r = 1; r <= runs; r++)); do
	for name in "${names[@]}"; do
		[[ -n ${cmd[$name]} ]] || continue
		t0=$(date +%s%N)
		if ! eval "${cmd[$name]}" >/dev/null 2>"$work/err"; then
			say "$name failed: $(tail -3 "$work/err")"
			continue
		fi
		t1=$(date +%s%N)
		times[$name]+="$(((t1 - t0) / 100000)) "
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
base=$(echo "${times[cove]}" | median)
echo "## run --rm IMG true: median wall ms over $runs runs ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "| engine | median ms | ratio to cove |"
echo "|---|---|---|"
for name in "${names[@]}"; do
	[[ -n ${times[$name]} ]] || { echo "| $name | failed | |"; continue; }
	m=$(echo "${times[$name]}" | median)
	awk -v n="$name" -v m="$m" -v b="$base" 'BEGIN {printf "| %s | %.1f | %.2f |\n", n, m/10, (b>0 ? m/b : 0)}'
done

# --- supervisor memory -----------------------------------------------------
mem() { # pids -> "RSS of the first | mean PSS"
	local rss pss=0 p
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$1/status")
	for p in "$@"; do pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"))); done
	echo "$rss | $((pss / $#))"
}
echo
n=5
echo "## supervisor per idle container, $n running (KiB: RSS of one, mean PSS)"
echo
echo "| supervisor | RSS | PSS |"
echo "|---|---|---|"
ids=() mp=()
for ((i = 0; i < n; i++)); do
	ids+=("$("${cove[@]}" run -d --network none "$img" sleep 120)")
	mp+=("$(cut -d' ' -f1 "$COVE_RUNROOT/${ids[-1]}/monitor.pid")")
done
sleep 0.5
echo "| cove-monitor | $(mem "${mp[@]}") |"
"${cove[@]}" rm -f "${ids[@]}" >/dev/null
if [[ -n ${cmd[podman-runc]:-} ]]; then
	ids=() mp=()
	for ((i = 0; i < n; i++)); do
		ids+=("$($pod --runtime runc run -d --network none "${ulim[@]}" "$img" sleep 120)")
		mp+=("$(pgrep -f "conmon.*${ids[-1]}" | head -1 || true)")
	done
	sleep 0.5
	echo "| conmon | $(mem "${mp[@]}") |"
	$pod rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 || true
fi
