package alerting

import (
	"context"
	"time"

	"github.com/tripcap/tripcap"
)

// HistoryNeed is how far back from now evaluating hostID's rules reads
// the store, so a replica attaching the host asks its agent for no more
// history than it can use. whole: a dynamic criterion is in scope, whose
// baseline learns up to maxBackfill periods (at least a day: the rollup
// window) from whatever the store holds. Otherwise need covers the window
// of every evaluation the host's instances will run: a new instance
// evaluates from its first due time (one window back); one that evaluated
// before catches up from its cursor, at most maxCatchUp evaluations back.
// One frequency of margin covers the evaluation due while the history is
// on its way. A host in no rule's scope (or unknown) needs nothing.
func (e *Evaluator) HistoryNeed(ctx context.Context, hostID string, now time.Time) (need time.Duration, whole bool, err error) {
	h, ins, err := e.hostInstances(ctx, hostID)
	if err != nil || h == nil {
		return 0, false, err
	}
	t := now.Unix()
	var most int64
	for _, in := range ins {
		rs := in.rule
		if rs.rule.ConditionType() == tripcap.ConditionTypeDynamic {
			return 0, true, nil
		}
		span := rs.window + rs.freq
		in.mu.Lock()
		next := in.nextEval
		in.mu.Unlock()
		if next > 0 && next < t {
			first := max(next, t-(maxCatchUp-1)*rs.freq)
			span = t - first + rs.window + rs.freq
		}
		most = max(most, span)
	}
	return time.Duration(most) * time.Second, false, nil
}
