package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

func newSilenceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "silence", Short: "Silences: mute a rule's, a host's or labelled hosts' alerts for a while (recorded, not delivered)"}
	var all bool
	list := &cobra.Command{
		Use: "list", Short: "List the silences not yet ended", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListSilences(cmd.Context(), all)
			if err != nil {
				return err
			}
			return render(cmd, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tMATCHES\tSTARTS\tENDS\tBY\tCOMMENT")
				for _, s := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, silenceMatchers(s), s.StartsAt.Local().Format(time.DateTime),
						s.EndsAt.Local().Format(time.DateTime), s.CreatedBy, s.Comment)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include ended silences")
	cmd.AddCommand(newSilenceCreateCmd(), list, &cobra.Command{
		Use: "expire ID", Short: "End a silence now (it is kept as a record)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			s, err := c.ExpireSilence(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, s, func(w io.Writer) { fmt.Fprintf(w, "silence %s expired\n", s.ID) })
		},
	})
	return cmd
}

func newSilenceCreateCmd() *cobra.Command {
	var (
		rule, host, comment, start string
		labels                     []string
		length                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Mute alerts for a while: they are recorded and marked, nothing is delivered or captured",
		Long: "create mutes the alerts every matcher given selects (--rule, --host, --label; at least one) from now\n" +
			"(or --start) for --for. Muted alerts are stored, marked silenced in alert list/show, and delivered to no\n" +
			"action group (so no responder captures). A resolve of an alert whose firing was muted is muted too.",
		Example: `  tripcap silence create --host web-1 --for 2h --comment "kernel upgrade"
  tripcap silence create --rule high-egress --label role=backup --for 30m --comment "nightly backup"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if length <= 0 {
				return errors.New("--for: required, a duration like 2h or 30m")
			}
			s := &tripcap.Silence{Rule: rule, Host: host, Comment: comment}
			for _, l := range labels {
				if !strings.HasPrefix(l, "label:") {
					l = "label:" + l
				}
				s.Labels = append(s.Labels, tripcap.Scope(l))
			}
			s.StartsAt = time.Now().UTC()
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return fmt.Errorf("--start: %q is not an RFC 3339 time like 2026-01-02T15:04:05Z", start)
				}
				s.StartsAt = t.UTC()
			}
			s.EndsAt = s.StartsAt.Add(length)
			c, err := client(cmd)
			if err != nil {
				return err
			}
			created, err := c.CreateSilence(cmd.Context(), s)
			if err != nil {
				return err
			}
			return render(cmd, created, func(w io.Writer) {
				fmt.Fprintf(w, "silence %s: %s muted until %s\n", created.ID, silenceMatchers(created), created.EndsAt.Local().Format(time.DateTime))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&rule, "rule", "", "mute this rule's alerts (name or id)")
	f.StringVar(&host, "host", "", "mute alerts about this host (name or id)")
	f.StringArrayVar(&labels, "label", nil, "mute alerts about hosts with this label: K=V, K!=V or K (repeatable; all must match)")
	f.DurationVar(&length, "for", 0, "how long: 30m, 2h, …")
	f.StringVar(&start, "start", "", "start later: an RFC 3339 time (default now)")
	f.StringVar(&comment, "comment", "", "why (required)")
	return cmd
}

// silenceMatchers says what a silence mutes.
func silenceMatchers(s *tripcap.Silence) string {
	var parts []string
	if s.Rule != "" {
		parts = append(parts, "rule "+s.Rule)
	}
	if s.Host != "" {
		parts = append(parts, "host "+s.Host)
	}
	for _, l := range s.Labels {
		parts = append(parts, string(l))
	}
	return strings.Join(parts, " and ")
}
