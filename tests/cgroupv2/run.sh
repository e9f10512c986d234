#!/bin/bash
# Runs Go test binaries as root on a pure cgroup v2 kernel: Debian's cloud
# kernel booted under qemu (TCG, no KVM) with a throwaway busybox initramfs.
# Needs no network once the packages below are installed.
#
#   tests/cgroupv2/run.sh            # from anywhere inside the repository
#   COVE_VM_TIMEOUT=600 tests/cgroupv2/run.sh
#   COVE_VM_VERBOSE=1 tests/cgroupv2/run.sh   # the whole guest console
#   COVE_VM_RUN='TestLive|TestStats' tests/cgroupv2/run.sh   # only tests matching (go test -run)
#
# The unit tests of PACKAGES run first, then the integration tests
# (./tests/integration) drive a static cove-runc against real containers in
# the guest, then the engine's resource tests (./tests/engine, ENGINE_RUN)
# drive static cove, cove-monitor and cove-runc with a busybox image made on
# the host (COVE_BIN, COVE_ROOTFS_TAR); COVE_VM_RUN replaces ENGINE_RUN. The guest's root is a tmpfs reached by switch_root, not the
# initramfs itself: pivot_root(2) refuses to move the initramfs.
#
# Prints a per-test summary; on failure, the whole guest console. Exits
# non-zero when a test fails, the guest's result line is missing, or the
# time limit is hit.
set -euo pipefail

# Packages whose tests run in the guest (go test -c, static).
PACKAGES=(
	./internal/runtime/cgroups
)
# The runtime's integration tests, run against the static cove-runc.
INTEGRATION=./tests/integration
# The engine's tests run in the guest: its resource limits and a smoke
# test (the storage quota tests need loop devices and btrfs: host only).
ENGINE=./tests/engine
ENGINE_RUN='^(TestEngineResources.*|TestEngineRunForeground|TestEngineEvents)$'
# Whole-run time limit in seconds (build excluded).
TIMEOUT=${COVE_VM_TIMEOUT:-360}
# Guest memory in MiB.
MEMORY=${COVE_VM_MEMORY:-512}
# Kernel modules loaded in the guest (brd: a 16 MiB RAM disk /dev/ram0 for
# io.max tests; overlay: the engine's container layers).
MODULES=(kernel/drivers/block/brd.ko kernel/fs/overlayfs/overlay.ko)
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
mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,run,tests,opt/cove,lib/modules,newroot,var/lib/cove}
# Users for the runtime's owner lookups (list shows "root", not "#0").
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
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

build() { # quiet on success, the compiler's output on failure
	local out
	if ! out=$(cd "$repo" && "$@" 2>&1); then
		printf 'cgroupv2: build failed: %s\n%s\n' "$*" "$out" >&2
		exit 1
	fi
}
strip='-s -w'
for pkg in "${PACKAGES[@]}" "$INTEGRATION" "$ENGINE"; do
	name=$(echo "${pkg#./}" | tr / _)
	build env CGO_ENABLED=0 go test -c -tags osusergo,netgo -ldflags "$strip" -o "$root/tests/$name.test" "$pkg"
done
# cove-runc has a C constructor (internal/runtime/nsexec): cgo, linked static.
build env CGO_ENABLED=1 go build -tags osusergo,netgo \
	-ldflags "$strip -linkmode external -extldflags -static" -o "$root/opt/cove/cove-runc" ./cmd/cove-runc
build env CGO_ENABLED=0 go build -ldflags "$strip" -o "$root/opt/cove/recvtty" ./internal/runtime/console/cmd/recvtty
for cmd in cove cove-monitor; do
	build env CGO_ENABLED=0 go build -tags osusergo,netgo -ldflags "$strip" -o "$root/opt/cove/$cmd" ./cmd/$cmd
done
"$repo/tests/fixtures/mkrootfs.sh" "$work/rootfs"
tar -C "$work/rootfs" -cf "$root/opt/cove/busybox.tar" .
rm -rf "$work/rootfs"
build env CGO_ENABLED=0 go build -ldflags "$strip" -o "$root/opt/cove/sysc" ./tests/integration/testdata/sysc
ls "$root"/tests/*.test >/dev/null 2>&1 || { echo "cgroupv2: no test binaries built" >&2; exit 1; }

# Stage 1 copies the initramfs into a tmpfs and switches root to it, so that
# the runtime's pivot_root works in the guest.
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t tmpfs -o mode=0755 root /newroot
for d in /*; do
	case $d in /newroot | /init) ;; *) /bin/busybox cp -a "$d" /newroot/ ;; esac
done
exec /bin/busybox switch_root /newroot /bin/busybox sh /stage2
INIT
cat >"$root/stage2" <<'INIT'
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
for m in /lib/modules/*.ko; do
	case $m in
	*/brd.ko) insmod "$m" rd_nr=1 rd_size=16384 ;;
	*.ko) insmod "$m" ;;
	esac
done
echo "cgroupv2: kernel $(uname -r), $(grep MemTotal /proc/meminfo | tr -s ' '), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
export COVE_EXPECT_CGROUP=v2 COVE_IN_VM=1 COVE_RUNC=/opt/cove/cove-runc COVE_RECVTTY=/opt/cove/recvtty COVE_SYSC=/opt/cove/sysc
export COVE_BIN=/opt/cove COVE_ROOTFS_TAR=/opt/cove/busybox.tar
rc=0
filter=$(cat /run-filter)
for t in /tests/*.test; do
	echo "cgroupv2: running $t"
	s=$(date +%s)
	f=$filter
	case $t in */tests_engine.test) f=${filter:-$(cat /engine-filter)} ;; esac
	(cd /tmp && "$t" -test.v -test.timeout 240s ${f:+"-test.run=$f"}) || rc=1
	echo "cgroupv2: $t took $(($(date +%s) - s)) s"
done
echo "COVE_CGROUPV2_RESULT rc=$rc"
poweroff -f
INIT
chmod +x "$root/init"
printf '%s' "${COVE_VM_RUN:-}" >"$root/run-filter"
printf '%s' "$ENGINE_RUN" >"$root/engine-filter"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

start=$(date +%s)
set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m "$MEMORY" -smp 1 -nographic -no-reboot \
	-kernel "$kernel" -initrd "$work/initramfs.gz" \
	-append 'console=ttyS0 rdinit=/init panic=-1 quiet' </dev/null 2>&1 |
	tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' >"$work/console.log"
qrc=${PIPESTATUS[0]}
set -e
took=$(($(date +%s) - start))

result=$(sed -n 's/^COVE_CGROUPV2_RESULT rc=\([0-9]*\).*/\1/p' "$work/console.log" | tail -n1)
if [[ ${COVE_VM_VERBOSE:-} == 1 || $result != 0 ]]; then
	cat "$work/console.log"
else
	# Summary: every test's verdict, skip reasons, per-binary times.
	awk '/^ *--- (PASS|FAIL|SKIP)/ { print; skip = /SKIP/; next }
		skip && /^ +[^ -]/ { print; next } { skip = 0 }
		/^(ok|PASS|FAIL)$/ { print }
		# firmware escapes may precede the first guest line
		match($0, /cgroupv2: (kernel |running |\/tests\/).*/) { print substr($0, RSTART) }' "$work/console.log"
fi
echo "cgroupv2: guest ran $took s (qemu exit $qrc)"
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
