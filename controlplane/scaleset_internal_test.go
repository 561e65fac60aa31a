package controlplane

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestAggregateSessions: a scale-set capture's status is its sessions'.
func TestAggregateSessions(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	session := func(host string, st tripcap.PacketCaptureStatus, reason string, errs ...string) *tripcap.PacketCapture {
		return &tripcap.PacketCapture{ID: "id-" + host, HostID: host, Status: st, StopReason: reason, Errors: errs}
	}
	for _, tc := range []struct {
		name     string
		sessions []*tripcap.PacketCapture
		status   tripcap.PacketCaptureStatus
		reason   string
		errs     int
	}{
		{"all pending", []*tripcap.PacketCapture{session("a", tripcap.StatusNotStarted, ""), session("b", tripcap.StatusNotStarted, "")}, tripcap.StatusNotStarted, "", 0},
		{"one running", []*tripcap.PacketCapture{session("a", tripcap.StatusNotStarted, ""), session("b", tripcap.StatusRunning, "")}, tripcap.StatusRunning, "", 0},
		{"one still to start", []*tripcap.PacketCapture{session("a", tripcap.StatusStopped, tripcap.StopTimeExceeded), session("b", tripcap.StatusNotStarted, "")}, tripcap.StatusNotStarted, tripcap.StopTimeExceeded, 0},
		{"all stopped", []*tripcap.PacketCapture{session("a", tripcap.StatusStopped, tripcap.StopTimeExceeded), session("b", tripcap.StatusStopped, tripcap.StopTimeExceeded)}, tripcap.StatusStopped, tripcap.StopTimeExceeded, 0},
		{"one failed", []*tripcap.PacketCapture{session("a", tripcap.StatusError, tripcap.StopAgentStopped, tripcap.CaptureErrAgentStopped), session("b", tripcap.StatusStopped, tripcap.StopTimeExceeded)},
			tripcap.StatusStopped, tripcap.StopAgentStopped + ", " + tripcap.StopTimeExceeded, 1},
		{"all failed", []*tripcap.PacketCapture{session("a", tripcap.StatusError, tripcap.StopAgentStopped, tripcap.CaptureErrAgentStopped), session("b", tripcap.StatusError, tripcap.StopCaptureFailed, tripcap.CaptureErrCaptureFailed, tripcap.CaptureErrAgentStopped)},
			tripcap.StatusError, tripcap.StopAgentStopped + ", " + tripcap.StopCaptureFailed, 2},
	} {
		for i, m := range tc.sessions {
			m.CaptureStartTime = new(t0.Add(time.Duration(i) * time.Second))
			if m.Status.Terminal() {
				m.CaptureStopTime = new(t0.Add(time.Minute + time.Duration(i)*time.Second))
			}
			m.Stats.Packets = uint64(10 * (i + 1))
		}
		set := &tripcap.PacketCapture{ID: "set", Status: tripcap.StatusStopped, StopReason: "stale"}
		got := aggregateSessions(set, tc.sessions, map[string]string{"id-a": "web-a"})
		if got.Status != tc.status || got.StopReason != tc.reason || len(got.Errors) != tc.errs {
			t.Errorf("%s: %s %q %v, want %s %q and %d errors", tc.name, got.Status, got.StopReason, got.Errors, tc.status, tc.reason, tc.errs)
		}
		if got.Stats.Packets != 30 || !got.CaptureStartTime.Equal(t0) {
			t.Errorf("%s: packets %d, start %v", tc.name, got.Stats.Packets, got.CaptureStartTime)
		}
		if (got.CaptureStopTime != nil) != tc.status.Terminal() {
			t.Errorf("%s: stop time %v with status %s", tc.name, got.CaptureStopTime, got.Status)
		}
		if len(got.Sessions) != 2 || got.Sessions[0].InstanceID != "b" || got.Sessions[1].InstanceID != "web-a" {
			t.Errorf("%s: sessions %+v", tc.name, got.Sessions)
		}
		if set.StopReason != "stale" || set.Sessions != nil {
			t.Errorf("%s: the stored capture was changed", tc.name)
		}
	}
}
