package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

// takesWords annotates a command whose trailing words are a list (files, or
// a tcpdump expression as tcpdump takes it): any number of them is a valid
// command line.
const takesWords = "tripcap/words"

// captureFlags are the filter and limit flags that `capture create` and
// `capture run` share, so both speak the same language.
type captureFlags struct {
	filters []string
	// expression is the tcpdump expression, from the positional arguments.
	expression            string
	interfaces            []string
	bytesPerPacket, total int64
	timeLimit             time.Duration
	format                string
	continuous            bool
	fileCount             int32
	fileSize              int64
	sessionTimeLimit      time.Duration
	preTrigger            time.Duration
	metadata              bool
}

func (f *captureFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.filters, "filter", nil, "Azure filter 'protocol=TCP,localIPAddress=…,localPort=80;443,remoteIPAddress=a-b,remotePort=…' (repeat to OR)")
	fl.StringArrayVar(&f.interfaces, "interface", nil, "interface to capture on (repeatable; default every up, non-loopback interface)")
	fl.Int64Var(&f.bytesPerPacket, "bytes-per-packet", 0, "bytes kept of each packet (0 = whole packet)")
	fl.Int64Var(&f.total, "total-bytes", tripcap.DefaultTotalBytesPerSession, "stop when the file reaches this size")
	fl.DurationVar(&f.timeLimit, "time-limit", tripcap.DefaultTimeLimitInSeconds*time.Second, "stop after this long (at most 5h)")
	fl.StringVar(&f.format, "format", tripcap.FormatPcap, "file format: pcap or pcapng")
	fl.BoolVar(&f.continuous, "continuous", false, "continuous capture: a ring of files")
	fl.Int32Var(&f.fileCount, "file-count", tripcap.DefaultFileCount, "continuous: files in the ring")
	fl.Int64Var(&f.fileSize, "file-size", tripcap.DefaultFileSizeInBytes, "continuous: bytes per file")
	fl.DurationVar(&f.sessionTimeLimit, "session-time-limit", tripcap.DefaultSessionTimeLimitInSeconds*time.Second, "continuous: stop after this long")
	fl.DurationVar(&f.preTrigger, "pre-trigger", 0, "start the file with this much buffered traffic from before the capture (agent's ring)")
	fl.BoolVar(&f.metadata, "metadata", false, "collect the host's network state (addresses, routes, rules, sockets) with the capture")
}

// setExpression takes the tcpdump expression as tcpdump does: the
// arguments joined by spaces, so quoting is optional.
func (f *captureFlags) setExpression(args []string) {
	f.expression = strings.Join(args, " ")
}

// seconds converts a duration flag to whole seconds, refusing fractions.
func seconds(flag string, d time.Duration) (int32, error) {
	if d < 0 || d%time.Second != 0 || d/time.Second > 1<<31-1 {
		return 0, tripcap.Errorf(tripcap.EINVALID, "--%s: %s is not a whole number of seconds", flag, d)
	}
	return int32(d / time.Second), nil
}

// parameters builds capture parameters (without target and storage) from the flags.
func (f *captureFlags) parameters() (tripcap.PacketCaptureParameters, error) {
	p := tripcap.PacketCaptureParameters{
		BytesToCapturePerPacket: f.bytesPerPacket,
		TotalBytesPerSession:    f.total,
		Format:                  f.format,
		Interfaces:              f.interfaces,
		IncludeMetadata:         f.metadata,
	}
	var err error
	if p.TimeLimitInSeconds, err = seconds("time-limit", f.timeLimit); err != nil {
		return p, err
	}
	if p.PreTriggerSeconds, err = seconds("pre-trigger", f.preTrigger); err != nil {
		return p, err
	}
	for i, s := range f.filters {
		flt, err := tripcap.ParseFilterFlag(s)
		if err != nil {
			return p, fmt.Errorf("--filter #%d: %w", i+1, err)
		}
		p.Filters = append(p.Filters, flt)
	}
	if f.expression != "" {
		if _, err := tripcap.ParseFilterExpression(f.expression); err != nil {
			return p, fmt.Errorf("expression %q: %w", f.expression, err)
		}
		p.FilterExpression = f.expression
	}
	if f.continuous {
		st, err := seconds("session-time-limit", f.sessionTimeLimit)
		if err != nil {
			return p, err
		}
		p.ContinuousCapture = &f.continuous
		p.CaptureSettings = &tripcap.CaptureSettings{FileCount: &f.fileCount, FileSizeInBytes: &f.fileSize, SessionTimeLimitInSeconds: &st}
	}
	return p, nil
}
