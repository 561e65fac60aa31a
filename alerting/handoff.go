package alerting

import "github.com/tripcap/tripcap"

// RestoreHost replaces the active alerts of hostID's instances with fired,
// the host's Fired alerts as the database holds them, when a replica
// attaches the host (its agent's points arrive after a gap, or for the
// first time here): another replica may have fired or resolved the host's
// alerts meanwhile, and an alert this one still holds as Fired may be
// resolved elsewhere. Alerts of other hosts in fired are ignored.
func (e *Evaluator) RestoreHost(hostID string, fired []tripcap.Alert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	// What this evaluator holds as Fired for the host gives way to the
	// database's view.
	for id, a := range e.alerts {
		if a.HostID != hostID || a.MonitorCondition != tripcap.ConditionFired {
			continue
		}
		if in := e.instances[instanceKey{a.RuleID, hostID}]; in != nil && in.active == id {
			in.active = ""
		}
		delete(e.alerts, id)
	}
	for i := range fired {
		a := cloneAlert(&fired[i])
		if a.HostID != hostID || a.MonitorCondition != tripcap.ConditionFired {
			continue
		}
		rs := e.rules[a.RuleID]
		if rs == nil {
			continue
		}
		e.alerts[a.ID] = &a
		k := instanceKey{a.RuleID, hostID}
		in := e.instances[k]
		if in == nil {
			in = &instance{rule: rs, host: hostID, baselines: map[baselineKey]*baseline{}}
			e.instances[k] = in
		}
		in.active = a.ID
	}
}

// ResetBaselines drops the dynamic baselines of hostID's instances, so
// they learn again from the store, once history sent by the agent filled
// what this replica lacked: a baseline learnt from a partial store would
// keep its holes.
func (e *Evaluator) ResetBaselines(hostID string) {
	e.mu.Lock()
	var ins []*instance
	// By rule, not over every instance: a fleet's handoff attaches each
	// host, and instances outnumber rules by the hosts.
	for rid := range e.rules {
		if in := e.instances[instanceKey{rid, hostID}]; in != nil {
			ins = append(ins, in)
		}
	}
	e.mu.Unlock()
	// An instance's baselines are guarded by its own lock, taken before
	// e.mu elsewhere: take it with e.mu released.
	for _, in := range ins {
		in.mu.Lock()
		clear(in.baselines)
		in.mu.Unlock()
	}
}
