package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

func newCaptureCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "capture", Short: "Packet capture sessions"}
	cmd.PersistentFlags().String("watcher", "", "network watcher (needed when a capture name is used in several)")
	cmd.AddCommand(newCaptureCreateCmd(), newCaptureListCmd(), newCaptureShowCmd("show", "Show a capture"),
		newCaptureShowCmd("status", "Show a capture's status and live statistics"), newCaptureStopCmd(), newCaptureDeleteCmd(), newCaptureDownloadCmd())
	return cmd
}

func watcherFlag(cmd *cobra.Command) string {
	w, _ := cmd.Flags().GetString("watcher")
	return w
}

func newCaptureCreateCmd() *cobra.Command {
	var f captureFlags
	var host, storage, filePath, cause string
	var wait bool
	cmd := &cobra.Command{
		Use:   "create NAME --host HOST [EXPRESSION]",
		Short: "Create a capture on a host; it starts at once",
		Long: `Create a capture on a host; it starts at once. EXPRESSION, after the name, is a
tcpdump filter expression (docs/filters.md); with --filter too, a packet must match both.`,
		Example:     `  tripcap capture create web --host web1 'tcp port 443 and not net 198.18.0.0/15'`,
		Args:        cobra.MinimumNArgs(1),
		Annotations: map[string]string{takesWords: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.setExpression(args[1:])
			if host == "" {
				return errors.New("--host: required (a host name, id or VM resource id)")
			}
			p, err := f.parameters()
			if err != nil {
				return err
			}
			p.Target = host
			p.StorageLocation = tripcap.StorageLocation{StorageID: storage, FilePath: filePath}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			pc, err := c.CreateCapture(cmd.Context(), tchttp.CreateCaptureBody{Name: args[0], Watcher: watcherFlag(cmd), Cause: cause, Parameters: p})
			if err != nil {
				return err
			}
			if wait {
				if pc, err = waitWithProgress(cmd, c, pc); err != nil {
					return err
				}
			}
			return render(cmd, pc, func(w io.Writer) { printCapture(w, pc) })
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&host, "host", "", "target host: name, id or VM resource id")
	cmd.Flags().StringVar(&storage, "storage", "", "storage account for the file (default: the server's default)")
	cmd.Flags().StringVar(&filePath, "file-path", "", "also keep the file on the host at this path under /var/captures")
	cmd.Flags().StringVar(&cause, "cause", "", "why this capture is taken (recorded in the pcapng comment)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the capture has ended and its files are stored")
	return cmd
}

// waitForCapture polls until the session ended and every file it wrote is
// stored, calling progress with each state seen.
func waitForCapture(ctx context.Context, c *tchttp.Client, pc *tripcap.PacketCapture, progress func(*tripcap.PacketCapture)) (*tripcap.PacketCapture, error) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if progress != nil {
			progress(pc)
		}
		if pc.Status.Terminal() && filesSettled(pc) {
			return pc, nil
		}
		select {
		case <-ctx.Done():
			return pc, ctx.Err()
		case <-t.C:
		}
		next, err := c.GetCapture(ctx, "", pc.ID)
		if err != nil {
			return pc, err
		}
		pc = next
	}
}

// waitWithProgress is --wait: it shows the capture's progress on standard
// error (one line rewritten in place on a terminal, a line every few
// seconds elsewhere) and, on Ctrl-C, offers to stop the capture, or says
// how to, since the capture goes on on its host without this command.
func waitWithProgress(cmd *cobra.Command, c *tchttp.Client, pc *tripcap.PacketCapture) (*tripcap.PacketCapture, error) {
	errw := cmd.ErrOrStderr()
	tty := isTerminal(errw)
	created := time.Now()
	var lastLine time.Time
	var lastStatus tripcap.PacketCaptureStatus
	progress := func(pc *tripcap.PacketCapture) {
		line := progressLine(pc, created)
		switch {
		case tty:
			fmt.Fprintf(errw, "\r\033[K%s", line)
		case pc.Status != lastStatus || time.Since(lastLine) >= 5*time.Second:
			fmt.Fprintln(errw, line)
			lastLine = time.Now()
		}
		lastStatus = pc.Status
	}
	done := func() {
		if tty {
			fmt.Fprintln(errw)
		}
	}
	got, err := waitForCapture(cmd.Context(), c, pc, progress)
	done()
	if err == nil || cmd.Context().Err() == nil {
		return got, err
	}
	// Interrupted: the capture runs on its host all the same.
	fmt.Fprintf(errw, "interrupted: capture %s is %s on its host and goes on until its limits.\n", got.Name, got.Status)
	if !isTerminal(cmd.InOrStdin()) {
		fmt.Fprintf(errw, "stop it with: %s capture stop %s\n", invokedAs(), got.Name)
		return got, errors.New("interrupted")
	}
	fmt.Fprintf(errw, "stop it now? [y/N] ")
	answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		fmt.Fprintf(errw, "left running; stop it with: %s capture stop %s\n", invokedAs(), got.Name)
		return got, errors.New("interrupted")
	}
	// A second Ctrl-C leaves the waiting, not the stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := c.StopCapture(ctx, "", got.ID); err != nil {
		return got, fmt.Errorf("stopping capture %s: %w", got.Name, err)
	}
	fmt.Fprintf(errw, "stopping %s; waiting for its files (Ctrl-C leaves it to finish alone)\n", got.Name)
	got, err = waitForCapture(ctx, c, got, progress)
	done()
	return got, err
}

// progressLine is one line of --wait's progress.
func progressLine(pc *tripcap.PacketCapture, created time.Time) string {
	elapsed := time.Since(created)
	if pc.CaptureStartTime != nil {
		end := time.Now()
		if pc.CaptureStopTime != nil {
			end = *pc.CaptureStopTime
		}
		elapsed = end.Sub(*pc.CaptureStartTime)
	}
	line := fmt.Sprintf("%s: %s, %d packets, %s, %d kernel drops, %s", pc.Name, pc.Status, pc.Stats.Packets,
		humanBytes(float64(pc.Stats.Bytes)), pc.Stats.KernelDrops, elapsed.Round(100*time.Millisecond))
	if pc.Status.Terminal() && !filesSettled(pc) {
		line += ", storing the file"
	}
	return line
}

// isTerminal reports whether v is a terminal (an *os.File on a tty).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func filesSettled(pc *tripcap.PacketCapture) bool {
	if pc.Parameters.StorageLocation.StorageID == "" {
		return true
	}
	for _, f := range pc.Files {
		if !f.Stored {
			return false
		}
	}
	return true
}

func newCaptureListCmd() *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use: "list", Short: "List captures", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			caps, err := c.ListCaptures(cmd.Context(), watcherFlag(cmd), host)
			if err != nil {
				return err
			}
			asJSON, err := jsonOutput(cmd)
			if err != nil {
				return err
			}
			hostNames := map[string]string{}
			if !asJSON && len(caps) > 0 {
				// A capture names its host by id: one listing gives the names.
				hosts, err := c.ListHosts(cmd.Context())
				if err != nil {
					return fmt.Errorf("listing hosts for the HOST column: %w", err)
				}
				for _, h := range hosts {
					hostNames[h.ID] = h.Name
				}
			}
			return render(cmd, caps, func(w io.Writer) { printCaptureList(w, caps, hostNames) })
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "only this host's captures")
	return cmd
}

// printCaptureList prints captures as a table; hostNames maps host ids to
// names (a host deleted since shows by id).
func printCaptureList(w io.Writer, caps []*tripcap.PacketCapture, hostNames map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHOST\tSTATUS\tSTOP REASON\tPACKETS\tBYTES\tFILES\tCREATED")
	for _, pc := range caps {
		host := cmp.Or(hostNames[pc.HostID], pc.HostID)
		if pc.IsScaleSet() {
			host = fmt.Sprintf("%d instances", len(pc.Sessions))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", pc.Name, host, pc.Status, pc.StopReason, pc.Stats.Packets, pc.Stats.Bytes, len(pc.Files), pc.CreatedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
}

func newCaptureShowCmd(use, short string) *cobra.Command {
	return &cobra.Command{
		Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if use == "status" {
				st, err := c.CaptureStatus(cmd.Context(), watcherFlag(cmd), args[0])
				if err != nil {
					return err
				}
				return render(cmd, st, func(w io.Writer) {
					fmt.Fprintf(w, "%s: %s", st.Name, st.PacketCaptureState)
					if st.StopReason != "" {
						fmt.Fprintf(w, " (%s)", st.StopReason)
					}
					fmt.Fprintf(w, ", %d packets, %d bytes, %d kernel drops", st.Statistics.Packets, st.Statistics.Bytes, st.Statistics.KernelDrops)
					if len(st.PacketCaptureError) > 0 {
						fmt.Fprintf(w, ", errors %s: %s", strings.Join(st.PacketCaptureError, ","), st.ErrorMessage)
					}
					fmt.Fprintln(w)
				})
			}
			pc, err := c.GetCapture(cmd.Context(), watcherFlag(cmd), args[0])
			if err != nil {
				return err
			}
			return render(cmd, pc, func(w io.Writer) { printCapture(w, pc) })
		},
	}
}

func printCapture(w io.Writer, pc *tripcap.PacketCapture) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nTarget:\t%s\nStatus:\t%s\n", pc.Name, pc.ID, pc.Parameters.Target, pc.Status)
	if pc.StopReason != "" {
		fmt.Fprintf(tw, "Stop reason:\t%s\n", pc.StopReason)
	}
	if len(pc.Errors) > 0 {
		fmt.Fprintf(tw, "Errors:\t%s: %s\n", strings.Join(pc.Errors, ","), pc.ErrorMessage)
	} else if pc.ErrorMessage != "" {
		// What the agent noted on a capture that did not fail (no
		// pre-trigger packets, say) is still news to its reader.
		fmt.Fprintf(tw, "Notes:\t%s\n", pc.ErrorMessage)
	}
	if pt := pc.Stats.PreTrigger; pt != nil {
		fmt.Fprintf(tw, "Pre-trigger:\t%d s asked, the file starts %.1f s before the capture (%d packets)\n", pt.RequestedSeconds, pt.Seconds, pt.Packets)
		for _, n := range pt.Notes {
			fmt.Fprintf(tw, "\t%s\n", n)
		}
	} else if pc.Parameters.PreTriggerSeconds > 0 {
		fmt.Fprintf(tw, "Pre-trigger:\t%d s asked\n", pc.Parameters.PreTriggerSeconds)
	}
	if pc.CaptureStartTime != nil {
		fmt.Fprintf(tw, "Started:\t%s\n", pc.CaptureStartTime.Local().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(tw, "Statistics:\t%d packets, %d bytes, %d kernel drops\n", pc.Stats.Packets, pc.Stats.Bytes, pc.Stats.KernelDrops)
	if pc.Parameters.StorageLocation.StoragePath != "" {
		fmt.Fprintf(tw, "Storage path:\t%s\n", pc.Parameters.StorageLocation.StoragePath)
	}
	for _, m := range pc.Sessions {
		// A scale-set capture's sessions: each instance's own capture.
		fmt.Fprintf(tw, "Instance:\t%s: %s %s (capture %s) %s\n", m.InstanceID, m.Status, m.StopReason, m.CaptureID, m.StoragePath)
	}
	for _, f := range pc.Files {
		where := "on host"
		if f.Stored {
			where = "stored"
		}
		fmt.Fprintf(tw, "File:\t%s (%d bytes, %s) %s\n", f.Name, f.Size, where, f.SHA256)
	}
	tw.Flush()
	if pc.Summary != nil {
		fmt.Fprintln(w, "\nSummary (tripcap analyze on the file gives the whole report):")
		for _, line := range pc.Summary.TopLines(8) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

func newCaptureStopCmd() *cobra.Command {
	return &cobra.Command{
		Use: "stop NAME", Short: "Stop a running capture", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			pc, err := c.StopCapture(cmd.Context(), watcherFlag(cmd), args[0])
			if err != nil {
				return err
			}
			return render(cmd, pc, func(w io.Writer) { fmt.Fprintf(w, "capture %s stopping (status %s)\n", pc.Name, pc.Status) })
		},
	}
}

func newCaptureDeleteCmd() *cobra.Command {
	var deleteFile bool
	cmd := &cobra.Command{
		Use: "delete NAME", Short: "Delete a capture (its stored files stay unless --delete-file)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteCapture(cmd.Context(), watcherFlag(cmd), args[0], deleteFile); err != nil {
				return err
			}
			return render(cmd, map[string]any{"deleted": args[0], "filesDeleted": deleteFile}, func(w io.Writer) { fmt.Fprintf(w, "capture %s deleted\n", args[0]) })
		},
	}
	cmd.Flags().BoolVar(&deleteFile, "delete-file", false, "also delete the stored files")
	return cmd
}

func newCaptureDownloadCmd() *cobra.Command {
	var name string
	cmd := newDownloadCmd("download NAME -w FILE", "Download a capture's file and verify its checksum",
		"download writes a capture file to -w FILE ('-' for standard output), resuming a partial FILE, and checks its SHA-256. "+
			"-o json prints the summary as JSON, as on every verb.",
		func(cmd *cobra.Command, c *tchttp.Client, ref string) fetch {
			return func(ctx context.Context, offset int64) (*tchttp.Download, error) {
				return c.DownloadFile(ctx, watcherFlag(cmd), ref, name, offset)
			}
		})
	cmd.Flags().StringVar(&name, "name", "", "which file of a continuous capture (default the first)")
	return cmd
}

// fetch opens a download at an offset (a resumed one starts past what the
// partial file holds).
type fetch func(ctx context.Context, offset int64) (*tchttp.Download, error)

// newDownloadCmd is the one download verb: a file named by one argument,
// written to -w FILE (or standard output), resumed and checked.
func newDownloadCmd(use, short, long string, open func(cmd *cobra.Command, c *tchttp.Client, ref string) fetch) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-w: required (the file to write, or - for standard output)")
			}
			if _, err := jsonOutput(cmd); err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			res, err := download(cmd, args[0], out, open(cmd, c, args[0]))
			if err != nil {
				return err
			}
			if out == "-" {
				return nil
			}
			return render(cmd, res, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d bytes, sha256 %s (verified)\n", res.File, res.Bytes, res.SHA256)
			})
		},
	}
	// -w as tcpdump writes a file: -o is the output format on every verb.
	cmd.Flags().StringVarP(&out, "write", "w", "", "file to write ('-' for standard output)")
	return cmd
}

type downloadResult struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// download fetches the file open starts (from an offset) into FILE.partial,
// resuming one left by an earlier run, with a progress bar on a terminal;
// only a file whose SHA-256 matches is renamed into place, so nothing
// corrupt is left under FILE. ref names the file in messages.
func download(cmd *cobra.Command, ref, out string, open fetch) (*downloadResult, error) {
	ctx := cmd.Context()
	h := sha256.New()
	if out == "-" {
		d, err := open(ctx, 0)
		if err != nil {
			return nil, err
		}
		defer d.Body.Close()
		n, err := io.Copy(io.MultiWriter(cmd.OutOrStdout(), h), d.Body)
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", ref, err)
		}
		return verify(ref, n, h, d.SHA256)
	}
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", partial, err)
	}
	defer f.Close()
	offset, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", partial, err)
	}
	d, err := open(ctx, offset)
	if err != nil && offset > 0 {
		// The partial file may be stale or complete: start over.
		offset = 0
		d, err = open(ctx, 0)
	}
	if err != nil {
		return nil, err
	}
	defer d.Body.Close()
	if d.Offset != offset {
		offset = 0
	}
	if offset == 0 {
		h.Reset()
		if err := f.Truncate(0); err != nil {
			return nil, fmt.Errorf("truncate %s: %w", partial, err)
		}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek %s: %w", partial, err)
	}
	var body io.Reader = d.Body
	if term.IsTerminal(int(os.Stderr.Fd())) && d.Size > 0 {
		bar := progressbar.DefaultBytes(offset+d.Size, "downloading "+ref)
		_ = bar.Set64(offset)
		body = io.TeeReader(d.Body, bar)
	}
	n, err := io.Copy(io.MultiWriter(f, h), body)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w (run again to resume)", ref, err)
	}
	res, err := verify(ref, offset+n, h, d.SHA256)
	if err != nil {
		f.Close()
		os.Remove(partial)
		return nil, fmt.Errorf("%w; the download was removed", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write %s: %w", partial, err)
	}
	if err := os.Rename(partial, out); err != nil {
		return nil, fmt.Errorf("rename %s: %w", partial, err)
	}
	res.File = out
	return res, nil
}

func verify(ref string, n int64, h hash.Hash, want string) (*downloadResult, error) {
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return nil, fmt.Errorf("download %s: SHA-256 %s does not match the recorded %s", ref, sum, want)
	}
	return &downloadResult{Bytes: n, SHA256: sum}, nil
}
