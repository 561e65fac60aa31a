//go:build !linux

package afpacket

import (
	"context"

	"github.com/tripcap/tripcap"
)

// Engine is the capture engine; capturing needs Linux (AF_PACKET), so on
// other systems every session fails to start.
type Engine struct{ cfg Config }

var _ tripcap.CaptureEngine = (*Engine)(nil)

// NewEngine returns an engine that cannot capture on this system.
func NewEngine(cfg Config) *Engine { return &Engine{cfg: cfg.withDefaults()} }

// Open fails when a pre-trigger buffer is configured.
func (e *Engine) Open(context.Context) error {
	if e.cfg.PreTrigger.Seconds > 0 {
		return errNotLinux()
	}
	return nil
}

// Close does nothing.
func (e *Engine) Close() error { return nil }

// PreTriggerStats reports no buffer.
func (e *Engine) PreTriggerStats() PreTriggerStats { return PreTriggerStats{} }

// PreTriggerRing reports no buffer.
func (e *Engine) PreTriggerRing() tripcap.PreTriggerRing { return tripcap.PreTriggerRing{} }

// Start fails: capturing needs Linux.
func (e *Engine) Start(ctx context.Context, spec tripcap.CaptureSpec) (tripcap.CaptureSession, error) {
	return nil, errNotLinux()
}

// StartSession fails: capturing needs Linux.
func (e *Engine) StartSession(context.Context, tripcap.CaptureSpec, SessionOptions) (*Session, error) {
	return nil, errNotLinux()
}

// Session is never started on this system.
type Session struct{ done chan struct{} }

func (s *Session) Stats() tripcap.CaptureStats   { return tripcap.CaptureStats{} }
func (s *Session) Files() []string               { return nil }
func (s *Session) Stop(string)                   {}
func (s *Session) Done() <-chan struct{}         { return s.done }
func (s *Session) Result() tripcap.CaptureResult { return tripcap.CaptureResult{} }

func errNotLinux() error {
	return tripcap.Errorf(tripcap.EUNAVAILABLE, "capturing packets needs Linux (AF_PACKET)")
}
