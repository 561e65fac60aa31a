//go:build linux

package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestCaptureFilterExpression: captures created with a tcpdump expression,
// through the CLI (positional, as tcpdump takes it) and the API (with Azure
// filters too, both must match), hold only the matching packets, as
// capinfos counts and tcpdump's own reading of the file confirm. A bad
// expression is refused at creation, naming the field and the token.
func TestCaptureFilterExpression(t *testing.T) {
	l := newLab(t)
	h1, h2, h3 := l.addHost("h1"), l.addHost("h2"), l.addHost("h3")
	l.link(h1, h2)
	l.link(h2, h3)
	h1Addr := h1.data["h2"].String()
	cliExpr := "udp dst port 7001 and src host " + h1Addr
	l.cli(nil, "capture", "create", "expr-cli", "--host", "h2", "--time-limit", "4s", "udp", "dst", "port", "7001", "and", "src", "host", h1Addr)
	created, err := l.api().CreateCapture(t.Context(), tchttp.CreateCaptureBody{Name: "expr-api", Parameters: tripcap.PacketCaptureParameters{Target: "h3", TimeLimitInSeconds: 4,
		Filters: []tripcap.PacketCaptureFilter{{Protocol: "UDP", LocalPort: "7002"}}, FilterExpression: "greater 200"}})
	if err != nil || created.Parameters.FilterExpression != "greater 200" {
		t.Fatalf("POST /api/v1/captures with filterExpression: %v, %+v", err, created)
	}
	if got := l.capture("expr-cli").Parameters.FilterExpression; got != cliExpr {
		t.Fatalf("expr-cli filterExpression %q, want %q", got, cliExpr)
	}
	for _, n := range []string{"expr-cli", "expr-api"} {
		l.eventually(n+" Running", 3*time.Second, func() bool { return l.capture(n).Status == tripcap.StatusRunning })
	}
	l.send(h1, h2, 7001, 300, 1)           // kept by expr-cli
	l.send(h3, h2, 7001, 200, 2)           // other source: dropped
	l.send(h1, h2, 7005, 100, 3)           // other port: dropped
	l.sendSized(h2, h3, 7002, 150, 300, 4) // kept by expr-api: port and size
	l.sendSized(h2, h3, 7002, 120, 50, 5)  // the port, but small: dropped
	l.sendSized(h2, h3, 7003, 100, 300, 6) // big, other port: dropped

	for _, n := range []string{"expr-cli", "expr-api"} {
		l.eventually(n+" stored", 15*time.Second, func() bool {
			c := l.capture(n)
			return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
		})
	}
	for _, tc := range []struct {
		name, expr string
		want       int
		flow       uint32
	}{
		{"expr-cli", cliExpr, 300, 1},
		{"expr-api", "udp dst port 7002 and greater 200", 150, 4},
	} {
		f := l.download(tc.name)
		if n := packets(t, f); n != tc.want {
			t.Errorf("%s: capinfos counts %d packets, want %d", tc.name, n, tc.want)
		}
		if seqs := stampedSeqs(t, f, tc.flow); len(seqs) != tc.want {
			t.Errorf("%s holds %d of flow %d's %d datagrams", tc.name, len(seqs), tc.flow, tc.want)
		}
		// tcpdump reading the file with the expression keeps every packet.
		out, err := exec.Command("tcpdump", "-n", "-r", f, tc.expr).Output()
		if err != nil {
			t.Fatalf("tcpdump -r %s %q: %v", f, tc.expr, err)
		}
		if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); n != tc.want {
			t.Errorf("%s: tcpdump -r with %q keeps %d of the %d packets", tc.name, tc.expr, n, tc.want)
		}
	}

	// Refused at creation, through the CLI and the API, the field named.
	var cliErr error
	out := l.cli(&cliErr, "capture", "create", "expr-bad", "--host", "h2", "tcp", "port", "80", "and", "hots", "198.18.0.2")
	if cliErr == nil || !strings.Contains(cliErr.Error(), `"hots" at position 17`) {
		t.Fatalf("capture create with a bad expression: %v, %s; want an error naming \"hots\" at position 17", cliErr, out)
	}
	_, err = l.api().CreateCapture(t.Context(), tchttp.CreateCaptureBody{Name: "expr-bad", Parameters: tripcap.PacketCaptureParameters{Target: "h2",
		FilterExpression: "tcp port 80 and host web.example.com"}})
	if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(tripcap.ErrorMessage(err), "filterExpression: ") || !strings.Contains(tripcap.ErrorMessage(err), `"web.example.com" at position 22`) {
		t.Fatalf("API with a host name: %v; want EINVALID naming filterExpression and the token", err)
	}
}
