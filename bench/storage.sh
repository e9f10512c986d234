#!/bin/bash
# Storage benchmark: the cost of disk quotas on a container's writable
# layer, per quota driver, against an unquota'd overlay on the same kind of
# filesystem.
#
#   bench/storage.sh [--quick]
#
# Layers measured (tests/storage/storagebench):
#   overlay (ext4, no quota)      the host filesystem, as without --storage-opt
#   overlay + loop ext4 image     upper/work on a loop-mounted ext4 image
#   overlay on btrfs, no quota    a loop-backed btrfs without quotas
#   overlay + btrfs qgroup        upper/work in a subvolume with a qgroup limit
#   btrfs subvolume + qgroup      the btrfs snapshot driver with a limit
# Write throughput: dd if=/dev/zero bs=1M conv=fsync of BENCH_MIB MiB
# (default 256) into each mounted layer, BENCH_ROUNDS rounds (default 5)
# alternating the layers, median. Prepare time: BENCH_PREPARE layers
# (default 20) prepared and removed per driver, medians. The btrfs
# filesystems are images on loop devices (the VM has no spare disk), so
# compare the btrfs rows with each other and the loop row with the first.
# Prints a Markdown report and writes it to bench/results/storage-<date>.md.
# Needs root, Go, mkfs.btrfs, mkfs.ext4. --quick: 32 MiB, 1 round, 3 prepares.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
mib=${BENCH_MIB:-256}
rounds=${BENCH_ROUNDS:-5}
prepare=${BENCH_PREPARE:-20}
for a in "$@"; do
	case $a in
	--quick) mib=32 rounds=1 prepare=3 ;;
	-h | --help) sed -n '2,24s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "storage.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "storage.sh: needs root" >&2; exit 2; }
for c in go dd mkfs.btrfs mkfs.ext4 resize2fs; do
	command -v "$c" >/dev/null || { echo "storage.sh: $c is required" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/cove-storagebench.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && go build -o "$work/storagebench" ./tests/storage/storagebench)
report=$("$work/storagebench" -work "$work/w" -mib "$mib" -rounds "$rounds" -prepare "$prepare")
out="$repo/bench/results/storage-$(date -u +%Y%m%d-%H%M%S).md"
mkdir -p "$(dirname "$out")"
{
	echo "# Storage quota drivers ($(date -u +%F), $(uname -r), $(nproc) CPUs)"
	echo
	echo "$report"
} | tee "$out"
