#!/bin/bash
# Install what building and testing cove needs on Debian (bookworm), as root.
# Idempotent and quiet: installs only missing packages, runs apt-get update
# only when something is missing. Used by .ci/run and README's quick start.
#
#   sudo .ci/deps.sh            # install
#   .ci/deps.sh --list          # print the package list
set -euo pipefail

# The one list of Debian packages (keep README in sync by pointing at it).
PACKAGES=(
	make git ca-certificates          # build
	busybox-static                    # test root filesystems (tests/fixtures)
	runc crun                         # peers: conformance baseline, benchmarks
	hyperfine time strace             # bench/runtime.sh, debugging
	gnuplot-nox                       # bench/suite.sh: one PNG chart per benchmark group
	shellcheck                        # lint stage of make test
	qemu-system-x86 linux-image-cloud-amd64 cpio xz-utils   # tests/cgroupv2 (pure v2 VM; xz for compressed modules)
	iproute2                          # network namespaces in tests
	procps                            # ps: cove-runc ps runs the host's (tests/integration/live_test.go)
	iperf3 jq nftables containernetworking-plugins   # bench/network.sh; nft to inspect cove's table; CNI networks (tests/network)
	containerd podman docker.io       # tests/clients: real engines driving cove-runc (pull conmon, docker-proxy)
	btrfs-progs e2fsprogs             # snapshot/quota tests: mkfs.btrfs; mkfs.ext4, resize2fs, e2fsck for loop-image quotas
	docker-registry skopeo curl python3   # tests/images (real registry, interop), bench/images.sh
	iptables util-linux               # CRIU runs iptables-save in a dumped netns; nsenter in checkpoint tests
	tini                              # cove run --init (tini-static bound into the container)
)
# Go is not in this list: Debian bookworm ships Go 1.19 and cove needs the
# version in go.mod. Install it from https://go.dev/dl/ (see README).

if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${PACKAGES[@]}"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: run as root (sudo $0)" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CRIU 4.2 for checkpoint/restore, beside Debian's criu (see .ci/criu.sh).
"$(dirname "$0")/criu.sh"

need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$(dirname "$0")/../go.mod")
if ! command -v go >/dev/null; then
	echo "deps.sh: go not found in PATH; install Go >= $need from https://go.dev/dl/" >&2
	exit 1
fi
have=$(go env GOVERSION | sed 's/^go//')
if [[ $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
	echo "deps.sh: go $have is older than go.mod's $need; install a newer Go from https://go.dev/dl/" >&2
	exit 1
fi
