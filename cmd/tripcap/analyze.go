package main

import (
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/triage"
)

func newAnalyzeCmd() *cobra.Command {
	var opts triage.Options
	var alertAt string
	cmd := &cobra.Command{
		Use:   "analyze FILE...",
		Short: "Summarise capture files: what changed at the alert, who talked, how TCP, DNS, TLS and HTTP fared",
		Long: `Read pcap and pcapng files (the files of a ring, or several hosts' captures, as one,
in timestamp order) and report: span, packets, bytes, interfaces, kernel drops and
truncation; the protocol mix; top conversations, flows and talkers; TCP health
(handshake RTT, retransmissions, duplicate ACKs, zero windows, resets, refused and
unanswered connections); DNS, TLS and HTTP/1; ICMP unreachables; and, when the
capture has a pre-trigger part, what appeared or grew at the alert.

The alert time comes from --alert-time, else the pcapng section comment ("alert at
<RFC 3339 time>"), else the capture start tripcap records in the pcapng statistics.
A file cut short is summarised up to where it ends, and the report says where.`,
		Example: `  tripcap analyze /var/captures/web.pcapng
  tripcap analyze web.pcapng web_00001.pcapng web_00002.pcapng -o json
  tripcap analyze host1.cap host2.cap --alert-time 2026-03-01T02:00:10Z`,
		Args:        cobra.MinimumNArgs(1),
		Annotations: map[string]string{takesWords: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := jsonOutput(cmd); err != nil {
				return err
			}
			if alertAt != "" {
				t, err := time.Parse(time.RFC3339Nano, alertAt)
				if err != nil {
					return tripcap.Errorf(tripcap.EINVALID, "--alert-time: %q is not an RFC 3339 time (2026-03-01T02:00:10Z)", alertAt)
				}
				opts.AlertTime = t
			}
			if opts.Top < 0 || opts.MaxFlows < 0 {
				return tripcap.Errorf(tripcap.EINVALID, "--top and --max-flows: must not be negative")
			}
			s, err := triage.AnalyzeFiles(cmd.Context(), args, opts)
			if err != nil {
				return err
			}
			var werr error
			rerr := render(cmd, s, func(w io.Writer) { werr = triage.WriteReport(w, s) })
			if rerr != nil {
				return rerr
			}
			return werr
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Top, "top", 10, "entries in each ranked list")
	fl.IntVar(&opts.MaxFlows, "max-flows", 200_000, "flow table capacity (at most about 0.6 KB of memory a flow)")
	fl.StringVar(&alertAt, "alert-time", "", "the alert time (RFC 3339), when the files do not record it")
	fl.DurationVar(&opts.SlowDNS, "slow-dns", 200*time.Millisecond, "DNS answers slower than this are slow")
	return cmd
}
