#!/bin/bash
# Container start time per disk-quota driver: `cove run --rm IMG true`
# with and without --storage-opt size= on each kind of store.
#
#   bench/quota-start.sh [--quick]
#
# Stores: the host's ext4 (overlay; the cap is a loop-mounted ext4 image)
# and a loop-backed btrfs (overlay on btrfs; the cap is a btrfs qgroup).
# BENCH_RUNS runs per case (default 20; --quick: 5), cases taking turns
# within each round; prints medians and the ratio of each capped start to
# the uncapped one on the same store. Needs root, mkfs.btrfs, mkfs.ext4.
# Binaries: $COVE_BIN (default ./bin) with cove, cove-monitor, cove-runc.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib/common.sh
. "$here/lib/common.sh"
runs=${BENCH_RUNS:-20}
for a in "$@"; do
	case $a in
	--quick) runs=5 ;;
	-h | --help) sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "quota-start.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "quota-start.sh: needs root" >&2; exit 2; }
bin=${COVE_BIN:-$repo/bin}
for b in cove cove-monitor cove-runc; do
	[[ -x $bin/$b ]] || { echo "quota-start.sh: $bin/$b missing (make build)" >&2; exit 1; }
done
for c in mkfs.btrfs mkfs.ext4; do
	command -v "$c" >/dev/null || { echo "quota-start.sh: $c is required" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/cove-bench-quota.XXXXXX)
run=$(mktemp -d /tmp/cqb.XXXXXX)
cleanup() {
	set +e
	local r ids
	for r in "$work/ext4" "$work/btrfs/root"; do
		[[ -d $r ]] || continue
		ids=$(COVE_RUNROOT=$run "$bin/cove" --root "$r" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086 # one id per word
		[[ -z $ids ]] || COVE_RUNROOT=$run "$bin/cove" --root "$r" rm -f $ids >/dev/null 2>&1
	done
	awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -rf "$work" "$run"
}
trap cleanup EXIT

"$repo/tests/fixtures/mkrootfs.sh" "$work/rootfs" >/dev/null
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
mkdir -p "$work/btrfs"
truncate -s 1G "$work/btrfs.img"
mkfs.btrfs -q "$work/btrfs.img" >/dev/null
mount -o loop "$work/btrfs.img" "$work/btrfs"

img=localhost/bench-quota:latest
cove() { COVE_RUNROOT=$run COVE_DEFAULT_NETWORK=none "$bin/cove" --root "$1" "${@:2}"; }
for r in "$work/ext4" "$work/btrfs/root"; do
	cove "$r" image import "$work/busybox.tar" "$img" >/dev/null
	cove "$r" run --rm "$img" true # warm up
done

cases=("ext4:none" "ext4:size" "btrfs:none" "btrfs:size")
declare -A times
for ((i = 0; i < runs; i++)); do
	for c in "${cases[@]}"; do
		store=$work/ext4
		[[ ${c%%:*} == btrfs ]] && store=$work/btrfs/root
		opt=()
		[[ ${c#*:} == size ]] && opt=(--storage-opt size=64m)
		t0=$(bench_now_us)
		cove "$store" run --rm "${opt[@]}" "$img" true
		t1=$(bench_now_us)
		times[$c]+="$(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) "
	done
done

driver() { cove "$1" info | awk -F': ' '/Quota Driver \(--storage-opt/ {print $2}'; }
echo "| store | cap | driver | median ms | min | max | ratio to uncapped |"
echo "|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
	read -r med min max n <<<"$(echo "${times[$c]}" | bench_stats)"
	store=${c%%:*}
	if [[ ${c#*:} == none ]]; then
		base=$med
		d="-"
		ratio="1.00"
	else
		r=$work/ext4
		[[ $store == btrfs ]] && r=$work/btrfs/root
		d=$(driver "$r")
		ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
	fi
	echo "| $store | ${c#*:} | $d | $med | $min | $max | $ratio |"
	bench_record quota-start "run --rm ($store, ${c#*:})" "cove-$store-${c#*:}" ms "$med" "$min" "$max" "$n"
done
