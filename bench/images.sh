#!/bin/bash
# Image pull+unpack benchmark: cove vs podman vs skopeo vs ctr.
#
#   bench/images.sh [--quick]
#
# Generates (once, cached in $BENCH_IMAGES_WORK, default
# /var/tmp/cove-bench-images) an image of about 200 MB of incompressible
# data in 5 gzip layers as an OCI layout, starts Debian's docker-registry
# on 127.0.0.1:<free port> with private storage, pushes the image with
# skopeo, then times, in BENCH_RUNS alternating rounds (default 7;
# --quick: 2 rounds of cove, podman and the download only, for CI), a
# cold pull+unpack into an empty store by:
#   cove    cove --root R pull --tls-verify=false     (bin/cove or $COVE)
#   podman  podman --root R --runroot S pull --tls-verify=false
#   skopeo  skopeo copy docker://... containers-storage:[overlay@R+S]...
#   ctr     ctr images pull --plain-http (only if containerd is installed;
#           a private containerd is started for it)
# Each store is deleted (and the page cache's dirty data synced) before
# every run. Also times a plain download of the 5 blobs with curl (in
# parallel) as the floor. Prints medians, ratios to cove, and writes the
# report to bench/results/images-<date>.md. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${BENCH_RUNS:-7}
quick=false
for a in "$@"; do
	case $a in
	--quick) quick=true ;;
	-h | --help) sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "images.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
$quick && runs=2
[[ $(id -u) -eq 0 ]] || { echo "images.sh: needs root" >&2; exit 2; }
say() { echo "bench: $*" >&2; }

cove=${COVE:-$repo/bin/cove}
if [[ ! -x $cove ]]; then
	say "building $cove"
	(cd "$repo" && go build -o "$cove" ./cmd/cove)
fi
for t in docker-registry skopeo curl; do
	command -v "$t" >/dev/null || { echo "images.sh: $t is required (.ci/deps.sh installs it)" >&2; exit 1; }
done

work=${BENCH_IMAGES_WORK:-/var/tmp/cove-bench-images}
layout=$work/layout
mkdir -p "$work"

# --- the image: 5 layers x 40 MiB of random bytes, gzip -1 --------------
mkimage() {
	local tmp=$work/gen diffids="" layers="" hist="" i
	rm -rf "$tmp" "$layout"
	mkdir -p "$tmp" "$layout/blobs/sha256"
	for i in 1 2 3 4 5; do
		mkdir -p "$tmp/l$i/data"
		head -c $((40 * 1024 * 1024)) /dev/urandom >"$tmp/l$i/data/blob$i.bin"
		tar -C "$tmp/l$i" --owner=0 --group=0 --mtime=@0 -cf "$tmp/l$i.tar" data
		local diff; diff=$(sha256sum "$tmp/l$i.tar" | cut -d' ' -f1)
		gzip -1 -n -c "$tmp/l$i.tar" >"$tmp/l$i.tgz"
		local dg sz; dg=$(sha256sum "$tmp/l$i.tgz" | cut -d' ' -f1); sz=$(stat -c %s "$tmp/l$i.tgz")
		mv "$tmp/l$i.tgz" "$layout/blobs/sha256/$dg"
		diffids+="${diffids:+,}\"sha256:$diff\""
		layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$sz}"
		hist+="${hist:+,}{\"created\":\"2026-01-01T00:00:00Z\",\"created_by\":\"bench layer $i\"}"
	done
	printf '{"architecture":"amd64","os":"linux","created":"2026-01-01T00:00:00Z","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
		"$diffids" "$hist" >"$tmp/config.json"
	local cd cs; cd=$(sha256sum "$tmp/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$tmp/config.json")
	cp "$tmp/config.json" "$layout/blobs/sha256/$cd"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
		"$cd" "$cs" "$layers" >"$tmp/manifest.json"
	local md ms; md=$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$tmp/manifest.json")
	cp "$tmp/manifest.json" "$layout/blobs/sha256/$md"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
		"$md" "$ms" >"$layout/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
	rm -rf "$tmp"
}
if [[ ! -f $layout/index.json ]]; then
	say "generating the 5-layer image in $layout"
	mkimage
fi
size=$(du -sb "$layout/blobs" | cut -f1)

# --- a private registry ---------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run=$(mktemp -d /var/tmp/cove-bench-run.XXXXXX)
pids=()
cleanup() {
	declare -f ctrd_stop >/dev/null && ctrd_stop
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	wipe "$run/podman" "$run/podman-run" "$run/skopeo" "$run/skopeo-run"
	rm -rf "$run"
}
trap cleanup EXIT
cat >"$run/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $run/registry}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$run/registry.yml" >"$run/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/big:latest
skopeo copy -q --dest-tls-verify=false "oci:$layout:latest" "docker://$ref"

# --- contenders ------------------------------------------------------------
# containers/storage bind-mounts its overlay directory: unmount, then delete.
wipe() {
	local d
	for d in "$@"; do
		{ grep -o " ${d}[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done
		rm -rf "$d"
	done
}
names=() ; declare -A cmd clear
add() { names+=("$1"); cmd[$1]=$2; clear[$1]=$3; }
add cove "$cove --root $run/cove pull -q --tls-verify=false $ref" "rm -rf $run/cove"
if command -v podman >/dev/null; then
	add podman "podman --root $run/podman --runroot $run/podman-run --events-backend none pull -q --tls-verify=false $ref" \
		"wipe $run/podman $run/podman-run"
	$quick || add skopeo "skopeo copy -q --src-tls-verify=false docker://$ref containers-storage:[overlay@$run/skopeo+$run/skopeo-run]$ref" \
		"wipe $run/skopeo $run/skopeo-run"
fi
if ! $quick && command -v containerd >/dev/null && command -v ctr >/dev/null; then
	ctrd() {
		mkdir -p "$run/ctrd"
		containerd --root "$run/ctrd/root" --state "$run/ctrd/state" --address "$run/ctrd/sock" >/dev/null 2>&1 &
		ctrd_pid=$!
		for _ in $(seq 50); do ctr -a "$run/ctrd/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
	}
	ctrd_stop() { kill "$ctrd_pid" 2>/dev/null || true; wait "$ctrd_pid" 2>/dev/null || true; umount -R "$run/ctrd/state" 2>/dev/null || true; rm -rf "$run/ctrd"; }
	add ctr "ctr -a $run/ctrd/sock images pull --plain-http $ref" "ctrd_stop; ctrd"
	ctrd
fi
# the floor: the five blobs downloaded in parallel, nothing else
blobs=$(sed 's/"digest":"sha256:\([0-9a-f]*\)","size":[0-9]*}/\n\1\n/g' "$layout/blobs/sha256/$(sed 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/' "$layout/index.json")" |
	grep -E '^[0-9a-f]{64}$' | tail -5)
dl="cp=(); for b in $(echo "$blobs" | tr '\n' ' '); do curl -fs -o /dev/null http://127.0.0.1:$port/v2/bench/big/blobs/sha256:\$b & cp+=(\$!); done; wait \${cp[*]}"
add download "$dl" "true"

# --- rounds ----------------------------------------------------------------
declare -A times
for name in "${names[@]}"; do times[$name]=""; done
for ((r = 1; r <= runs; r++)); do
	for name in "${names[@]}"; do
		eval "${clear[$name]}"
		sync
		t0=$(date +%s%N)
		if ! eval "${cmd[$name]}" >/dev/null 2>"$run/err"; then
			say "$name failed: $(tail -3 "$run/err")"
			continue
		fi
		t1=$(date +%s%N)
		times[$name]+="$(((t1 - t0) / 1000000)) "
	done
	say "round $r/$runs done"
done
eval "${clear[cove]}"

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
cove_ms=$(echo "${times[cove]}" | median)
out=$repo/bench/results/images-$(date +%Y%m%d-%H%M%S).md
{
	echo "# Pull + unpack of a $((size / 1000000)) MB, 5-layer gzip image from a local registry"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $runs alternating rounds, cold stores; median wall time."
	echo
	echo "| tool | median ms | runs (ms) | vs cove |"
	echo "|---|---|---|---|"
	for name in "${names[@]}"; do
		m=$(echo "${times[$name]}" | median)
		ratio="-"
		[[ -n $m && -n $cove_ms && $cove_ms -gt 0 ]] && ratio=$(awk -v a="$m" -v b="$cove_ms" 'BEGIN {printf "%.2fx", a / b}')
		echo "| $name | ${m:-failed} | ${times[$name]} | $ratio |"
	done
} | tee "$out"
say "report: $out"
