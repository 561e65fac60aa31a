//go:build linux

package afpacket

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/netns"
	"github.com/tripcap/tripcap/internal/trafficgen"
)

// streamReader decodes a capture stream as it comes, as a pipe's reader
// (wireshark -k -i -) does.
type streamReader struct {
	mu   sync.Mutex
	pkts []packet
	done chan error // the decoder's end: nil at the stream's end
}

func readStream(r io.Reader) *streamReader {
	sr := &streamReader{done: make(chan error, 1)}
	go func() {
		sr.done <- decodeCapture(r, func(p packet) {
			sr.mu.Lock()
			sr.pkts = append(sr.pkts, p)
			sr.mu.Unlock()
		})
	}()
	return sr
}

// flow counts the packets of a trafficgen flow read so far.
func (sr *streamReader) flow(id uint32) int {
	sr.mu.Lock()
	ids, _ := stamps(sr.pkts)
	sr.mu.Unlock()
	n := 0
	for _, got := range ids {
		if got == id {
			n++
		}
	}
	return n
}

// waitFlow waits until the reader has n packets of flow id.
func (sr *streamReader) waitFlow(t *testing.T, id uint32, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for sr.flow(id) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the stream's reader got %d packets of flow %d within %v, want %d", sr.flow(id), id, d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStream streams a session into a pipe read as it runs: the packets
// reach the reader while the capture goes on (flushed per block, not at
// stop), in pcap (the fast path), pcapng, and a whole-host capture (the
// merge of interfaces); the stream ends with a whole trailer; no file is
// written, and the counters are what the reader got.
func TestStream(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	sink(t, n.b, "udp", n.bAddr(7000))
	for _, tc := range []struct {
		name   string
		format string
		ifaces []string
	}{
		{"pcap", tripcap.FormatPcap, []string{n.link.B.Name}},
		{"pcapng", tripcap.FormatPcapng, []string{n.link.B.Name}},
		{"whole-host", tripcap.FormatPcap, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, dir := newTestEngine(t, Config{})
			pr, pw := io.Pipe()
			sr := readStream(pr)
			sp := spec(dir, "unused", tripcap.PacketCaptureParameters{Format: tc.format, Interfaces: tc.ifaces})
			s := startIn(t, n.b, e, sp, SessionOptions{Stream: pw})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 30, PayloadSize: 100, ID: 1})
			// Wireshark shows packets as they come: they must not wait
			// for the stop, nor for a full write buffer.
			sr.waitFlow(t, 1, 30, 3*time.Second)
			res := stopAndWait(t, s, tripcap.StopManuallyStopped)
			pw.Close() // the session leaves the stream to its owner
			if err := <-sr.done; err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			if res.StopReason != tripcap.StopManuallyStopped || len(res.Errors) != 0 || len(res.Files) != 0 {
				t.Errorf("result %+v, want ManuallyStopped, no error, no file", res)
			}
			if got := len(sr.pkts); res.Stats.Packets != uint64(got) || sr.flow(1) != 30 {
				t.Errorf("%d packets counted, %d read, %d of the 30 sent", res.Stats.Packets, got, sr.flow(1))
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a stream wrote files: %v", ents)
			}
		})
	}
}

// TestStreamReaderGone closes the stream's reader mid-capture: the session
// ends promptly with StreamClosed and no error, counting only what the
// reader could take.
func TestStreamReaderGone(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	sink(t, n.b, "udp", n.bAddr(7000))
	for _, format := range []string{tripcap.FormatPcap, tripcap.FormatPcapng} {
		t.Run(format, func(t *testing.T) {
			e, dir := newTestEngine(t, Config{})
			pr, pw := io.Pipe()
			sr := readStream(pr)
			s := startIn(t, n.b, e, spec(dir, "unused", tripcap.PacketCaptureParameters{Format: format, Interfaces: []string{n.link.B.Name}}), SessionOptions{Stream: pw})
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 5, PayloadSize: 100, ID: 1})
			sr.waitFlow(t, 1, 5, 3*time.Second)
			pr.Close()
			<-sr.done
			send(t, n.a, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 20, PayloadSize: 100, ID: 2})
			res := waitDone(t, s, 3*time.Second)
			if res.StopReason != StopStreamClosed || len(res.Errors) != 0 || !strings.Contains(res.Message, "reader went away") {
				t.Errorf("result %+v, want StreamClosed, no error, the reason in the message", res)
			}
			if res.Stats.Packets < 5 || res.Stats.Packets > 25 {
				t.Errorf("%d packets counted, want what the reader took (5 and up to the 20 sent after)", res.Stats.Packets)
			}
		})
	}
}

// TestStreamRefused: a stream cannot rotate nor have metadata beside it.
func TestStreamRefused(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	e, dir := newTestEngine(t, Config{})
	cont, count, size, secs := true, int32(2), int64(1<<20), int32(60)
	for _, tc := range []struct {
		field string
		p     tripcap.PacketCaptureParameters
	}{
		{"continuousCapture", tripcap.PacketCaptureParameters{ContinuousCapture: &cont,
			CaptureSettings: &tripcap.CaptureSettings{FileCount: &count, FileSizeInBytes: &size, SessionTimeLimitInSeconds: &secs}}},
		{"includeMetadata", tripcap.PacketCaptureParameters{IncludeMetadata: true}},
	} {
		tc.p.Interfaces = []string{n.link.B.Name}
		_, err := startInErr(n.b, e, spec(dir, "refused", tc.p), SessionOptions{Stream: io.Discard})
		if tripcap.ErrorCode(err) != tripcap.EINVALID || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s with a stream: %v, want EINVALID naming the field", tc.field, err)
		}
	}
}

// TestStreamSteadyTraffic: under steady traffic a reader never waits for
// the flush interval (1 s): every block the kernel hands over (at most a
// block timeout, 50 ms, after its first packet) is written out at once.
// The ring never falls idle here, so only the per-block flush can pass.
func TestStreamSteadyTraffic(t *testing.T) {
	n := newTestNet(t, netns.LinkOptions{})
	sink(t, n.b, "udp", n.bAddr(7000))
	e, dir := newTestEngine(t, Config{})
	pr, pw := io.Pipe()
	defer pw.Close()
	sr := readStream(pr)
	s := startIn(t, n.b, e, spec(dir, "unused", tripcap.PacketCaptureParameters{Interfaces: []string{n.link.B.Name}}), SessionOptions{Stream: pw})
	// 2 s of one packet every 5 ms.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.a.Do(func() error {
			_, err := trafficgen.Send(ctx, trafficgen.Flow{Network: "udp", Dst: n.bAddr(7000), Count: 400, PayloadSize: 100, Interval: 5 * time.Millisecond, ID: 1})
			return err
		}); err != nil {
			t.Errorf("sending: %v", err)
		}
	}()
	start := time.Now()
	// 20 packets are sent by 100 ms; 800 ms leaves room for a loaded
	// machine and none for a flush that waits for the interval.
	sr.waitFlow(t, 1, 20, 800*time.Millisecond)
	t.Logf("20 packets read %v after the flow began", time.Since(start))
	<-sent
	stopAndWait(t, s, tripcap.StopManuallyStopped)
}
