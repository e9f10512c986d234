# shellcheck shell=bash
# Ratio tables and charts from bench_record TSV rows (see lib/common.sh),
# for bench/suite.sh. Sourced after lib/common.sh.
#
# Ratio of a cove subject C to a peer P for one metric: median(C)/median(P).
# Its spread: the ratio of the fastest runs, min(C)/min(P), to that of the
# slowest, max(C)/max(P) (sorted, so the bar always spans both), when both
# sides have min and max; otherwise no spread. For "higher is better"
# metrics (throughput) the ratio is still C/P, so > 1 means cove is better.
# Only positive medians make ratios (a noisy memory delta can be negative).

# ratio_rows GROUP < TSV: "metric<TAB>cove<TAB>peer<TAB>ratio<TAB>lo<TAB>hi<TAB>better"
# (lo and hi "-" when unknown), in the order the metrics were recorded.
ratio_rows() {
	awk -F '\t' -v g="$1" -v OFS='\t' '
	$1 != g { next }
	{
		m = $2; s = $3
		if (!(m in seen)) { seen[m] = 1; order[++nm] = m }
		k = m SUBSEP s
		if (!(k in med)) { subj[m, ++ns[m]] = s }
		med[k] = $5; mn[k] = $6; mx[k] = $7; better[m] = $9
	}
	function isnum(x) { return x ~ /^[0-9.]+(e[-+]?[0-9]+)?$/ && x + 0 > 0 }
	END {
		for (i = 1; i <= nm; i++) {
			m = order[i]
			for (a = 1; a <= ns[m]; a++) {
				c = subj[m, a]
				if (c !~ /^cove/) continue
				for (b = 1; b <= ns[m]; b++) {
					p = subj[m, b]
					if (p ~ /^cove/) continue
					kc = m SUBSEP c; kp = m SUBSEP p
					if (!isnum(med[kc]) || !isnum(med[kp])) continue
					r = med[kc] / med[kp]; lo = "-"; hi = "-"
					if (isnum(mn[kc]) && isnum(mn[kp]) && isnum(mx[kc]) && isnum(mx[kp])) {
						lo = mn[kc] / mn[kp]; hi = mx[kc] / mx[kp]
						if (lo > hi) { t = lo; lo = hi; hi = t }
						if (r < lo) lo = r
						if (r > hi) hi = r
						lo = sprintf("%.3f", lo); hi = sprintf("%.3f", hi)
					}
					print m, c, p, sprintf("%.3f", r), lo, hi, better[m]
				}
			}
		}
	}'
}

# values_table GROUP < TSV: Markdown table of every recorded value.
values_table() {
	printf '| metric | subject | median | min | max | n | unit |\n|---|---|--:|--:|--:|--:|---|\n'
	awk -F '\t' -v g="$1" '$1 == g { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $2, $3, $5, $6, $7, $8, $4 }'
}

# ratio_table GROUP < TSV: Markdown table of cove/peer ratios.
ratio_table() {
	local rows
	rows=$(ratio_rows "$1")
	if [[ -z $rows ]]; then
		echo "(no cove/peer pair with numbers in this group)"
		return
	fi
	printf '| metric | cove/peer | ratio | spread (fastest..slowest runs) | better |\n|---|---|--:|---|---|\n'
	awk -F '\t' '{ sp = ($5 == "-") ? "-" : $5 ".." $6
		printf "| %s | %s/%s | %.2f | %s | %s |\n", $1, $2, $3, $4, sp, $7 }' <<<"$rows"
}

# ratio_chart GROUP PNG TITLE < TSV: a PNG bar chart of the group's ratios
# (log scale, whiskers for the spread, a line at 1). Returns 1 without
# gnuplot or without ratios.
ratio_chart() {
	local group=$1 png=$2 title=$3 rows dat n
	command -v gnuplot >/dev/null || return 1
	rows=$(ratio_rows "$group")
	[[ -n $rows ]] || return 1
	dat=$(mktemp)
	# index, label, ratio, lo, hi (lo/hi = ratio when unknown)
	awk -F '\t' -v OFS='\t' '{ lab = $1 "\\n" $2 "/" $3; if ($7 == "higher") lab = lab "\\n(higher better)"
		gsub(/"/, "", lab); lo = ($5 == "-") ? $4 : $5; hi = ($6 == "-") ? $4 : $6
		print NR - 1, "\"" lab "\"", $4, lo, hi }' <<<"$rows" >"$dat"
	n=$(wc -l <"$dat")
	gnuplot <<EOF
set terminal pngcairo size $((n * 130 + 260 > 640 ? n * 130 + 260 : 640)),520 font "sans,10" noenhanced
set output "$png"
set title "$title" noenhanced
set ylabel "cove / peer, median (log scale; whiskers: fastest..slowest runs)"
set logscale y 2
set yrange [0.125:8]
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "0.8" 0.8, "1" 1, "1.25" 1.25, "2" 2, "4" 4, "8" 8)
set grid ytics
set xrange [-0.6:$n - 0.4]
set xtics rotate by 0 font "sans,8"
set style fill solid 0.6 border -1
set boxwidth 0.6
set key off
set datafile separator "\t"
plot 1 with lines lt 1 lc rgb "#cc0000" dt 2, \
     "$dat" using 1:(\$3 < 0.125 ? 0.125 : (\$3 > 8 ? 8 : \$3)):xtic(2) with boxes lc rgb "#4477aa", \
     "" using 1:3:(\$4 < 0.125 ? 0.125 : \$4):(\$5 > 8 ? 8 : \$5) with yerrorbars lc rgb "black" pt 7 ps 0 lw 1.5, \
     "" using 1:(\$5 > 6 ? 6 : \$5):(sprintf("%.2f", \$3)) with labels offset 0,0.8 font "sans,9"
EOF
	local rc=$?
	rm -f "$dat"
	return $rc
}
