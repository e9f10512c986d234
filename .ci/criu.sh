#!/bin/bash
# Install CRIU >= 4.2 from Debian forky (testing) beside the system, as root,
# for cove-runc checkpoint/restore. Idempotent: does nothing when it is
# installed and `criu check` passes.
#
# Why: bookworm's criu 3.17 (package criu) fails on newer kernels (vDSO
# layout). trixie's 4.1.1 checkpoints plain processes but cannot dump any
# TCP socket on Linux 6.18: getsockopt(SO_PASSCRED/SO_PASSSEC) on an inet
# socket returns EOPNOTSUPP there, and 4.1.1 treats that as fatal. forky's
# 4.2.1 handles it. Its libraries (forky's libc6 and friends) must not
# replace bookworm's, so the packages are only unpacked (`dpkg -x`) into
# $PREFIX and criu runs through that prefix's dynamic loader. Nothing of the
# system's apt state is touched: a private sources list, lists and cache live
# in a temporary directory.
#
#   sudo .ci/criu.sh            # install into /opt/cove-criu + /usr/local/sbin/cove-criu
#   .ci/criu.sh --check         # exit 0 when the wrapper works
#
# cove-runc uses /usr/local/sbin/cove-criu when it is in PATH and --criu is
# not given; Debian's /usr/sbin/criu stays as it is.
set -euo pipefail

PREFIX=${COVE_CRIU_PREFIX:-/opt/cove-criu}
WRAPPER=${COVE_CRIU_WRAPPER:-/usr/local/sbin/cove-criu}
SUITE=${COVE_CRIU_SUITE:-forky}
MIN_VERSION=4.2.0

# version prints criu's version ("4.2.1") through the wrapper.
version() { "$WRAPPER" --version 2>/dev/null | sed -n 's/^Version: *//p'; }

lib=$PREFIX/usr/lib/x86_64-linux-gnu

# wrapper prints the wrapper script. CRIU runs helpers (ip, iptables-save,
# iptables-restore) from PATH; engines may call the runtime with a PATH
# without the sbin directories, so the wrapper appends them.
wrapper() {
	cat <<EOF
#!/bin/sh
# CRIU from Debian $SUITE, run with its own libraries (.ci/criu.sh).
PATH="\${PATH:+\$PATH:}/usr/local/sbin:/usr/sbin:/sbin"
export PATH
exec $lib/ld-linux-x86-64.so.2 --library-path $lib $PREFIX/usr/sbin/criu "\$@"
EOF
}

# installWrapper (re)writes the wrapper when it differs from wrapper's.
installWrapper() {
	if [[ -f $WRAPPER && $(cat "$WRAPPER") == "$(wrapper)" ]]; then
		return
	fi
	mkdir -p "$(dirname "$WRAPPER")"
	wrapper >"$WRAPPER.tmp"
	chmod 755 "$WRAPPER.tmp"
	mv "$WRAPPER.tmp" "$WRAPPER"
}

works() {
	local v
	[[ -x $WRAPPER ]] || return 1
	v=$(version)
	[[ -n $v && $(printf '%s\n%s\n' "$MIN_VERSION" "$v" | sort -V | head -1) == "$MIN_VERSION" ]] &&
		"$WRAPPER" check >/dev/null 2>&1
}

if [[ ${1:-} == --check ]]; then
	works
	exit
fi
if [[ $(id -u) -ne 0 ]]; then
	if works; then exit 0; fi
	echo "criu.sh: run as root (sudo $0)" >&2
	exit 1
fi
# An installed prefix only needs its wrapper brought up to date.
if [[ -x $PREFIX/usr/sbin/criu ]]; then
	installWrapper
	if works; then
		exit 0
	fi
fi

# The Debian mirror the system's apt uses (deb822 or one-line format).
mirror=$(sed -n 's/^URIs: *\(\S*\/debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
if [[ -z $mirror ]]; then
	mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\?\(\S*\/debian\)\/\? .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
fi
mirror=${mirror:-http://deb.debian.org/debian}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
cat >"$tmp/etc/$SUITE.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tmp/etc"
	-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
	-o Dir::State::Status=/dev/null -o APT::Architecture=amd64 -o APT::Sandbox::User=root)
echo "criu.sh: fetching criu from $mirror $SUITE" >&2
apt-get "${apt_opts[@]}" -qq update
# criu's run-time closure in that suite, without recommends; checked below
# by running criu, so a missing library fails loudly.
mapfile -t pkgs < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends criu | grep -v '^[ <]' | sort -u)
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -qq download "${pkgs[@]}")

# Unpack next to the old prefix, then swap, so a failed run leaves the old one.
rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new"
for deb in "$tmp/debs"/*.deb; do
	dpkg -x "$deb" "$PREFIX.new"
done
rm -rf "$PREFIX.old"
if [[ -e $PREFIX ]]; then mv "$PREFIX" "$PREFIX.old"; fi
mv "$PREFIX.new" "$PREFIX"
rm -rf "$PREFIX.old"

installWrapper

if ! works; then
	echo "criu.sh: $WRAPPER (version $(version)) does not work: need >= $MIN_VERSION and a passing criu check" >&2
	"$WRAPPER" check >&2 || true
	exit 1
fi
echo "criu.sh: criu $(version) at $WRAPPER" >&2
