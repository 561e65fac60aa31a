package tripcap_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

func TestResponderDefaultsAndValidate(t *testing.T) {
	r := &tripcap.Responder{Name: "capture"}
	r.ApplyDefaults()
	if r.Capture.Name != "PSAzureFunction" || r.Capture.TimeLimitInSeconds != 30 || r.Limit != 100 || r.NameConflict != tripcap.ConflictReplace {
		t.Fatalf("defaults are not the seed's: %+v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		mod   func(r *tripcap.Responder)
	}{
		{"name", func(r *tripcap.Responder) { r.Name = "" }},
		{"name", func(r *tripcap.Responder) { r.Name = "a/b" }},
		{"capture.name", func(r *tripcap.Responder) { r.Capture.Name = "a b" }},
		{"nameConflict", func(r *tripcap.Responder) { r.NameConflict = "merge" }},
		{"limit", func(r *tripcap.Responder) { r.Limit = -1 }},
		{"cooldownMinutes", func(r *tripcap.Responder) { r.CooldownMinutes = 1 << 30 }},
		{"targetLabels[1]", func(r *tripcap.Responder) { r.TargetLabels = []string{"host", " "} }},
		{"capture.timeLimitInSeconds", func(r *tripcap.Responder) { r.Capture.TimeLimitInSeconds = 18001 }},
		{"capture.preTriggerSeconds", func(r *tripcap.Responder) { r.Capture.PreTriggerSeconds = -1 }},
		{"capture.format", func(r *tripcap.Responder) { r.Capture.Format = "cap" }},
		{"capture.filters", func(r *tripcap.Responder) {
			r.Capture.Filters = []tripcap.PacketCaptureFilter{{LocalIPAddress: "not-an-ip"}}
		}},
	}
	for _, tt := range tests {
		c := *r
		tt.mod(&c)
		err := c.Validate()
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), tt.field) {
			t.Errorf("%s: got %v", tt.field, err)
		}
	}
}

func TestResponderParametersFillPlaceholders(t *testing.T) {
	c := tripcap.ResponderCapture{
		TimeLimitInSeconds: 30, PreTriggerSeconds: 10,
		Filters: []tripcap.PacketCaptureFilter{{Protocol: "TCP", LocalIPAddress: tripcap.PlaceholderHostAddress, RemoteIPAddress: "10.0.0.9"}},
	}
	r := &tripcap.Responder{Name: "x", Capture: c}
	if err := r.Validate(); err != nil {
		t.Fatalf("placeholder refused: %v", err)
	}
	p := c.Parameters("vm1", "vm1", "10.0.0.4", "", "/var/captures/x.cap")
	if p.Filters[0].LocalIPAddress != "10.0.0.4" || c.Filters[0].LocalIPAddress != tripcap.PlaceholderHostAddress {
		t.Fatalf("placeholder not filled, or template changed: %+v %+v", p.Filters, c.Filters)
	}
	if p.Target != "vm1" || p.PreTriggerSeconds != 10 || p.StorageLocation.LocalPath != "/var/captures/x.cap" {
		t.Fatalf("parameters: %+v", p)
	}
	p = c.Parameters("vm1", "vm1", "10.0.0.4", "/sa", "/var/captures/x.cap")
	if p.StorageLocation.StorageID != "/sa" || p.StorageLocation.LocalPath != "" {
		t.Fatalf("storage: %+v", p.StorageLocation)
	}
}
