package tripcap

import "time"

// Time grains of rule evaluation. Azure's VM metrics have a one-minute
// grain: each point is a minute's total (a counter) or mean (a gauge), and a
// rule's Average, Minimum and Maximum are taken over those minutes. tripcap
// samples every second, so a rule evaluated every minute or less often is
// given Azure's grain, and a threshold ported from Azure means the same
// bytes; a rule evaluated more often than once a minute is one Azure cannot
// express, and aggregates the 1-second points themselves.
const (
	GrainSecond = time.Second
	GrainMinute = time.Minute
)

// Grain is the time grain the rule's aggregations are taken over:
// GrainMinute for an evaluation frequency of a minute or more whose window
// is whole minutes (Azure's meaning), else GrainSecond.
func (r *AlertRule) Grain() time.Duration {
	if r.Frequency() >= time.Minute && r.Window()%time.Minute == 0 {
		return GrainMinute
	}
	return GrainSecond
}

// AlignDown is the latest multiple of step at or before sec (negative sec
// too): where an evaluation or a grain interval that holds sec begins.
func AlignDown(sec, step int64) int64 {
	m := sec % step
	if m < 0 {
		m += step
	}
	return sec - m
}
