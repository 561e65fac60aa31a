package tripcap_test

import (
	"strings"
	"testing"

	"github.com/tripcap/tripcap"
)

// TestFilterExpressionValidated: a capture's and a responder template's
// expression is checked at creation, the field named.
func TestFilterExpressionValidated(t *testing.T) {
	p := tripcap.PacketCaptureParameters{Target: "h", StorageLocation: tripcap.StorageLocation{LocalPath: "x.cap"},
		FilterExpression: "tcp port 80 and host 198.18.0.2"}
	if err := p.Validate(); err != nil {
		t.Fatalf("a good expression is refused: %v", err)
	}
	p.FilterExpression = "tcp port 80 and"
	if err := p.Validate(); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), "filterExpression: unexpected end") {
		t.Fatalf("a bad expression: %v", err)
	}

	c := tripcap.ResponderCapture{TimeLimitInSeconds: 30, FilterExpression: "tcp port 443 and host " + tripcap.PlaceholderHostAddress}
	r := &tripcap.Responder{Name: "x", Capture: c}
	if err := r.Validate(); err != nil {
		t.Fatalf("template with a placeholder refused: %v", err)
	}
	if got := c.Parameters("vm1", "vm1", "198.18.0.4", "", "/var/captures/x.cap").FilterExpression; got != "tcp port 443 and host 198.18.0.4" {
		t.Fatalf("template expression %q", got)
	}
	r.Capture.FilterExpression = "host " + tripcap.PlaceholderHostName // a name: never looked up
	if err := r.Validate(); tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.HasPrefix(tripcap.ErrorMessage(err), "capture.filterExpression: ") {
		t.Fatalf("template with a host name: %v", err)
	}
}
