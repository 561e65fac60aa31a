package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

func newAlertCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Alerts rules fired, their history and deliveries"}
	var q controlplane.AlertQuery
	list := &cobra.Command{
		Use: "list", Short: "List alerts, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			alerts, err := c.ListAlerts(cmd.Context(), q)
			if err != nil {
				return err
			}
			return render(cmd, alerts, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tSEV\tRULE\tHOST\tFIRED\tRESOLVED\tSILENCED")
				for _, a := range alerts {
					resolved := "-"
					if a.ResolvedAt != nil {
						resolved = a.ResolvedAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.MonitorCondition, tripcap.SeverityName(a.Severity), a.RuleName, a.HostName,
						a.FiredAt.Local().Format(time.DateTime), resolved, silencedText(a))
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&q.Rule, "rule", "", "only this rule's alerts")
	list.Flags().StringVar(&q.Host, "host", "", "only this host's alerts")
	list.Flags().StringVar(&q.State, "state", "", "Fired or Resolved")
	list.Flags().IntVar(&q.Limit, "limit", 0, "at most this many (default 100)")
	cmd.AddCommand(list, &cobra.Command{
		Use: "show ID", Short: "Show an alert: its condition, history and every delivery attempt", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			d, err := c.GetAlert(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, d, func(w io.Writer) { printAlert(w, d) })
		},
	})
	return cmd
}

func printAlert(w io.Writer, d *controlplane.AlertDetail) {
	a := d.Alert
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\nRule:\t%s (%s)\nState:\t%s\nSeverity:\t%s\nHost:\t%s (%s)\n", a.ID, a.RuleName, a.RuleID, a.MonitorCondition,
		tripcap.SeverityName(a.Severity), a.HostName, a.TargetResourceID)
	fmt.Fprintf(tw, "Fired:\t%s\n", a.FiredAt.Local().Format(time.DateTime))
	if a.ResolvedAt != nil {
		fmt.Fprintf(tw, "Resolved:\t%s\n", a.ResolvedAt.Local().Format(time.DateTime))
	}
	if a.Silenced {
		fmt.Fprintf(tw, "Silenced:\tby %s (recorded, not delivered)\n", strings.Join(a.SilencedBy, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nHistory:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CONDITION\tAT\tWINDOW\tVALUES")
	for _, h := range a.History {
		var vals []string
		for _, c := range h.AllOf {
			vals = append(vals, fmt.Sprintf("%s %s=%s (%s %s)", c.TimeAggregation, c.MetricName, metricValue(c.MetricValue, c.Metric), c.Operator, metricValue(c.Threshold, c.Metric)))
		}
		cond := string(h.MonitorCondition)
		if h.Silenced {
			cond += " (silenced)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s … %s\t%s\n", cond, h.Time.Local().Format(time.TimeOnly),
			h.WindowStartTime.Local().Format(time.TimeOnly), h.WindowEndTime.Local().Format(time.TimeOnly), strings.Join(vals, "; "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nDeliveries:")
	if len(d.Deliveries) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CONDITION\tRECEIVER\tKIND\tATTEMPT\tAT\tSTATUS\tRESULT")
	for _, dl := range d.Deliveries {
		result := "ok"
		if !dl.Success {
			result = "failed: " + dl.Error
			if !dl.Final {
				result += " (retrying)"
			}
		}
		status := "-"
		if dl.StatusCode != 0 {
			status = fmt.Sprint(dl.StatusCode)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", dl.MonitorCondition, dl.Receiver, dl.ReceiverKind, dl.Attempt,
			dl.Time.Local().Format(time.TimeOnly), status, result)
	}
	tw.Flush()
}

// silencedText is "yes" for an alert whose latest transition a silence muted.
func silencedText(a *tripcap.Alert) string {
	if a.Silenced {
		return "yes"
	}
	return "-"
}

// metricValue prints a metric value in full (no exponent: 6335115, not
// 6.335115e+06), with a readable size beside a large byte count.
func metricValue(v float64, m tripcap.MetricID) string {
	text := strconv.FormatFloat(v, 'f', -1, 64)
	if i := strings.IndexByte(text, '.'); i >= 0 && len(text)-i > 4 {
		text = strconv.FormatFloat(v, 'f', 3, 64)
	}
	if def, ok := m.Definition(); ok && def.Unit == tripcap.UnitBytes && math.Abs(v) >= 10_000 {
		text += " (" + humanBytes(v) + ")"
	}
	return text
}

// humanBytes is a byte count in decimal units, as network tools show them.
func humanBytes(v float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}
