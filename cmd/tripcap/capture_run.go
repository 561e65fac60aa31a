package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
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
		Use:   "run -w FILE|- [EXPRESSION]",
		Short: "Capture packets on this host into a file or a pipe, like tcpdump -w",
		Long: `Capture packets on this host with the agent's engine (AF_PACKET, TPACKET_V3),
into a pcap or pcapng file (-w, relative to the working directory as with
tcpdump; .pcapng writes pcapng unless --format says otherwise). EXPRESSION is a
tcpdump filter expression (docs/filters.md); with --filter too, a packet must
match both. It stops on --time-limit, --total-bytes, or SIGINT/SIGTERM
(ManuallyStopped), then prints the session's statistics. Needs root or CAP_NET_RAW.

-w - streams the capture to standard output instead (pcap, or pcapng with
--format pcapng or several interfaces), flushed as packets come, for
wireshark -k -i - or tshark -r -. Everything else the command prints, the
statistics and -o json included, then goes to standard error. When the
reader goes away the capture stops (StreamClosed) and the command exits 0,
as tcpdump does. --continuous and --metadata need files and are refused.`,
		Example: `  tripcap capture run -i eth0 -w web.cap 'tcp port 80 and host 198.18.0.2'
  tripcap capture run -w web.cap --filter 'protocol=TCP,localPort=80' --time-limit 30s
  tripcap capture run -i eth0 -i lo --format pcapng -w both.pcapng
  tripcap capture run --bpf-file prog.txt -w custom.cap   # tcpdump -ddd output
  tripcap capture run -i eth0 -w - | wireshark -k -i -
  tripcap capture run -i eth0 -w - 'udp port 53' | tshark -r -`,
		Args:        cobra.ArbitraryArgs,
		Annotations: map[string]string{takesWords: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.setExpression(args)
			if file == "" {
				return tripcap.Errorf(tripcap.EINVALID, "-w: required: the capture file, or - for standard output")
			}
			if _, err := jsonOutput(cmd); err != nil {
				return err
			}
			if file == "-" {
				return runCaptureStream(cmd, f, bpfFile, comment, bufferKiB)
			}
			if !cmd.Flags().Changed("format") && strings.EqualFold(filepath.Ext(file), ".pcapng") {
				f.format = tripcap.FormatPcapng
			}
			p, opts, err := captureRunParameters(f, bpfFile)
			if err != nil {
				return err
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
	fl.StringVarP(&file, "write", "w", "", "capture file (relative to the working directory), or - for standard output")
	fl.StringVar(&bpfFile, "bpf-file", "", "attach this BPF program (tcpdump -ddd or -dd output) instead of --filter")
	fl.StringVar(&comment, "comment", "", "pcapng section comment")
	fl.IntVar(&bufferKiB, "buffer-size", afpacket.DefaultRingBytes>>10, "kernel ring per interface, in KiB (like tcpdump -B)")
	return cmd
}

// captureRunParameters are the capture's parameters and session options
// from the flags.
func captureRunParameters(f captureFlags, bpfFile string) (tripcap.PacketCaptureParameters, afpacket.SessionOptions, error) {
	var opts afpacket.SessionOptions
	p, err := f.parameters()
	if err != nil {
		return p, opts, err
	}
	p.Target = "localhost"
	if bpfFile != "" {
		if len(p.Filters) > 0 || p.FilterExpression != "" {
			return p, opts, tripcap.Errorf(tripcap.EINVALID, "--bpf-file and --filter or an expression: give one or the other")
		}
		if opts.RawFilter, err = readBPFFile(bpfFile); err != nil {
			return p, opts, err
		}
	}
	return p, opts, nil
}

// runCaptureStream is `capture run -w -`: the capture goes to standard
// output, and everything else the command prints to standard error.
func runCaptureStream(cmd *cobra.Command, f captureFlags, bpfFile, comment string, bufferKiB int) error {
	if f.continuous {
		return tripcap.Errorf(tripcap.EINVALID, "--continuous and -w -: a continuous capture writes a ring of files; standard output is one stream")
	}
	if f.metadata {
		return tripcap.Errorf(tripcap.EINVALID, "--metadata and -w -: the host's metadata is a file beside the capture file; standard output has none")
	}
	p, opts, err := captureRunParameters(f, bpfFile)
	if err != nil {
		return err
	}
	// Standard output is the packet stream: from here on, nothing else
	// may reach it, the result (and -o json) included.
	opts.Stream = cmd.OutOrStdout()
	cmd.SetOut(cmd.ErrOrStderr())
	// A write to a closed pipe on standard output would kill the process
	// with SIGPIPE; asked for, the signal is delivered here instead and
	// the write fails with EPIPE, which ends the capture (StreamClosed)
	// with its statistics printed and exit status 0, as tcpdump does.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	eng := afpacket.NewEngine(afpacket.Config{RingBytes: bufferKiB << 10, Logger: newLogger(cmd)})
	defer eng.Close()
	spec := tripcap.CaptureSpec{ID: tripcap.NewID(), Name: "capture-run", Parameters: p, Comment: comment}
	sess, err := eng.StartSession(cmd.Context(), spec, opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "capturing to standard output; Ctrl-C stops")
	return waitCaptureRun(cmd, sess)
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
	if out.Files == nil {
		out.Files = []string{} // a stream: no file, and scripts iterate over the list
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
	if len(r.Files) == 0 {
		fmt.Fprintf(tw, "output:\tstandard output\n") // -w -
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
