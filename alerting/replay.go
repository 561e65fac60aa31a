package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// MaxReplayEvaluations bounds one replay: an hour at a 1-second frequency.
const MaxReplayEvaluations = 3600

// Replay is what a rule would have done on a host over a stretch of the
// stored metrics: every evaluation, and the transitions it would have made
// from a fresh start (no alert fired before the stretch; dynamic
// thresholds learn as a new instance does). The console draws it while a
// rule is edited: the value each window had, the threshold, and where the
// rule would have fired.
type Replay struct {
	Rule        string        `json:"rule"`
	Host        string        `json:"host"`
	Frequency   float64       `json:"frequencySeconds"`
	Window      float64       `json:"windowSeconds"`
	Evaluations []ReplayPoint `json:"evaluations"`
	// Fired counts the evaluations at which the rule would have fired.
	Fired int `json:"fired"`
}

// ReplayPoint is one evaluation of a replay.
type ReplayPoint struct {
	Time time.Time `json:"time"`
	// Values and Thresholds are each criterion's window value and
	// threshold (a dynamic criterion's crossed or nearer band edge); a
	// value is nil when its window had too few points.
	Values     []*float64 `json:"values"`
	Thresholds []float64  `json:"thresholds"`
	// Met says every criterion held.
	Met bool `json:"met"`
	// Transition is Fired or Resolved where the rule would have changed
	// state, "" elsewhere.
	Transition tripcap.MonitorCondition `json:"transition,omitempty"`
}

// Replay evaluates rule (saved or not; it is validated with defaults
// applied) on host h at each evaluation time in (from, to], reading the
// same windows the evaluator reads, with its own state: the live alerts
// are untouched and nothing is delivered.
func (e *Evaluator) Replay(ctx context.Context, rule *tripcap.AlertRule, h *tripcap.Host, from, to time.Time) (*Replay, error) {
	r := *rule
	if r.ID == "" {
		r.ID = "replay"
	}
	enabled := true
	r.Enabled = &enabled
	cfg := e.cfg
	cfg.OnTransition = nil
	n := 0
	cfg.NewID = func() string { n++; return fmt.Sprintf("replay-%d", n) }
	re, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := re.SetRules([]*tripcap.AlertRule{&r}); err != nil {
		return nil, err
	}
	rs := re.rules[r.ID]
	in := &instance{rule: rs, host: h.ID, baselines: map[baselineKey]*baseline{}}
	first := tripcap.AlignDown(from.Unix(), rs.freq)
	last := tripcap.AlignDown(to.Unix(), rs.freq)
	if first <= from.Unix() {
		first += rs.freq
	}
	if steps := (last-first)/rs.freq + 1; steps > MaxReplayEvaluations {
		return nil, tripcap.Errorf(tripcap.EINVALID, "window: %d evaluations at evaluationFrequency %s; at most %d", steps, r.EvaluationFrequency, MaxReplayEvaluations)
	}
	out := &Replay{Rule: r.Name, Host: h.Name, Frequency: float64(rs.freq), Window: float64(rs.window), Evaluations: []ReplayPoint{}}
	for t := first; t <= last; t += rs.freq {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		all, each, eval := re.conditions(in, t)
		p := ReplayPoint{Time: eval.Time, Met: all == met, Values: make([]*float64, len(eval.AllOf)), Thresholds: make([]float64, len(eval.AllOf))}
		for i, c := range eval.AllOf {
			p.Thresholds[i] = c.Threshold
			if each[i] != noData {
				v := c.MetricValue
				p.Values[i] = &v
			}
		}
		if a, changed := re.apply(in, h, all, eval); changed {
			p.Transition = a.MonitorCondition
			if a.MonitorCondition == tripcap.ConditionFired {
				out.Fired++
			}
		}
		out.Evaluations = append(out.Evaluations, p)
	}
	return out, nil
}
