# shellcheck shell=bash
# Turns the Markdown reports of bench groups that do not call bench_record
# (runtime, engine, checkpoint, images, network, live) into bench_record TSV rows,
# so bench/suite.sh can compute ratios and draw charts for every group.
# Sourced by suite.sh after lib/common.sh. Each parser reads the group's
# report on stdin and writes rows with bench_record (BENCH_DATA set).

# md_tables: every Markdown table row on stdin as "T<TAB>cell<TAB>cell...",
# T counting tables from 1; separator rows (|---|) are dropped and the
# header row of each table is printed with T prefixed by "h".
md_tables() {
	awk 'BEGIN { FS = "|"; OFS = "\t"; t = 0; in_t = 0 }
	/^\|/ {
		if ($0 ~ /^\|[-: |]+\|$/) next
		line = ""
		for (i = 2; i < NF; i++) { c = $i; gsub(/^ +| +$/, "", c); line = line "\t" c }
		if (!in_t) { t++; in_t = 1; print "h" t line; next }
		print t line; next }
	{ in_t = 0 }'
}

# num S: the leading number of S ("35.8", "1.21x" -> 1.21), or "-".
num() {
	[[ $1 =~ ^-?[0-9]+(\.[0-9]+)? ]] && echo "${BASH_REMATCH[0]}" || echo -
}

# parse_runtime: bench/runtime.sh (run median/min/max, net, RSS, split, exec).
parse_runtime() {
	local t name ver med mn mx net rss cr st de
	while IFS=$'\t' read -r t name ver med mn mx net rss cr st de; do
		case $t in
		1)
			[[ $name == "(wrapper only)" ]] && continue
			bench_record runtime "run /bin/true" "$name" ms "$med" "$mn" "$mx" -
			bench_record runtime "run, net of wrapper" "$name" ms "$net" - - -
			bench_record runtime "peak RSS" "$name" MiB "$rss" - - -
			bench_record runtime "create (net)" "$name" ms "$cr" - - -
			bench_record runtime "start (net)" "$name" ms "$st" - - -
			bench_record runtime "delete -f (net)" "$name" ms "$de" - - -
			;;
		2)
			# exec table: runtime | median | min | max | net
			[[ $name == "(wrapper only)" ]] && continue
			bench_record runtime "exec /bin/true" "$name" ms "$ver" "$med" "$mn" -
			;;
		esac
	done < <(md_tables)
}

# parse_checkpoint: bench/checkpoint.sh (medians only).
parse_checkpoint() {
	local t name ck rs kib
	while IFS=$'\t' read -r t name ck rs kib; do
		[[ $t == 1 ]] || continue
		bench_record checkpoint checkpoint "$name" ms "$(num "$ck")" - - -
		bench_record checkpoint restore "$name" ms "$(num "$rs")" - - -
		bench_record checkpoint "image size" "$name" KiB "$(num "$kib")" - - -
	done < <(md_tables)
}

# parse_images: bench/images.sh (median and the individual runs).
parse_images() {
	local t name med runs s
	while IFS=$'\t' read -r t name med runs _; do
		[[ $t == 1 ]] || continue
		[[ $name == download ]] && name="download only (floor)"
		read -r _ mn mx n <<<"$(bench_stats <<<"$runs")"
		s=$(num "$med")
		[[ $s == - ]] && continue
		bench_record images "pull+unpack" "$name" ms "$s" "$mn" "$mx" "$n"
	done < <(md_tables)
}

# parse_network: bench/network.sh (throughput higher-better, latency lower-better).
parse_network() {
	local t name gb _a _b lat
	while IFS=$'\t' read -r t name gb _a _b lat _; do
		[[ $t == 1 ]] || continue
		bench_record network "TCP throughput" "$name" Gbit/s "$(num "$gb")" - - - higher
		bench_record network "TCP RR latency" "$name" us "$(num "$lat")" - - -
	done < <(md_tables)
}

# parse_live: bench/live.sh ("median (min-max)" per runtime column).
parse_live() {
	local -a head=()
	local line t i cell med mn mx
	while IFS= read -r line; do
		IFS=$'\t' read -r -a f <<<"$line"
		t=${f[0]}
		if [[ $t == h1 ]]; then
			head=("${f[@]}")
			continue
		fi
		[[ $t == 1 ]] || continue
		for ((i = 2; i < ${#f[@]}; i++)); do
			[[ ${head[$i]:-} == *" ms (min-max)" ]] || continue
			cell=${f[$i]}
			[[ $cell =~ ^([0-9.]+)\ \(([0-9.]+)-([0-9.]+)\) ]] || continue
			med=${BASH_REMATCH[1]} mn=${BASH_REMATCH[2]} mx=${BASH_REMATCH[3]}
			bench_record live "${f[1]}" "${head[$i]%% ms (min-max)}" ms "$med" "$mn" "$mx" -
		done
	done < <(md_tables)
}

# parse_engine: bench/engine.sh (run --rm medians; supervisor RSS and PSS).
parse_engine() {
	local t name a b
	while IFS=$'\t' read -r t name a b _; do
		case $t in
		1) bench_record engine "run --rm true" "$name" ms "$(num "$a")" - - - ;;
		2)
			bench_record engine "supervisor RSS" "$name" KiB "$(num "$a")" - - -
			bench_record engine "supervisor PSS" "$name" KiB "$(num "$b")" - - -
			;;
		esac
	done < <(md_tables)
}
