package afpacket

import (
	"io"
	"log/slog"
	"os"
	"path"
	"time"

	xbpf "golang.org/x/net/bpf"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// Defaults of Config.
const (
	DefaultRingBytes     = 32 << 20
	DefaultBlockBytes    = 1 << 20
	DefaultBlockTimeout  = 50 * time.Millisecond
	DefaultWriteBuffer   = 256 << 10
	DefaultFlushInterval = time.Second
	// The agent's pre-trigger buffer is on by default: the packets from
	// before an alert are the point of an alert-triggered capture. Its
	// budget is bounded in time and memory, whichever comes first.
	DefaultPreTriggerSeconds = 30
	DefaultPreTriggerBytes   = 64 << 20
)

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	// CaptureDir confines every file the engine writes (default /var/captures).
	CaptureDir string
	// RingBytes is the TPACKET_V3 ring of each socket (default 32 MiB),
	// made of blocks of BlockBytes (default 1 MiB). The kernel hands
	// over a block when it is full or BlockTimeout (default 50 ms) after
	// its first packet.
	RingBytes    int
	BlockBytes   int
	BlockTimeout time.Duration
	// WriteBufferBytes is the file write buffer (default 256 KiB: small
	// enough to stay in the CPU's cache between being filled and being
	// copied into the file by write(2), large enough to keep system
	// calls few). Records reach the file whole when it fills, every
	// FlushInterval (default 1 s), and at stop.
	WriteBufferBytes int
	FlushInterval    time.Duration
	// PreTrigger configures the pre-trigger buffer, started by Open.
	PreTrigger PreTriggerConfig
	Logger     *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.CaptureDir == "" {
		c.CaptureDir = tripcap.DefaultCaptureDir
	}
	c.CaptureDir = path.Clean(c.CaptureDir)
	if c.BlockBytes <= 0 {
		c.BlockBytes = DefaultBlockBytes
	}
	// Blocks are whole pages and hold at least one packet of the largest snap length.
	page := os.Getpagesize()
	c.BlockBytes = max(c.BlockBytes, pcapfile.MaxSnapLen+page)
	c.BlockBytes = (c.BlockBytes + page - 1) / page * page
	if c.RingBytes <= 0 {
		c.RingBytes = DefaultRingBytes
	}
	c.RingBytes = max(c.RingBytes, 2*c.BlockBytes)
	if c.BlockTimeout < time.Millisecond {
		c.BlockTimeout = DefaultBlockTimeout
	}
	if c.WriteBufferBytes <= 0 {
		c.WriteBufferBytes = DefaultWriteBuffer
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SessionOptions are what `tripcap capture run` adds to a spec.
type SessionOptions struct {
	// RawFilter replaces the spec's filters with a BPF program (tcpdump
	// -ddd), attached as is on every interface.
	RawFilter []xbpf.RawInstruction
	// Stream, when set, receives the capture instead of a file (the
	// spec's Path is then unused): `capture run -w -`. The same records
	// as a file's, flushed after every ring block and every flush
	// interval, so a pipe's reader (wireshark -k -i -) sees packets
	// within a block timeout. A stream is not guarded against kill -9
	// (there is no file to repair), cannot rotate (continuous captures
	// are refused) and has nothing beside it for metadata (refused).
	// When its reader goes away (EPIPE, a closed pipe) the session ends
	// with StopStreamClosed and no error. The caller owns the writer:
	// the session never closes it.
	Stream io.Writer
}

// StopStreamClosed is the stop reason of a session whose Stream's reader
// went away (a closed pipe): the end a tcpdump -w - | … pipeline expects,
// not an error. Only local sessions stream; Azure's stop reasons have no
// such case.
const StopStreamClosed = "StreamClosed"

// PreTriggerConfig configures the agent's pre-trigger buffer: an in-memory
// ring of the host's most recent packets, from which a session with
// preTriggerSeconds starts its file.
type PreTriggerConfig struct {
	// Seconds of traffic kept; 0 disables the buffer.
	Seconds int
	// Bytes bounds the memory the buffer holds (default 64 MiB).
	Bytes int64
	// SnapLen is how much of each packet is kept (default 65535).
	SnapLen uint32
	// Interfaces to buffer (default: every up, non-loopback interface).
	Interfaces []string
	// Filters select what is buffered, Azure filters OR-ed (default: all).
	Filters []tripcap.PacketCaptureFilter
}

// PreTriggerStats describe the pre-trigger buffer.
type PreTriggerStats struct {
	Enabled    bool     `json:"enabled"`
	Interfaces []string `json:"interfaces,omitempty"`
	// CapacityBytes is the bound on the buffer's memory.
	CapacityBytes int64 `json:"capacityBytes"`
	// AllocatedBytes is the memory the buffer holds now (≤ CapacityBytes).
	AllocatedBytes int64 `json:"allocatedBytes"`
	// UsedBytes is what the buffered records take.
	UsedBytes   int64     `json:"usedBytes"`
	Packets     int       `json:"packets"`
	Oldest      time.Time `json:"oldest,omitzero"`
	Newest      time.Time `json:"newest,omitzero"`
	KernelDrops uint64    `json:"kernelDrops"`
}
