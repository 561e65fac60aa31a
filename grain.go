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
