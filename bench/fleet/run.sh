#!/usr/bin/env bash
# run.sh runs the fleet benchmark (bench/fleet) on SQLite, then on
# PostgreSQL, and prints the results as Markdown tables. It takes about 15
# minutes; loopback only.
#
#   bench/fleet/run.sh                      # the default ramp on both backends
#   RAMP=1000,2500 DURATION=30s bench/fleet/run.sh
#   BACKENDS=sqlite bench/fleet/run.sh -profile /tmp/prof   # extra flags go to every run
#   METRICS=1 RAMP=1000,2500 bench/fleet/run.sh -agent-nice 10   # agents ship metrics, rules, breaches (issue 16)
#
# Environment: RAMP (fleet sizes), DURATION (steady-state window per size),
# IDLE (idle-fleet window per size), METRICS (1: every agent ships 1-second
# metrics, 10 rules on every host, 1 % of hosts breaching a minute), BACKENDS (sqlite postgres), OUT (where
# the binaries, JSON results and logs go; default a new temporary directory),
# TRIPCAP_TEST_POSTGRES (a PostgreSQL cluster URL; default: start the private
# one with scripts/start-postgres).
set -euo pipefail
cd "$(dirname "$0")/../.."

ramp=${RAMP:-1000,2500,5000,10000}
duration=${DURATION:-40s}
idle=${IDLE:-10s}
backends=${BACKENDS:-sqlite postgres}
out=${OUT:-$(mktemp -d /tmp/tripcap-fleet-results.XXXXXX)}
mkdir -p "$out"

say() { echo "run.sh: $*" >&2; }

# Each agent holds a long poll and a heartbeat connection: raise the
# descriptor limit as far as this shell may (without CAP_SYS_RESOURCE the
# hard limit caps it; the bench reports the limit the server got).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
say "RLIMIT_NOFILE $(ulimit -n); results in $out"

tree=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
go build -o "$out/tripcap" ./cmd/tripcap
go build -o "$out/fleet" ./bench/fleet

results=()
for db in $backends; do
	args=(-tripcap "$out/tripcap" -db "$db" -ramp "$ramp" -duration "$duration" -idle "$idle" -json
		-note "tree $tree")
	[[ ${METRICS:-0} == 1 ]] && args+=(-metrics)
	if [[ $db == postgres ]]; then
		dsn=${TRIPCAP_TEST_POSTGRES:-$(scripts/start-postgres)} || { say "no PostgreSQL: skipping it"; continue; }
		args+=(-dsn "$dsn")
	fi
	say "$db: ramp $ramp, $duration windows"
	# The bound: a ramp that stalls (a server out of descriptors, say) still ends.
	if timeout --signal=INT --kill-after=60s 15m "$out/fleet" "${args[@]}" "$@" >"$out/$db.json" 2>"$out/$db.log"; then
		:
	else
		say "$db: the run failed (exit $?); partial results kept; the end of $out/$db.log:"
		tail -n 5 "$out/$db.log" >&2
	fi
	[[ -s $out/$db.json ]] && results+=("$out/$db.json")
done

if ((${#results[@]} > 0)); then
	"$out/fleet" -report "$(IFS=,; echo "${results[*]}")"
fi
