package actiongroup

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/tripcap/tripcap"
)

func sampleCompletion() *CaptureCompleted {
	truncated := uint64(4)
	return &CaptureCompleted{SchemaID: SchemaCaptureCompleted, Data: CaptureCompletedData{
		EventID: "cap1", Time: "2026-03-02T10:05:00Z", Responder: CompletedRef{ID: "r1", Name: "pc"}, RunID: "run1",
		Alert: CompletedAlert{ID: "a1b2", Condition: "Fired"},
		Host:  CompletedHost{ID: "h1", Name: "vm1", ResourceID: tripcap.VMResourceID("sub1", "RG1", "vm1"), SubscriptionID: "sub1"},
		Capture: CompletedCapture{ID: "cap1", Name: "PSAzureFunction-vm1", Status: "Stopped", StopReason: "TimeExceeded", Errors: []string{},
			StartTime: "2026-03-02T10:04:01Z", StopTime: "2026-03-02T10:04:31Z"},
		Stats:  CompletedStats{Packets: 10, KernelDrops: 1, SnapLength: 64, TruncatedPackets: &truncated, InterfacesEnded: []InterfaceEnded{}},
		Upload: CompletedUpload{Result: UploadStored}, Files: []CompletedFile{},
	}}
}

// NotifyCompletion posts the notice to webhooks in the schema each asks
// for, records deliveries under the capture's id, and leaves responder
// receivers out: no attempt, no failure.
func TestNotifyCompletionSkipsResponders(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.URL.Path] = b
		mu.Unlock()
	}))
	defer srv.Close()
	log := &memLog{}
	n, err := New(Config{Log: log, Retry: fastRetry(), Targets: loopback})
	if err != nil {
		t.Fatal(err)
	}
	g := &tripcap.ActionGroup{ID: "g1", Name: "ops", SigningSecret: "s",
		WebhookReceivers:   []tripcap.WebhookReceiver{{Name: "own", ServiceURI: srv.URL + "/own"}, {Name: "common", ServiceURI: srv.URL + "/common", UseCommonAlertSchema: true}},
		ResponderReceivers: []tripcap.ResponderReceiver{{Name: "cap", ResponderID: "pc"}}}
	ds := n.NotifyCompletion(t.Context(), g, sampleCompletion())
	if len(ds) != 2 {
		t.Fatalf("deliveries %+v, want the two webhooks'", ds)
	}
	for _, d := range ds {
		if !d.Success || d.AlertID != "cap1" || d.ReceiverKind != tripcap.ReceiverWebhook || d.MonitorCondition != "" {
			t.Errorf("delivery %+v", d)
		}
	}
	var own CaptureCompleted
	if err := json.Unmarshal(bodies["/own"], &own); err != nil || own.SchemaID != SchemaCaptureCompleted || own.Data.Stats.TruncatedPackets == nil {
		t.Fatalf("own schema: %s %v", bodies["/own"], err)
	}
	var common CompletionCommonAlert
	if err := json.Unmarshal(bodies["/common"], &common); err != nil {
		t.Fatal(err)
	}
	e := common.Data.Essentials
	if common.SchemaID != SchemaCommon || e.MonitorCondition != "Resolved" || e.AlertID != "/subscriptions/sub1/providers/Microsoft.AlertsManagement/alerts/cap1" ||
		e.SignalType != "Activity Log" || e.MonitoringService != MonitoringServiceTripcap || e.FiredDateTime != "2026-03-02T10:04:01Z" ||
		e.ResolvedDateTime != "2026-03-02T10:04:31Z" || common.Data.CustomProperties["truncatedPackets"] != "4" || common.Data.CustomProperties["notice"] != SchemaCaptureCompleted {
		t.Fatalf("common schema: %s", bodies["/common"])
	}
	// Only responder receivers: nothing to deliver, nothing failed.
	if ds := n.NotifyCompletion(t.Context(), &tripcap.ActionGroup{Name: "cap", ResponderReceivers: g.ResponderReceivers}, sampleCompletion()); len(ds) != 0 {
		t.Fatalf("deliveries to a responder: %+v", ds)
	}
}
