package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	xbpf "golang.org/x/net/bpf"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/afpacket"
	"github.com/tripcap/tripcap/bpf"
)

// captureRunResult is what `capture run` prints when it ends.
type captureRunResult struct {
	Packets     uint64    `json:"packets"`
	Bytes       uint64    `json:"bytes"`
	KernelDrops uint64    `json:"kernelDrops"`
	StopReason  string    `json:"stopReason"`
	Errors      []string  `json:"errors,omitempty"`
	Message     string    `json:"message,omitempty"`
	Files       []string  `json:"files"`
	StartTime   time.Time `json:"startTime"`
	StopTime    time.Time `json:"stopTime"`
}

func newCaptureRunCmd() *cobra.Command {
	var f captureFlags
	var file, bpfFile, comment string
	var bufferKiB int
	cmd := &cobra.Command{
		Use:   "run -w FILE [EXPRESSION]",
		Short: "Capture packets on this host into a file, like tcpdump -w",
		Long: `Capture packets on this host with the agent's engine (AF_PACKET, TPACKET_V3),
into a pcap or pcapng file (-w, relative to the working directory as with
tcpdump; .pcapng writes pcapng unless --format says otherwise). EXPRESSION is a
tcpdump filter expression (docs/filters.md); with --filter too, a packet must
match both. It stops on --time-limit, --total-bytes, or SIGINT/SIGTERM
(ManuallyStopped), then prints the session's statistics. Needs root or CAP_NET_RAW.`,
		Example: `  tripcap capture run -i eth0 -w web.cap 'tcp port 80 and host 198.18.0.2'
  tripcap capture run -w web.cap --filter 'protocol=TCP,localPort=80' --time-limit 30s
  tripcap capture run -i eth0 -i lo --format pcapng -w both.pcapng
  tripcap capture run --bpf-file prog.txt -w custom.cap   # tcpdump -ddd output`,
		Args:        cobra.ArbitraryArgs,
		Annotations: map[string]string{takesWords: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.setExpression(args)
			if file == "" {
				return tripcap.Errorf(tripcap.EINVALID, "-w: required: the capture file")
			}
			if _, err := jsonOutput(cmd); err != nil {
				return err
			}
			if !cmd.Flags().Changed("format") && strings.EqualFold(filepath.Ext(file), ".pcapng") {
				f.format = tripcap.FormatPcapng
			}
			p, err := f.parameters()
			if err != nil {
				return err
			}
			p.Target = "localhost"
			var opts afpacket.SessionOptions
			if bpfFile != "" {
				if len(p.Filters) > 0 || p.FilterExpression != "" {
					return tripcap.Errorf(tripcap.EINVALID, "--bpf-file and --filter or an expression: give one or the other")
				}
				if opts.RawFilter, err = readBPFFile(bpfFile); err != nil {
					return err
				}
			}
			// A local command writes where its user says, as tcpdump does:
			// the capture directory's confinement is for remote requests
			// (API, responders), not for a shell that could write anyway.
			path, err := filepath.Abs(file)
			if err != nil {
				return fmt.Errorf("-w %s: %w", file, err)
			}
			p.StorageLocation.LocalPath = path
			eng := afpacket.NewEngine(afpacket.Config{
				CaptureDir: filepath.Dir(path),
				RingBytes:  bufferKiB << 10,
				Logger:     newLogger(cmd),
			})
			defer eng.Close()
			spec := tripcap.CaptureSpec{ID: tripcap.NewID(), Name: "capture-run", Parameters: p, Path: path, Comment: comment}
			sess, err := eng.StartSession(cmd.Context(), spec, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "capturing to %s; Ctrl-C stops\n", path)
			return waitCaptureRun(cmd, sess)
		},
	}
	// The shared capture flags, with tcpdump's -i for --interface in
	// this tcpdump-like command (a shorthand must be set before a flag
	// is added, hence the detour).
	var shared cobra.Command
	f.add(&shared)
	fl := cmd.Flags()
	shared.Flags().VisitAll(func(sf *pflag.Flag) {
		if sf.Name == "interface" {
			sf.Shorthand = "i"
		}
		fl.AddFlag(sf)
	})
	fl.StringVarP(&file, "write", "w", "", "capture file (relative to the working directory)")
	fl.StringVar(&bpfFile, "bpf-file", "", "attach this BPF program (tcpdump -ddd or -dd output) instead of --filter")
	fl.StringVar(&comment, "comment", "", "pcapng section comment")
	fl.IntVar(&bufferKiB, "buffer-size", afpacket.DefaultRingBytes>>10, "kernel ring per interface, in KiB (like tcpdump -B)")
	return cmd
}

// waitCaptureRun stops the session when the command's context ends (SIGINT,
// SIGTERM), waits for it, and prints the result.
func waitCaptureRun(cmd *cobra.Command, sess *afpacket.Session) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-sess.Done():
	case <-ctx.Done():
		sess.Stop(tripcap.StopManuallyStopped)
		<-sess.Done()
	}
	res := sess.Result()
	out := captureRunResult{
		Packets: res.Stats.Packets, Bytes: res.Stats.Bytes, KernelDrops: res.Stats.KernelDrops,
		StopReason: res.StopReason, Errors: res.Errors, Message: res.Message, Files: res.Files,
		StartTime: res.StartTime, StopTime: res.StopTime,
	}
	if err := render(cmd, out, func(w io.Writer) { printCaptureRun(w, out) }); err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("capture ended with %s: %s", strings.Join(res.Errors, ", "), res.Message)
	}
	return nil
}

func printCaptureRun(w io.Writer, r captureRunResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "packets:\t%d\n", r.Packets)
	fmt.Fprintf(tw, "bytes:\t%d\n", r.Bytes)
	fmt.Fprintf(tw, "kernel drops:\t%d\n", r.KernelDrops)
	fmt.Fprintf(tw, "stop reason:\t%s\n", r.StopReason)
	if r.Message != "" {
		fmt.Fprintf(tw, "message:\t%s\n", r.Message)
	}
	for _, f := range r.Files {
		fmt.Fprintf(tw, "file:\t%s\n", f)
	}
	tw.Flush()
}

// readBPFFile reads a raw BPF program as tcpdump -ddd (or -dd) prints it.
func readBPFFile(name string) ([]xbpf.RawInstruction, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--bpf-file: %w", err)
	}
	prog, err := bpf.ParseRaw(string(b))
	if err != nil {
		return nil, fmt.Errorf("--bpf-file %s: %w", name, err)
	}
	return prog, nil
}
