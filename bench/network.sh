#!/bin/bash
# Network benchmark: a cove bridge network vs host loopback vs two network
# namespaces joined by a hand-made bridge and veths, side by side.
#
#   bench/network.sh [--quick]
#
# Paths measured (iperf3 single-stream TCP throughput, BENCH_SECS seconds
# each, default 5; and TCP request/response latency, one byte each way,
# mean of BENCH_RR round trips, default 20000), in BENCH_ROUNDS rounds
# (default 3) that alternate the paths; the median round is reported, so a
# burst of load from other processes hits all paths alike:
#   loopback     host -> 127.0.0.1
#   hand-made    netns -> netns over `ip link add type bridge` + veths
#   cove         container -> container on a cove network (library setup)
#   cove-port    host -> 127.0.0.1:published port (nftables DNAT, output chain)
#   cove-port-ns another netns -> host address:published port (DNAT, forward)
#   podman       container -> container on a podman bridge network (its own
#                network cbpod, private storage, runc; skipped if podman
#                or runc is missing or fails)
# plus network setup time per container and per network: BenchmarkAttach,
# BenchmarkDetach, BenchmarkCreate (tests/network). Prints a Markdown report and writes it to
# bench/results/network-<date>.md. Needs root, iperf3, Go.
# --quick: 1 round, 2 s per path, 5000 round trips, 20 attaches.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
secs=${BENCH_SECS:-5}
rrn=${BENCH_RR:-20000}
rounds=${BENCH_ROUNDS:-3}
attachn=100
for a in "$@"; do
	case $a in
	--quick) secs=2 rrn=5000 attachn=20 rounds=1 ;;
	-h | --help) sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "network.sh: unknown argument $a" >&2; exit 2 ;;
	esac
done
[[ $(id -u) -eq 0 ]] || { echo "network.sh: needs root" >&2; exit 2; }
say() { echo "bench: $*" >&2; }
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null; then
	say "installing iperf3 jq"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 jq >/dev/null 2>&1 || true
fi
for c in iperf3 jq go ip; do
	command -v "$c" >/dev/null || { echo "network.sh: $c is required" >&2; exit 1; }
done

work=$(mktemp -d /tmp/cove-netbench.XXXXXX)
nb=$work/netbench
fwd=$(cat /proc/sys/net/ipv4/ip_forward)
pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for f in "$work"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done
	[[ -x $nb ]] && "$nb" teardown "$work/state" 2>/dev/null
	ip netns delete cbh-a 2>/dev/null
	ip netns delete cbh-b 2>/dev/null
	ip link delete cbhbr 2>/dev/null
	if [[ -n ${pod[*]:-} ]]; then
		"${pod[@]}" rm -f -t 0 cbpod-a cbpod-b >/dev/null 2>&1
		"${pod[@]}" network rm -f cbpod >/dev/null 2>&1
		# CNI leaves the bridge of a removed network, its IPAM directory
		# and (when this run made them) its firewall chains behind.
		[[ -n ${pod_br:-} ]] && ip link delete "$pod_br" 2>/dev/null
		rm -rf /var/lib/cni/networks/cbpod
		if [[ ${cni_chains_before:-1} -eq 0 ]] && command -v iptables >/dev/null; then
			iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null
			for c in CNI-FORWARD CNI-ADMIN; do iptables -F "$c" 2>/dev/null && iptables -X "$c" 2>/dev/null; done
		fi
	fi
	echo "$fwd" >/proc/sys/net/ipv4/ip_forward
	rm -rf "$work"
}
trap cleanup EXIT

say "building the helper"
(cd "$repo" && go build -o "$nb" ./tests/network/netbench)

say "hand-made bridge + veths (cbhbr, netns cbh-a/cbh-b, 10.213.0.0/24)"
ip link add cbhbr type bridge
ip addr add 10.213.0.1/24 dev cbhbr
ip link set cbhbr up
for x in a b; do
	ip netns add "cbh-$x"
	ip link add "cbh-$x-h" type veth peer name eth0 netns "cbh-$x"
	ip link set "cbh-$x-h" master cbhbr up
	ip -n "cbh-$x" addr add "10.213.0.1$([[ $x == a ]] && echo 1 || echo 2)/24" dev eth0
	ip -n "cbh-$x" link set eth0 up
	ip -n "cbh-$x" link set lo up
	ip -n "cbh-$x" route add default via 10.213.0.1
done

say "cove network (bridge coveb0, netns coveb-a/coveb-b, ports 15201 17000 published)"
"$nb" setup "$work/state" >"$work/setup.out"
cove_b=$(awk '$1 == "b" { print $2 }' "$work/setup.out")

# Podman's bridge network, for the same measurement between two of its
# containers; entered by pid (nsenter) instead of a named netns.
pod=() pod_b=
if command -v podman >/dev/null && [[ -x /usr/sbin/runc ]]; then
	say "podman bridge network (cbpod, 10.214.0.0/24, two busybox containers, runc)"
	cni_chains_before=1
	if command -v iptables >/dev/null && ! iptables -S CNI-FORWARD >/dev/null 2>&1; then
		cni_chains_before=0
	fi
	pod=(podman --root "$work/pod/storage" --runroot "$work/pod/run" --cgroup-manager cgroupfs --runtime /usr/sbin/runc)
	if "$repo/tests/fixtures/mkrootfs.sh" "$work/pod/rootfs" >/dev/null 2>&1 &&
		tar -C "$work/pod/rootfs" -cf "$work/pod/bb.tar" . &&
		"${pod[@]}" import "$work/pod/bb.tar" localhost/cbpod-busybox >/dev/null 2>&1 &&
		"${pod[@]}" network create --subnet 10.214.0.0/24 cbpod >/dev/null 2>&1 &&
		pod_br=$("${pod[@]}" network inspect -f '{{.NetworkInterface}}' cbpod 2>/dev/null) &&
		for c in cbpod-a cbpod-b; do
			"${pod[@]}" run -d --name "$c" --network cbpod --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
				localhost/cbpod-busybox sleep 100000 >/dev/null 2>&1 || exit 1
		done; then
		pod_a="pid:$("${pod[@]}" inspect -f '{{.State.Pid}}' cbpod-a)"
		pod_b_pid="pid:$("${pod[@]}" inspect -f '{{.State.Pid}}' cbpod-b)"
		pod_b=$("${pod[@]}" inspect -f '{{.NetworkSettings.Networks.cbpod.IPAddress}}' cbpod-b)
	else
		say "podman skipped: setting up its network or containers failed"
		pod_b=
	fi
fi
[[ -n $pod_b ]] || say "podman path skipped (no podman, no runc, or setup failed)"

# enter NETNS|pid:N|"": the command prefix that runs in that network namespace.
enter() {
	case $1 in
	"") ip=() ;;
	pid:*) ip=(nsenter -t "${1#pid:}" -n) ;;
	*) ip=(ip netns exec "$1") ;;
	esac
}

# Servers: iperf3 and the request/response echo, in each place.
serve() { # NETNS|pid:N|"" IPERFPORT RRPORT
	local ns=$1 ip=() tag=${1:-host}
	tag=${tag/:/-}
	enter "$ns"
	"${ip[@]}" iperf3 -s -D -p "$2" --pidfile "$work/iperf-$tag.pid" >/dev/null
	"${ip[@]}" "$nb" rr-server ":$3" &
	pids+=($!)
}
serve "" 5301 7300
serve cbh-b 5201 7000
serve coveb-b 5201 7000
[[ -n $pod_b ]] && serve "$pod_b_pid" 5201 7000
sleep 0.5

# measure NAME NETNS|"" HOST IPERFPORT RRPORT: one round of one path,
# appended to $work/NAME.gbit and $work/NAME.us.
paths=(loopback hand-made cove cove-port cove-port-ns)
[[ -n $pod_b ]] && paths+=(podman)
measure() {
	local ip=() bps
	enter "$2"
	say "$1: iperf3 ${secs}s to $3:$4"
	bps=$("${ip[@]}" iperf3 -c "$3" -p "$4" -t "$secs" -J | jq '.end.sum_received.bits_per_second')
	awk -v b="$bps" 'BEGIN { printf "%.2f\n", b / 1e9 }' >>"$work/$1.gbit"
	"${ip[@]}" "$nb" rr "$3:$5" "$rrn" >>"$work/$1.us"
}
for ((r = 1; r <= rounds; r++)); do
	say "round $r of $rounds"
	measure loopback "" 127.0.0.1 5301 7300
	measure hand-made cbh-a 10.213.0.12 5201 7000
	measure cove coveb-a "$cove_b" 5201 7000
	measure cove-port "" 127.0.0.1 15201 17000
	measure cove-port-ns cbh-a 10.213.0.1 15201 17000
	[[ -n $pod_b ]] && measure podman "$pod_a" "$pod_b" 5201 7000
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
gbits=() lat=()
for p in "${paths[@]}"; do
	gbits+=("$(median "$work/$p.gbit")")
	lat+=("$(median "$work/$p.us")")
done

say "attach/detach time (go test -bench, ${attachn} each)"
bench_out=$(cd "$repo" && go test -count=1 -run '^$' -bench 'BenchmarkAttach|BenchmarkDetach|BenchmarkCreate' -benchtime "${attachn}x" ./tests/network/ 2>&1) ||
	{ echo "$bench_out" >&2; exit 1; }
ms() { awk -v n="$1" '$1 ~ n { printf "%.2f", $3 / 1e6 }' <<<"$bench_out"; }
attach_plain=$(ms '^BenchmarkAttach/plain-[0-9]')
attach_port=$(ms '^BenchmarkAttach/port-[0-9]')
attach_busy=$(ms '^BenchmarkAttach/port-with-100-others-[0-9]')
detach=$(ms '^BenchmarkDetach-[0-9]')
create=$(ms '^BenchmarkCreate-[0-9]')

stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$repo/bench/results"
report=$repo/bench/results/network-$stamp.md
{
	echo "# Network benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r))"
	echo
	echo "iperf3 $(iperf3 --version | awk 'NR==1 {print $2}'), one TCP stream, ${secs}s per path; latency: mean of ${rrn} one-byte TCP round trips;"
	echo "median of $rounds round(s); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "| path | Gbit/s | vs loopback | vs hand-made | RR latency µs | vs hand-made |"
	echo "|---|---:|---:|---:|---:|---:|"
	for i in "${!paths[@]}"; do
		awk -v n="${paths[$i]}" -v g="${gbits[$i]}" -v l="${lat[$i]}" -v g0="${gbits[0]}" -v g1="${gbits[1]}" -v l1="${lat[1]}" \
			'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.1f | %.2f |\n", n, g, g / g0, g / g1, l, l / l1 }'
	done
	echo
	echo "Network setup per container (BenchmarkAttach, existing namespace, state under flock):"
	echo
	echo "| operation | ms |"
	echo "|---|---:|"
	echo "| attach (veth, address, route) | $attach_plain |"
	echo "| attach with one published port | $attach_port |"
	echo "| the same with 100 other containers attached (each with a port) | $attach_busy |"
	echo "| detach (namespace still alive) | $detach |"
	echo "| network create (bridge, addresses, nftables rules) | $create |"
	if [[ -n $pod_b ]]; then
		echo
		awk -v c="${gbits[2]}" -v p="${gbits[5]}" -v lc="${lat[2]}" -v lp="${lat[5]}" \
			'BEGIN { printf "- cove/podman container to container: %.2f (throughput), %.2f (latency)\n", c / p, lc / lp }'
	else
		echo
		echo "- podman: skipped (not installed, no runc, or its network setup failed)"
	fi
} | tee "$report"
say "report written to ${report#"$repo"/}"
