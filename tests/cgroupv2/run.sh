#!/bin/bash
# Runs Go test binaries as root on a pure cgroup v2 kernel: Debian's cloud
# kernel booted under qemu (TCG, no KVM) with a throwaway busybox initramfs.
# Needs no network once the packages below are installed.
#
#   tests/cgroupv2/run.sh            # from anywhere inside the repository
#   COVE_VM_TIMEOUT=600 tests/cgroupv2/run.sh
#
# Prints the guest's test output; exits non-zero when a test fails, the
# guest's result line is missing, or the time limit is hit.
set -euo pipefail

# Packages whose tests run in the guest (go test -c, static).
PACKAGES=(
	./internal/runtime/cgroups
)
# Whole-run time limit in seconds (build excluded).
TIMEOUT=${COVE_VM_TIMEOUT:-300}
# Kernel modules loaded in the guest (brd: a RAM disk for io.max tests).
MODULES=(kernel/drivers/block/brd.ko)
DEBS=(qemu-system-x86 linux-image-cloud-amd64 busybox-static cpio)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

missing=()
for p in "${DEBS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "cgroupv2: installing ${missing[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

kernel=$(ls /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n1)
kver=${kernel#/boot/vmlinuz-}

work=$(mktemp -d /tmp/cove-cgroupv2.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,lib/modules}
cp /bin/busybox "$root/bin/busybox"

for m in "${MODULES[@]}"; do
	src=/lib/modules/$kver/$m
	if [[ -f $src ]]; then
		cp "$src" "$root/lib/modules/"
	elif [[ -f $src.xz ]]; then
		xz -dc "$src.xz" >"$root/lib/modules/$(basename "$m")"
	else
		echo "cgroupv2: module $m not found for $kver (tests needing it will skip)" >&2
	fi
done

for pkg in "${PACKAGES[@]}"; do
	name=$(echo "${pkg#./}" | tr / _)
	(cd "$repo" && CGO_ENABLED=0 go test -c -o "$root/tests/$name.test" "$pkg")
done
ls "$root"/tests/*.test >/dev/null 2>&1 || { echo "cgroupv2: no test binaries built" >&2; exit 1; }

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
for m in /lib/modules/*.ko; do
	[ -f "$m" ] && insmod "$m" rd_nr=1 rd_size=8192
done
echo "cgroupv2: kernel $(uname -r), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
rc=0
for t in /tests/*.test; do
	echo "cgroupv2: running $t"
	(cd /tmp && COVE_EXPECT_CGROUP=v2 "$t" -test.v -test.timeout 250s) || rc=1
done
echo "COVE_CGROUPV2_RESULT rc=$rc"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

start=$(date +%s)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append 'console=ttyS0 rdinit=/init panic=-1 quiet' </dev/null |
	tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' | tee "$work/console.log"
qrc=${PIPESTATUS[0]}
set -e
echo "cgroupv2: guest ran $(($(date +%s) - start)) s (qemu exit $qrc)"

result=$(sed -n 's/^COVE_CGROUPV2_RESULT rc=\([0-9]*\).*/\1/p' "$work/console.log" | tail -n1)
if [[ -z $result ]]; then
	[[ $qrc == 124 ]] && echo "cgroupv2: FAIL: time limit of $TIMEOUT s hit" >&2
	echo "cgroupv2: FAIL: no result line from the guest" >&2
	exit 1
fi
if [[ $result != 0 ]]; then
	echo "cgroupv2: FAIL: tests failed in the guest" >&2
	exit 1
fi
echo "cgroupv2: PASS"
