#!/usr/bin/env bash
# Capture benchmark: tripcap capture run against tcpdump -w on a veth pair
# between two network namespaces.
#
# trafgen floods a bounded number of 60-byte UDP frames at its top rate from
# the generator namespace; the capturer runs in the other namespace and
# writes a pcap file to a tmpfs. The two tools alternate (A B A B …), the
# generator pinned to one CPU and the capturer to another, each with the
# same kernel ring (tcpdump -B = tripcap --buffer-size). Reported per run
# and as medians: packets sent, captured, kernel drops, CPU seconds
# (user+system of the capturer) per million packets captured, and the
# tripcap/tcpdump ratio of the medians.
#
# Usage: sudo bench/capture/run.sh [-n PACKETS] [-r ROUNDS] [-B KIB] [-b TRIPCAP]
# (-b uses a tripcap binary already built instead of building cmd/tripcap)
# Needs root, ip, taskset, trafgen (netsniff-ng), tcpdump, GNU time, go.
# All traffic stays on the veth pair in 198.18.0.0/15 between the two
# namespaces it creates; everything is removed on exit.
set -euo pipefail

packets=5000000
rounds=3
buffer_kib=32768
gen_cpu=0
cap_cpu=1
bin=
while getopts "n:r:B:b:" opt; do
	case $opt in
	n) packets=$OPTARG ;;
	r) rounds=$OPTARG ;;
	B) buffer_kib=$OPTARG ;;
	b) bin=$OPTARG ;;
	*) echo "usage: $0 [-n PACKETS] [-r ROUNDS] [-B KIB] [-b TRIPCAP]" >&2; exit 2 ;;
	esac
done

for tool in ip taskset trafgen tcpdump /usr/bin/time go; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
gen=tc-bench-$id-gen
cap=tc-bench-$id-cap
work=$(mktemp -d /tmp/tripcap-bench.XXXXXX)
out=$work/out
mkdir -p "$out"

cleanup() {
	set +e
	ip netns del "$gen" 2>/dev/null
	ip netns del "$cap" 2>/dev/null
	umount "$out" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$bin" ]; then
	cp "$bin" "$work/tripcap"
else
	echo "building tripcap…" >&2
	(cd "$repo" && CGO_ENABLED=0 go build -o "$work/tripcap" ./cmd/tripcap)
fi

# The capture files go to a tmpfs: the disk is not what is measured.
mount -t tmpfs -o size=2g tmpfs "$out"

ip netns add "$gen"
ip netns add "$cap"
ip link add tcb"$id"g netns "$gen" address 02:00:00:00:00:01 type veth peer name tcb"$id"c netns "$cap" address 02:00:00:00:00:02
for ns in "$gen" "$cap"; do
	ip -n "$ns" link set lo up
done
ip netns exec "$gen" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip netns exec "$cap" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$gen" addr add 198.18.254.1/30 dev tcb"$id"g
ip -n "$cap" addr add 198.18.254.2/30 dev tcb"$id"c
ip -n "$gen" link set tcb"$id"g up
ip -n "$cap" link set tcb"$id"c up
capif=tcb"$id"c

# 60-byte UDP frames to a MAC that is not the capturer's: the receiving
# stack drops them at once (PACKET_OTHERHOST), the packet taps see them all.
cat >"$work/udp.trafgen" <<'CFG'
{
  0x02, 0x00, 0x00, 0x00, 0x00, 0x99,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
  c16(0x0800),
  0x45, 0x00, c16(46), c16(0), c16(0x4000), 64, 17, csumip(14, 33),
  198, 18, 254, 1,
  198, 18, 254, 2,
  c16(40000), c16(9), c16(26), c16(0),
  fill(0x41, 18)
}
CFG

# run TOOL ROUND: one capture of one flood; prints a result line.
run() {
	local tool=$1 round=$2 file=$out/$1-$2.pcap log=$work/$1-$2.log times=$work/$1-$2.time
	local cmd
	if [ "$tool" = tripcap ]; then
		cmd=("$work/tripcap" capture run --log-level warn -o json -i "$capif" -w "$file" --buffer-size "$buffer_kib")
	else
		cmd=(tcpdump -i "$capif" -w "$file" -B "$buffer_kib" -n -Z root)
	fi
	# Own session: SIGINT goes to the capturer (GNU time ignores it).
	# Both sides run at a high priority (nice -15): the machine may be
	# shared, and a capturer preempted by others drops packets that say
	# nothing about it.
	setsid ip netns exec "$cap" nice -n -15 taskset -c "$cap_cpu" /usr/bin/time -o "$times" -f '%U %S' "${cmd[@]}" >"$log" 2>&1 &
	local pid=$!
	# Wait until the capturer listens.
	for _ in $(seq 100); do
		if grep -qE '^(capturing to|tcpdump: listening)' "$log" 2>/dev/null; then break; fi
		sleep 0.1
	done
	sleep 0.3
	# trafgen's own report is not needed: the veth counter says what left.
	ip netns exec "$gen" nice -n -15 taskset -c "$gen_cpu" trafgen -o tcb"$id"g -i "$work/udp.trafgen" -n "$packets" -P 1 -C -q >/dev/null 2>&1 || true
	local sent
	sent=$(ip -n "$gen" -s link show tcb"$id"g | awk '/TX:/ {getline; print $2}')
	sleep 1
	kill -INT -- -"$pid" 2>/dev/null || true
	wait "$pid" || true
	local captured drops
	if [ "$tool" = tripcap ]; then
		captured=$(sed -n 's/.*"packets": \([0-9]*\).*/\1/p' "$log" | head -1)
		drops=$(sed -n 's/.*"kernelDrops": \([0-9]*\).*/\1/p' "$log" | head -1)
	else
		captured=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$log")
		drops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log")
	fi
	local cpu
	cpu=$(awk '{printf "%.2f", $1 + $2}' "$times")
	rm -f "$file"
	echo "$tool $round $sent $captured ${drops:-?} $cpu"
}

echo "tool round sent captured drops cpu_s" >"$work/results"
prev_sent=0
for r in $(seq "$rounds"); do
	for tool in tripcap tcpdump; do
		line=$(run "$tool" "$r")
		# The veth counter is cumulative: turn it into this run's count.
		set -- $line
		sent_now=$(( $3 - prev_sent )); prev_sent=$3
		echo "$1 $2 $sent_now $4 $5 $6" | tee -a "$work/results" >&2
	done
done

# Medians and ratios.
awk '
function median(a, n,   i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
NR > 1 {
	n[$1]++
	sent[$1, n[$1]] = $3; capd[$1, n[$1]] = $4; drop[$1, n[$1]] = $5; cpu[$1, n[$1]] = $6
	perm[$1, n[$1]] = ($4 > 0) ? $6 / ($4 / 1e6) : 0
	if ($5 > 0) dropruns[$1]++
}
END {
	printf "%-8s %12s %12s %10s %10s %16s %14s\n", "tool", "sent", "captured", "drops", "cpu_s", "cpu_s_per_Mpkt", "runs_w_drops"
	for (t in n) {
		for (i = 1; i <= n[t]; i++) { a1[i] = sent[t, i]; a2[i] = capd[t, i]; a3[i] = drop[t, i]; a4[i] = cpu[t, i]; a5[i] = perm[t, i] }
		m[t] = median(a5, n[t])
		printf "%-8s %12d %12d %10d %10.2f %16.3f %11d/%d\n", t, median(a1, n[t]), median(a2, n[t]), median(a3, n[t]), median(a4, n[t]), m[t], dropruns[t], n[t]
	}
	if (m["tcpdump"] > 0) printf "tripcap/tcpdump CPU per packet: %.2f\n", m["tripcap"] / m["tcpdump"]
}' "$work/results"
echo "per-run results:" >&2
cat "$work/results" >&2
