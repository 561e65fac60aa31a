package tripcap

import (
	"context"
	"time"
)

// CaptureSpec is one session an agent asks its capture engine to run.
type CaptureSpec struct {
	ID         string
	Name       string
	Parameters PacketCaptureParameters
	// Path is the session's first (or only) file, already confined to the
	// agent's capture directory. Continuous sessions number their files from it.
	Path string
	// Comment goes into the pcapng section header: the capture's name, id and cause.
	Comment string
}

// CaptureResult is how a session ended.
type CaptureResult struct {
	StopReason string
	// Errors holds Azure packetCaptureError values; Message the detail.
	Errors    []string
	Message   string
	Files     []string
	Stats     CaptureStats
	StartTime time.Time
	StopTime  time.Time
}

// LocalFileError is an engine's failure to create or write a capture file
// (a full disk, a read-only directory): the session fails LocalFileFailed,
// not CaptureFailed, and its text says why (the host's own, safe to show).
type LocalFileError struct{ Err error }

func (e *LocalFileError) Error() string { return e.Err.Error() }
func (e *LocalFileError) Unwrap() error { return e.Err }

// CaptureEngine runs capture sessions on the local host. Several sessions may
// run at once, each independent.
type CaptureEngine interface {
	// Start opens the capture and returns once packets are being captured.
	// ctx bounds the start only; the session runs until it hits a limit or is stopped.
	Start(ctx context.Context, spec CaptureSpec) (CaptureSession, error)
}

// CaptureSession is a running capture.
type CaptureSession interface {
	// Stats returns the live counters.
	Stats() CaptureStats
	// Files lists the files written so far, oldest first.
	Files() []string
	// Stop ends the session with the given stop reason (ManuallyStopped, SessionDeleted…).
	Stop(reason string)
	// Done is closed when the session has ended and its files are flushed.
	Done() <-chan struct{}
	// Result is valid once Done is closed.
	Result() CaptureResult
}
