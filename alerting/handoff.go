package alerting

import "github.com/tripcap/tripcap"

// RestoreHost replaces the active alerts of hostID's instances with fired,
// the host's Fired alerts as the database holds them: RestoreHosts for one
// host.
func (e *Evaluator) RestoreHost(hostID string, fired []tripcap.Alert) {
	e.RestoreHosts(map[string][]tripcap.Alert{hostID: fired})
}

// RestoreHosts replaces the active alerts of each host's instances with its
// Fired alerts as the database holds them (fired[host]; nil or empty when
// it has none), when a replica attaches hosts (their agents' points arrive
// after a gap, or for the first time here): another replica may have fired
// or resolved the hosts' alerts meanwhile, and an alert this one still
// holds as Fired may be resolved elsewhere. An alert listed under a host
// other than its own is ignored. An instance with a restored alert
// evaluates from after the alert's last transition on. Only these hosts'
// cached instance lists are rebuilt, and the evaluator's alerts are walked
// once for all of them: a fleet's handoff attaches thousands of hosts.
func (e *Evaluator) RestoreHosts(fired map[string][]tripcap.Alert) {
	if len(fired) == 0 {
		return
	}
	type floor struct {
		in *instance
		at int64
	}
	var floors []floor
	e.mu.Lock()
	for hostID := range fired {
		if c, ok := e.hosts[hostID]; ok {
			c.stale = true
			e.hosts[hostID] = c
		}
	}
	// What this evaluator holds as Fired for the hosts gives way to the
	// database's view.
	for id, a := range e.alerts {
		if a.MonitorCondition != tripcap.ConditionFired {
			continue
		}
		if _, ok := fired[a.HostID]; !ok {
			continue
		}
		if in := e.instances[instanceKey{a.RuleID, a.HostID}]; in != nil && in.active == id {
			in.active = ""
		}
		delete(e.alerts, id)
	}
	for hostID, as := range fired {
		for i := range as {
			a := cloneAlert(&as[i])
			// A released alert (stays Fired, closed by hand) is no instance's.
			if a.HostID != hostID || !a.Active() {
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
			floors = append(floors, floor{in, tripcap.AlignDown(a.Condition.Time.Unix(), rs.freq) + rs.freq})
		}
	}
	e.mu.Unlock()
	// The times up to the alert's last transition were judged where it
	// was fired: evaluating them again here (catching up from this
	// evaluator's older cursor) would resolve the alert at a time before
	// it fired. The cursor is the instance's, under its lock, which is
	// taken before e.mu elsewhere.
	for _, f := range floors {
		f.in.mu.Lock()
		if f.in.nextEval < f.at {
			f.in.nextEval = f.at
		}
		f.in.mu.Unlock()
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
