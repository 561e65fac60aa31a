#!/usr/bin/env bash
# Trigger benchmark: how long an alert takes to become a Running capture, on
# netns hosts (the e2e lab), over repeated trials, for the internal path
# (Network Out Total rule at 1 s frequency → action group → responder with
# preTriggerSeconds 10; from the breach, the alert's firedDateTime, and from
# the start of the burst) and the inbound path
# (an Alertmanager webhook POST to /api/functions/{responder}). Prints each
# trial and a RESULT line with p50 and p95, and how long before the alert's
# firedDateTime the capture file starts.
#
# Usage: sudo bench/trigger/run.sh [TRIALS]   (default 20; ~30 s per trial)
# Needs root, tshark, go (the e2e lab's requirements).
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-20}
TRIPCAP_TRIGGER_TRIALS=$trials go test ./e2e -run '^TestTriggerLatency$' -count=1 -v -timeout 60m 2>&1 |
	grep -E 'trial [0-9]+:|RESULT|^(ok|FAIL|---)'
