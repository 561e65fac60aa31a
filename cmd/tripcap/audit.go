package main

import (
	"cmp"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// The audit log: who did what, to which resource, from where, when, and
// how it ended (needs the audit/read permission: Owner).
func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log: every change, capture, download, enrollment and refused credential"}
	cmd.AddCommand(newAuditListCmd())
	return cmd
}

func newAuditListCmd() *cobra.Command {
	var q tchttp.AuditQuery
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Long: "list shows audit events, newest first. --since and --until take an RFC 3339 time or a duration before now (2h, P1D). " +
			"--resource matches resources starting with it (captures/, captures/pc1). --limit 0 lists every event.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.Since, q.Until, err = parseWindow(since, until); err != nil {
				return err
			}
			if q.Result != "" {
				if err := tripcap.ValidateAuditResult("--result", tripcap.AuditResult(q.Result)); err != nil {
					return err
				}
			}
			if q.Limit < 0 || q.Limit > 1000 {
				return fmt.Errorf("--limit: %d is not in 0..1000", q.Limit)
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			events, err := c.ListAuditEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			return render(cmd, events, func(w io.Writer) { printAuditList(w, events) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Principal, "principal", "", "events of this principal (id or name)")
	f.StringVar(&q.Action, "action", "", "events of this operation (createCapture, deleteCapture, downloadFile, agentEnroll, responder.startCapture…)")
	f.StringVar(&q.Resource, "resource", "", "events on resources starting with this (captures/pc1)")
	f.StringVar(&q.Result, "result", "", "success, denied or failed")
	f.StringVar(&since, "since", "", "events at or after (RFC 3339, or a duration before now)")
	f.StringVar(&until, "until", "", "events before (RFC 3339, or a duration before now)")
	f.IntVar(&q.Limit, "limit", 100, "at most this many events, newest first (0: all)")
	return cmd
}

func printAuditList(w io.Writer, events []*tripcap.AuditEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPRINCIPAL\tACTION\tRESOURCE\tFROM\tRESULT\tDETAIL")
	for _, e := range events {
		who := cmp.Or(e.PrincipalName, e.PrincipalID, "-")
		if e.PrincipalKind != "" {
			who += " (" + string(e.PrincipalKind) + ")"
		}
		res := string(e.Result)
		if e.Status != 0 {
			res += " " + strconv.Itoa(e.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), who, e.Action,
			cmp.Or(e.Resource, "-"), cmp.Or(e.RemoteAddr, "-"), res, e.Detail)
	}
	tw.Flush()
}
