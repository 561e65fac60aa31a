#!/usr/bin/env bash
# Triage benchmark: `tripcap analyze` against
# `tshark -q -z conv,ip -z conv,tcp -z io,phs` on the same capture.
#
# bench/triage/gen writes a ~1 GB pcap of mixed synthetic traffic (TCP bulk
# transfers with handshakes, ACKs, retransmissions and resets, TLS and HTTP
# starts, DNS, QUIC-like UDP, ICMP; a tenth IPv6) under /tmp; nothing is
# sent on any network. The file is read once to warm the page cache, then
# the two tools alternate (A B A B …). Reported per run and as medians: wall
# time, CPU time (user+system), peak RSS (GNU time -v), and the
# tshark/tripcap ratios of the medians. The machine is shared: CPU time is
# the steadier figure. Both tools' packet counts are checked to agree.
#
# Usage: bench/triage/run.sh [-s BYTES] [-r ROUNDS] [-b TRIPCAP]
# (-b uses a tripcap binary already built instead of building cmd/tripcap)
# Needs go, tshark and GNU time (installed with apt-get when missing and root).
set -euo pipefail

size=1073741824
rounds=3
bin=
while getopts "s:r:b:" opt; do
	case $opt in
	s) size=$OPTARG ;;
	r) rounds=$OPTARG ;;
	b) bin=$OPTARG ;;
	*) echo "usage: $0 [-s BYTES] [-r ROUNDS] [-b TRIPCAP]" >&2; exit 2 ;;
	esac
done

if [ ! -x /usr/bin/time ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
	else
		echo "bench: GNU time (/usr/bin/time) is not installed" >&2
		exit 1
	fi
fi
for tool in go tshark; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/tripcap-triage-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ -n "$bin" ]; then
	cp "$bin" "$work/tripcap"
else
	(cd "$repo" && CGO_ENABLED=0 go build -o "$work/tripcap" ./cmd/tripcap)
fi
(cd "$repo" && go build -o "$work/gen" ./bench/triage/gen)

file=$work/mixed.pcap
echo "generating $size bytes of mixed traffic..."
"$work/gen" -o "$file" -size "$size"
cat "$file" >/dev/null
bytes=$(stat -c %s "$file")

# run NAME CMD...: one timed run; appends "wall cpu rss_kib" to $work/res.NAME.
run() {
	local name=$1
	shift
	/usr/bin/time -v -o "$work/time.txt" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
		echo "bench: $name failed:" >&2
		cat "$work/$name.err" >&2
		exit 1
	}
	awk -v name="$name" '
		/Elapsed \(wall clock\)/ { n = split($NF, p, ":"); wall = (n == 3 ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2]) }
		/User time/ { user = $NF }
		/System time/ { sys = $NF }
		/Maximum resident set size/ { rss = $NF }
		END { printf "%.2f %.2f %d\n", wall, user + sys, rss }' "$work/time.txt" >>"$work/res.$name"
	tail -1 "$work/res.$name" | awk -v name="$name" '{ printf "  %-8s wall %7.2f s  cpu %7.2f s  rss %7.1f MiB\n", name, $1, $2, $3/1024 }'
}

for i in $(seq 1 "$rounds"); do
	echo "round $i"
	run tripcap "$work/tripcap" analyze -o json "$file"
	run tshark tshark -q -r "$file" -z conv,ip -z conv,tcp -z io,phs
done

ours=$(awk -F: '/"packets"/ { gsub(/[ ,]/, "", $2); print $2; exit }' "$work/tripcap.out")
theirs=$(awk '$1 == "eth" { sub("frames:", "", $2); print $2; exit }' "$work/tshark.out")
if [ "$ours" != "$theirs" ]; then
	echo "bench: packet counts differ: tripcap $ours, tshark $theirs" >&2
	exit 1
fi

# median COLUMN FILE
median() { cut -d' ' -f"$1" "$2" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2) }'; }
tw=$(median 1 "$work/res.tripcap"); tc=$(median 2 "$work/res.tripcap"); tr=$(median 3 "$work/res.tripcap")
sw=$(median 1 "$work/res.tshark"); sc=$(median 2 "$work/res.tshark"); sr=$(median 3 "$work/res.tshark")
echo
echo "file: $bytes bytes, $ours packets; $rounds rounds, medians"
awk -v b="$bytes" -v tw="$tw" -v tc="$tc" -v tr="$tr" -v sw="$sw" -v sc="$sc" -v sr="$sr" 'BEGIN {
	printf "%-8s %9s %9s %11s %10s\n", "tool", "wall s", "cpu s", "MB/s (cpu)", "peak RSS"
	printf "%-8s %9.2f %9.2f %11.0f %6.1f MiB\n", "tripcap", tw, tc, b/1e6/(tc > 0 ? tc : 0.01), tr/1024
	printf "%-8s %9.2f %9.2f %11.0f %6.1f MiB\n", "tshark", sw, sc, b/1e6/(sc > 0 ? sc : 0.01), sr/1024
	printf "tshark/tripcap: wall %.1fx, cpu %.1fx, peak RSS %.1fx\n", sw/(tw > 0 ? tw : 0.01), sc/(tc > 0 ? tc : 0.01), sr/tr
}'
