package responder_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/actiongroup/eximtest"
	"github.com/tripcap/tripcap/actiongroup/webhooktest"
	"github.com/tripcap/tripcap/controlplane"
)

// completed is the tripcap.captureCompleted/1 notice, as a receiver reads it.
type completed struct {
	SchemaID string `json:"schemaId"`
	Data     struct {
		EventID   string `json:"eventId"`
		Responder struct{ Name string }
		RunID     string `json:"runId"`
		Alert     struct {
			ID        string `json:"id"`
			Condition string `json:"condition"`
		} `json:"alert"`
		Host struct {
			Name       string `json:"name"`
			ResourceID string `json:"resourceId"`
		} `json:"host"`
		Capture struct {
			ID, Name, Status, StopReason string
		} `json:"capture"`
		Statistics struct {
			Packets          *uint64 `json:"packets"`
			Bytes            *uint64 `json:"bytes"`
			KernelDrops      *uint64 `json:"kernelDrops"`
			SnapLength       int64   `json:"snapLength"`
			TruncatedPackets *uint64 `json:"truncatedPackets"`
		} `json:"statistics"`
		Upload struct {
			Result  string `json:"result"`
			Message string `json:"message"`
		} `json:"upload"`
		Files []struct {
			Name        string `json:"name"`
			Size        int64  `json:"size"`
			SHA256      string `json:"sha256"`
			Stored      bool   `json:"stored"`
			StoragePath string `json:"storagePath"`
		} `json:"files"`
		DownloadURL string `json:"downloadUrl"`
	} `json:"data"`
}

// commonCompleted is the common alert schema form of the notice.
type commonCompleted struct {
	SchemaID string `json:"schemaId"`
	Data     struct {
		Essentials       actiongroup.Essentials `json:"essentials"`
		AlertContext     completed              `json:"alertContext"`
		CustomProperties map[string]string      `json:"customProperties"`
	} `json:"data"`
}

// wantNotice checks a native notice against the capture it tells of.
func wantNotice(t *testing.T, where string, n completed, captureID, captureName string) {
	t.Helper()
	d := n.Data
	ok := n.SchemaID == actiongroup.SchemaCaptureCompleted && d.EventID == captureID && d.Capture.ID == captureID &&
		d.Capture.Name == captureName && d.Capture.Status == string(tripcap.StatusStopped) && d.Capture.StopReason == "TimeExceeded" &&
		d.Host.Name == "web1" && d.Host.ResourceID != "" && d.Responder.Name == "pc" && d.RunID != "" &&
		d.Alert.ID == "fp-health" && d.Alert.Condition == "Fired" &&
		d.Statistics.Packets != nil && *d.Statistics.Packets == 42 && d.Statistics.KernelDrops != nil && *d.Statistics.KernelDrops == 3 &&
		d.Statistics.SnapLength == 128 && d.Statistics.TruncatedPackets != nil && *d.Statistics.TruncatedPackets == 17 &&
		d.Upload.Result == actiongroup.UploadStored && len(d.Files) == 1 && d.Files[0].Stored && d.Files[0].Size == 400 &&
		strings.HasPrefix(d.Files[0].StoragePath, "file://") && d.Files[0].SHA256 != "" &&
		d.DownloadURL == "https://tripcap.example/api/v1/captures/"+captureID+"/file"
	if !ok {
		b, _ := json.MarshalIndent(n, "", " ")
		t.Errorf("%s: notice %s", where, b)
	}
}

// wantCommonNotice checks the common-schema form: never a fired alert.
func wantCommonNotice(t *testing.T, where string, body []byte, captureID, captureName string) {
	t.Helper()
	var c commonCompleted
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	e := c.Data.Essentials
	if c.SchemaID != actiongroup.SchemaCommon || e.MonitorCondition == string(tripcap.ConditionFired) || e.MonitorCondition != string(tripcap.ConditionResolved) ||
		e.SignalType == "Metric" || e.MonitoringService == "Platform" || !strings.HasSuffix(e.AlertID, "/"+captureID) ||
		e.ResolvedDateTime == "" || len(e.AlertTargetIDs) != 1 || e.AlertTargetIDs[0] == "" {
		t.Errorf("%s: essentials %+v", where, e)
	}
	wantNotice(t, where+" (alertContext)", c.Data.AlertContext, captureID, captureName)
	cp := c.Data.CustomProperties
	if cp["captureName"] != captureName || cp["host"] != "web1" || cp["packets"] != "42" || cp["kernelDrops"] != "3" ||
		cp["truncatedPackets"] != "17" || cp["snapLength"] != "128" || cp["upload"] != actiongroup.UploadStored || cp["alertId"] == "" {
		t.Errorf("%s: customProperties %v", where, cp)
	}
}

// A completed capture is told in a schema of its own
// (tripcap.captureCompleted/1) to receivers without the common schema, and
// to common-schema receivers as an alert no consumer takes for a firing;
// both carry the capture's health. A responder receiver in the same group
// is not told (a completion is not an alert to act on), and that is no
// failure: the run records the notification as sent, without errors.
func TestResponderCompletionNotice(t *testing.T) {
	mta := eximtest.Start(t)
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	n := mailNotifier(t, mta)
	rsp := newResponderServer(t, f, "server-a", n, true)
	mon, err := controlplane.NewMonitor(f.store, slog.New(slog.NewTextHandler(io.Discard, nil)),
		controlplane.MonitorConfig{WebhookTargets: webhooktest.Targets(), Responder: rsp.Responders, SMTP: &actiongroup.SMTPConfig{Addr: mta.Addr, From: "alerts@example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	// The group's responder receiver hands alerts to another responder.
	catcher, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "catcher", Capture: tripcap.ResponderCapture{Name: "catcher"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.CreateActionGroup(f.admin, &tripcap.ActionGroup{Name: "ops",
		WebhookReceivers: []tripcap.WebhookReceiver{{Name: "native", ServiceURI: rc.URL + "/native"}, {Name: "common", ServiceURI: rc.URL + "/common", UseCommonAlertSchema: true}},
		EmailReceivers: []tripcap.EmailReceiver{{Name: "dev", EmailAddress: "dev@example.test"},
			{Name: "oncall", EmailAddress: "oncall@example.test", UseCommonAlertSchema: true}},
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: catcher.ID}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc", NotifyActionGroup: "ops", Capture: tripcap.ResponderCapture{BytesToCapturePerPacket: 128}}); err != nil {
		t.Fatal(err)
	}
	r := fireDecided(t, f, rsp, "pc", "fp-health")
	runs := []*tripcap.ResponderRun{r}
	id, name := r.Hosts[0].CaptureID, r.Hosts[0].CaptureName
	now := time.Now().UTC()
	truncated := uint64(17)
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: id, Status: tripcap.StatusStopped, StopReason: "TimeExceeded",
		StartTime: &now, StopTime: &now, Stats: tripcap.CaptureStats{Packets: 42, Bytes: 4000, KernelDrops: 3, TruncatedPackets: &truncated}}}); err != nil {
		t.Fatal(err)
	}
	upload(t, f, agentCtx, id)

	eventually(t, "both webhooks", func() bool { return len(rc.Accepted("/native")) == 1 && len(rc.Accepted("/common")) == 1 })
	var native completed
	if err := json.Unmarshal(rc.Accepted("/native")[0].Body, &native); err != nil {
		t.Fatal(err)
	}
	wantNotice(t, "webhook (own schema)", native, id, name)
	wantCommonNotice(t, "webhook (common schema)", rc.Accepted("/common")[0].Body, id, name)
	for _, m := range mta.WaitMail(t, 2) {
		body, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		text := qpDecode(t, body)
		i := strings.Index(text, "{")
		if i < 0 {
			t.Fatalf("mail without JSON:\n%s", text)
		}
		if !strings.Contains(m.Header.Get("Subject"), "capture completed") || strings.Contains(m.Header.Get("Subject"), "Fired") ||
			!strings.Contains(text, "Packets:") || !strings.Contains(text, "17 truncated") {
			t.Errorf("mail %q:\n%s", m.Header.Get("Subject"), text)
		}
		switch to := m.Header.Get("Envelope-To"); to {
		case "dev@example.test":
			var n completed
			if err := json.Unmarshal([]byte(text[i:]), &n); err != nil {
				t.Fatalf("mail JSON: %v\n%s", err, text)
			}
			wantNotice(t, "mail (own schema)", n, id, name)
		case "oncall@example.test":
			wantCommonNotice(t, "mail (common schema)", []byte(text[i:]), id, name)
		default:
			t.Errorf("mail to %q", to)
		}
	}
	eventually(t, "notification recorded", func() bool { return storedRun(t, f, runs[0].ID).Hosts[0].Notification != tripcap.NotifyPending })
	if r := storedRun(t, f, runs[0].ID); r.Hosts[0].Notification != tripcap.NotifySent || len(r.Errors) != 0 {
		b, _ := json.Marshal(r)
		t.Fatalf("run: %s", b)
	}
	// The responder receiver was not handed the notice.
	time.Sleep(100 * time.Millisecond)
	if all, err := rsp.FindRuns(f.admin, "catcher", 0); err != nil || len(all) != 0 {
		t.Fatalf("runs of the group's responder: %d %v", len(all), err)
	}
}

// A file storage refused is told at once, as StorageFailed with storage's
// message, rather than waited for.
func TestResponderCompletionNoticeStorageFailed(t *testing.T) {
	f := newFixture(t, controlplane.Config{})
	agentCtx, _ := f.enroll(t, "web1")
	rc := webhooktest.Start(t)
	rsp := newResponderServer(t, f, "server-a", nil, true)
	if _, err := rsp.CreateResponder(f.admin, &tripcap.Responder{Name: "pc",
		NotifyWebhookReceivers: []tripcap.WebhookReceiver{{Name: "native", ServiceURI: rc.URL + "/native"}}}); err != nil {
		t.Fatal(err)
	}
	id := fireDecided(t, f, rsp, "pc", "fp").Hosts[0].CaptureID
	now := time.Now().UTC()
	file := tripcap.CaptureFile{Name: "x.cap", Size: 400, SHA256: strings.Repeat("0", 64), LocalPath: "/var/captures/x.cap", CreatedAt: now}
	if _, err := f.svc.Report(agentCtx, []tripcap.SessionReport{{CaptureID: id, Status: tripcap.StatusError, StopReason: "TimeExceeded",
		Errors: []string{tripcap.CaptureErrStorageFailed}, Message: "x.cap: bucket captures does not exist",
		StartTime: &now, StopTime: &now, Stats: tripcap.CaptureStats{Packets: 5}, Files: []tripcap.CaptureFile{file}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the notice", func() bool { return len(rc.Accepted("/native")) == 1 })
	var n completed
	if err := json.Unmarshal(rc.Accepted("/native")[0].Body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Data.Upload.Result != actiongroup.UploadStorageFailed || !strings.Contains(n.Data.Upload.Message, "bucket captures does not exist") ||
		len(n.Data.Files) != 1 || n.Data.Files[0].Stored || n.Data.DownloadURL != "" {
		b, _ := json.MarshalIndent(n, "", " ")
		t.Fatalf("notice: %s", b)
	}
}

// fireDecided posts an Alertmanager alert on web1 to responder name and
// returns the run once it has started a capture.
func fireDecided(t *testing.T, f *fixture, rsp *responderServer, name, fingerprint string) *tripcap.ResponderRun {
	t.Helper()
	k, err := rsp.CreateKey(f.admin, name, "key-"+fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := rsp.Invoke(context.Background(), name, k.Secret, amBody("firing", "web1", fingerprint, "2026-01-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "decided", func() bool { return storedRun(t, f, runs[0].ID).Decision != tripcap.DecisionPending })
	r := storedRun(t, f, runs[0].ID)
	if r.Decision != tripcap.DecisionStarted {
		b, _ := json.Marshal(r)
		t.Fatalf("run: %s", b)
	}
	return r
}

// upload stores a capture's file as its agent would.
func upload(t *testing.T, f *fixture, agentCtx context.Context, captureID string) {
	t.Helper()
	data := bytes.Repeat([]byte("pcap"), 100)
	if _, err := f.svc.UploadFile(agentCtx, captureID, "x.cap", sha256hex(data), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func qpDecode(t *testing.T, b []byte) string {
	t.Helper()
	out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
