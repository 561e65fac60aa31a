//go:build linux

package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/internal/netns"
)

// TestResponderInternalLoop closes the seeds' loop on netns hosts with no
// code to write: a Network Out Total rule evaluated every second fires when
// h1 sends a burst; its action group hands the alert to a responder, which
// starts a capture on h1 only, with preTriggerSeconds so the file begins
// before the alert fired; when the capture ends and its file is stored, the
// responder's notify group tells a webhook receiver where it is.
func TestResponderInternalLoop(t *testing.T) {
	l := newLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	// The agents run as a newcomer starts them: the pre-trigger buffer is
	// on by default (30 s), so no flag is needed for preTriggerSeconds.
	rc := webhooktest.StartAt(t, l.net.Veth(nil, l.ctl, netns.LinkOptions{}).A.Addr.Addr())

	l.cli(nil, "action-group", "create", "notify", "--webhook", "done="+rc.URL+"/done")
	var rsp tripcap.Responder
	if err := l.cliJSON(&rsp, "responder", "create", "pc", "--pre-trigger", "10s", "--time-limit", "5s",
		"--filter", "protocol=UDP,remotePort=7100", "--notify", "notify"); err != nil {
		t.Fatal(err)
	}
	if rsp.Capture.Name != "PSAzureFunction" || rsp.Capture.PreTriggerSeconds != 10 || rsp.Limit != 100 {
		t.Fatalf("responder: %+v", rsp)
	}
	l.cli(nil, "action-group", "create", "capture", "--responder", "cap=pc")
	l.cli(nil, "rule", "create", "high-egress", "--metric", "Network Out Total", "--aggregation", "Average",
		"--operator", "GreaterThan", "--threshold", "200000", "--frequency", "1s", "--window", "5s", "--action-group", "capture")
	l.eventually("h1's metrics on the server", 20*time.Second, func() bool { return l.points("h1") > 0 })

	stop := l.flood(h1, h2, 7100)
	l.eventually("the alert to fire", 30*time.Second, func() bool { return len(l.alerts()) > 0 })
	alert := l.alerts()[0]
	if alert.HostName != "h1" {
		t.Fatalf("alert on %s, want h1", alert.HostName)
	}
	var runs []*tripcap.ResponderRun
	l.eventually("the responder's run", 10*time.Second, func() bool {
		return l.cliJSON(&runs, "responder", "runs", "pc") == nil && len(runs) > 0 && runs[len(runs)-1].Decision != tripcap.DecisionPending
	})
	first := runs[len(runs)-1]
	if first.Decision != tripcap.DecisionStarted || first.Source != "internal" || len(first.Hosts) != 1 || first.Hosts[0].HostName != "h1" {
		b, _ := json.Marshal(runs)
		t.Fatalf("runs: %s", b)
	}
	l.eventually("the notification", 40*time.Second, func() bool { return len(rc.Accepted("/done")) > 0 })
	stop()

	// Only h1 captured.
	var caps []*tripcap.PacketCapture
	if err := l.cliJSON(&caps, "capture", "list"); err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0].HostID != first.Hosts[0].HostID {
		t.Fatalf("captures: %d, want one on h1", len(caps))
	}
	// The capture is named for the responder's template and the host, so
	// another host's alert cannot replace it; the text listing names the host.
	list := strings.Split(strings.TrimSpace(string(l.cli(nil, "capture", "list", "-o", "text"))), "\n")
	if len(list) != 2 || strings.Fields(list[0])[1] != "HOST" || strings.Fields(list[1])[0] != "PSAzureFunction-h1" || strings.Fields(list[1])[1] != "h1" {
		t.Fatalf("capture list:\n%s", strings.Join(list, "\n"))
	}
	c := l.capture("PSAzureFunction-h1")
	if c.Status != tripcap.StatusStopped || len(c.Files) == 0 || !c.Files[0].Stored {
		t.Fatalf("capture: %s files %+v", c.Status, c.Files)
	}

	// The notification names the capture, its host, file, counts and
	// health, as a completion, not a second firing of the alert.
	var n actiongroup.CompletionCommonAlert
	if err := json.Unmarshal(rc.Accepted("/done")[0].Body, &n); err != nil {
		t.Fatal(err)
	}
	if e := n.Data.Essentials; e.MonitorCondition != string(tripcap.ConditionResolved) || e.MonitoringService != actiongroup.MonitoringServiceTripcap ||
		n.Data.AlertContext == nil || n.Data.AlertContext.SchemaID != actiongroup.SchemaCaptureCompleted || n.Data.AlertContext.Data.Upload.Result != actiongroup.UploadStored {
		t.Fatalf("notification: %s", rc.Accepted("/done")[0].Body)
	}
	cp := n.Data.CustomProperties
	if cp["captureName"] != "PSAzureFunction-h1" || cp["host"] != "h1" || cp["storagePath"] == "" || cp["downloadUrl"] == "" ||
		cp["packets"] == "" || cp["packets"] == "0" || cp["stopReason"] == "" || cp["kernelDrops"] == "" || cp["upload"] != actiongroup.UploadStored {
		t.Fatalf("notification properties: %v", cp)
	}
	// It says what the file holds; the capture's summary splits it at the
	// alert's own time, which the responder recorded in the file.
	if sum := n.Data.AlertContext.Data.Summary; len(sum) == 0 || !strings.Contains(strings.Join(sum, "\n"), "packets") || cp["summary"] == "" {
		t.Errorf("the notification's summary: %q", sum)
	}
	if s := l.capture("PSAzureFunction-h1").Summary; s == nil || s.Alert == nil || !s.Alert.Time.Equal(alert.FiredAt) || s.Alert.Before.Packets == 0 {
		t.Errorf("the capture's summary at the alert: %+v, want it split at %s with packets before", s, alert.FiredAt)
	}

	// The file holds the burst, from before the alert fired.
	f := l.download("PSAzureFunction-h1")
	if seqs := stampedSeqs(t, f, 7); len(seqs) == 0 {
		t.Fatal("the file does not contain the burst")
	}
	out, err := exec.Command("tshark", "-r", f, "-T", "fields", "-e", "frame.time_epoch", "-c", "1").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("first packet time %q: %v", out, err)
	}
	firstPacket := time.Unix(0, int64(sec*1e9))
	if !firstPacket.Before(alert.FiredAt) {
		t.Fatalf("the file starts at %s, not before the alert fired at %s", firstPacket.UTC(), alert.FiredAt.UTC())
	}
	t.Logf("the file starts %s before the alert fired", alert.FiredAt.Sub(firstPacket).Round(time.Millisecond))
}
