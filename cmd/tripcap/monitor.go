package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/hostmetrics"
	"github.com/tripcap/tripcap/metricstore"
)

// Server side: the Monitor (metrics, alert rules, action groups, alerts).

// newMonitor builds the control plane's Monitor. The SMTP server for email
// receivers comes from the environment, so its password stays out of the
// process's arguments:
//
//	TRIPCAP_SMTP_ADDR      host:port of the submission server (unset: no email)
//	TRIPCAP_SMTP_FROM      sender address
//	TRIPCAP_SMTP_USERNAME  and TRIPCAP_SMTP_PASSWORD: AUTH PLAIN, over TLS only
//	TRIPCAP_SMTP_TLS       opportunistic (default), required or none
func newMonitor(store tripcap.Store, log *slog.Logger, rsp actiongroup.Responder) (*controlplane.Monitor, error) {
	m, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{SMTP: smtpFromEnv(), Responder: rsp})
	if err != nil {
		return nil, fmt.Errorf("TRIPCAP_SMTP_*: %w", err)
	}
	return m, nil
}

// smtpFromEnv is the SMTP server of TRIPCAP_SMTP_* (nil when unset).
func smtpFromEnv() *actiongroup.SMTPConfig {
	addr := os.Getenv("TRIPCAP_SMTP_ADDR")
	if addr == "" {
		return nil
	}
	return &actiongroup.SMTPConfig{Addr: addr, From: os.Getenv("TRIPCAP_SMTP_FROM"), Username: os.Getenv("TRIPCAP_SMTP_USERNAME"),
		Password: os.Getenv("TRIPCAP_SMTP_PASSWORD"), TLS: os.Getenv("TRIPCAP_SMTP_TLS")}
}

// runMonitor runs the control plane's Monitor until ctx ends; the returned
// func waits for it, so it stops (persisting, logging deliveries) before the
// store closes.
func (cp *controlPlane) runMonitor(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() { defer close(done); _ = cp.monitor.Run(ctx) }()
	return func() { <-done }
}

// Agent side: the host metrics collector.

// newHostMetrics returns the agent's collector, registered on reg so the
// agent's /metrics shows the host's counters with a host label.
func newHostMetrics(name string, log *slog.Logger, reg prometheus.Registerer) (*hostmetrics.Collector, error) {
	if name == "" {
		name = hostnameOr("")
	}
	hm, err := hostmetrics.New(hostmetrics.Config{Host: name, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := reg.Register(hm); err != nil {
		return nil, fmt.Errorf("register host metrics: %w", err)
	}
	return hm, nil
}

// The CLI.

// isoDuration accepts Go's "1m" or ISO 8601's "PT1M" and returns the ISO
// form the API takes; the error names the flag.
func isoDuration(flag, v string) (string, error) {
	if strings.HasPrefix(strings.ToUpper(v), "P") {
		if _, err := tripcap.ParseISODuration(flag, v); err != nil {
			return "", err
		}
		return strings.ToUpper(v), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d%time.Second != 0 {
		return "", fmt.Errorf("%s: %q is not a whole number of seconds like 30s, 5m or PT5M", flag, v)
	}
	return tripcap.FormatISODuration(d), nil
}

// spanFlag reads a duration flag given as "15m" or "PT15M".
func spanFlag(flag, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	iso, err := isoDuration("--"+flag, v)
	if err != nil {
		return 0, err
	}
	return tripcap.ParseISODuration("--"+flag, iso)
}

// keyValue splits a NAME=VALUE flag value.
func keyValue(flag, v string) (string, string, error) {
	k, val, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" || val == "" {
		return "", "", fmt.Errorf("--%s: %q is not NAME=VALUE", flag, v)
	}
	return k, val, nil
}

// readJSONFile decodes a JSON file ("-" for standard input) strictly.
func readJSONFile(cmd *cobra.Command, path string, v any) error {
	var r io.Reader = cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}

func newMetricsCmd() *cobra.Command {
	var window, interval, aggregation, iface string
	cmd := &cobra.Command{
		Use:   "metrics HOST METRIC",
		Short: "Chart a host's metric (e.g. \"Network Out Total\") over a window",
		Long: "metrics charts one of a host's metrics, one value per interval, from the server's metric store. METRIC is an Azure name " +
			"(\"Network Out Total\"), tripcap's id (network_out_bytes) or the Prometheus name. Intervals without data show as '·'.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := controlplane.MetricsQuery{Host: args[0], Metric: args[1], Aggregation: aggregation, Interface: iface}
			var err error
			if q.Window, err = spanFlag("window", window); err != nil {
				return err
			}
			if q.Interval, err = spanFlag("interval", interval); err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			res, err := c.QueryMetrics(cmd.Context(), q)
			if err != nil {
				return err
			}
			return render(cmd, res, func(w io.Writer) { printChart(w, res, 72) })
		},
	}
	cmd.Flags().StringVar(&window, "window", "15m", "how far back: 15m, 1h or PT15M")
	cmd.Flags().StringVar(&interval, "interval", "", "one value per interval: 1m or PT1M (default window/60)")
	cmd.Flags().StringVar(&aggregation, "aggregation", "", "Average, Minimum, Maximum, Total or Count (default the metric's)")
	cmd.Flags().StringVar(&iface, "interface", "", "an interface's series (default the host's, all interfaces but loopback)")
	return cmd
}

// printChart draws a bar chart of a query, at most width columns wide
// (adjacent intervals merge beyond that), eight rows high with eighth-block
// resolution. Intervals without data are '·', never a zero bar.
func printChart(w io.Writer, res *metricstore.Result, width int) {
	pts := mergePoints(res.Points, res.Aggregation, width)
	fmt.Fprintf(w, "%s · %s", res.Host, res.DisplayName)
	if res.Interface != "" {
		fmt.Fprintf(w, " on %s", res.Interface)
	}
	fmt.Fprintf(w, " · %s per %s over %s (%s)\n", res.Aggregation, res.Interval, res.Window, res.Unit)
	top, have := 0.0, false
	lo, hi, last := math.Inf(1), math.Inf(-1), math.NaN()
	for _, p := range pts {
		if p.Count == 0 {
			continue
		}
		have = true
		top = max(top, p.Value)
		lo, hi, last = min(lo, p.Value), max(hi, p.Value), p.Value
	}
	if !have {
		fmt.Fprintf(w, "no data from %s to %s\n", res.Start.Local().Format(time.TimeOnly), res.End.Local().Format(time.TimeOnly))
		return
	}
	const rows = 8
	blocks := []rune(" ▁▂▃▄▅▆▇█")
	label := func(v float64) string { return formatValue(v, res.Unit) }
	pad := max(len(label(top)), len(label(0)))
	for row := rows - 1; row >= 0; row-- {
		var b strings.Builder
		for _, p := range pts {
			switch {
			case p.Count == 0 && row == 0:
				b.WriteRune('·')
			case p.Count == 0 || top <= 0:
				b.WriteRune(' ')
			default:
				// Eighths of a row filled above this row's floor.
				fill := int(math.Round(p.Value/top*rows*8)) - row*8
				if p.Value > 0 && fill <= 0 && row == 0 {
					fill = 1 // a small value still shows
				}
				b.WriteRune(blocks[min(max(fill, 0), 8)])
			}
		}
		axis := strings.Repeat(" ", pad)
		switch row {
		case rows - 1:
			axis = fmt.Sprintf("%*s", pad, label(top))
		case 0:
			axis = fmt.Sprintf("%*s", pad, label(0))
		}
		fmt.Fprintf(w, "%s ┤%s\n", axis, strings.TrimRight(b.String(), " "))
	}
	from, to := res.Start.Local().Format(time.TimeOnly), res.End.Local().Format(time.TimeOnly)
	gap := max(len(pts)-len(from)-len(to), 1)
	fmt.Fprintf(w, "%s  %s%s%s\n", strings.Repeat(" ", pad), from, strings.Repeat(" ", gap), to)
	fmt.Fprintf(w, "min %s  max %s  last %s\n", label(lo), label(hi), label(last))
}

// mergePoints combines adjacent intervals so at most width remain; each
// merged value is exact for the aggregation (a count-weighted mean for
// Average).
func mergePoints(pts []metricstore.Point, agg tripcap.Aggregation, width int) []metricstore.Point {
	if width <= 0 || len(pts) <= width {
		return pts
	}
	per := (len(pts) + width - 1) / width
	var out []metricstore.Point
	for i := 0; i < len(pts); i += per {
		group := pts[i:min(i+per, len(pts))]
		m := metricstore.Point{Time: group[len(group)-1].Time}
		for _, p := range group {
			if p.Count == 0 {
				continue
			}
			switch {
			case m.Count == 0:
				m.Value = p.Value
				if agg == tripcap.AggregationAverage {
					m.Value = p.Value * float64(p.Count)
				}
			case agg == tripcap.AggregationMinimum:
				m.Value = min(m.Value, p.Value)
			case agg == tripcap.AggregationMaximum:
				m.Value = max(m.Value, p.Value)
			case agg == tripcap.AggregationAverage:
				m.Value += p.Value * float64(p.Count)
			default: // Total, Count
				m.Value += p.Value
			}
			m.Count += p.Count
		}
		if agg == tripcap.AggregationAverage && m.Count > 0 {
			m.Value /= float64(m.Count)
		}
		out = append(out, m)
	}
	return out
}

// formatValue writes a value in its unit: bytes in B, kB, MB… (powers of
// 1000, as Azure's charts), counts with k, M… suffixes.
func formatValue(v float64, unit tripcap.MetricUnit) string {
	suffix := ""
	if unit == tripcap.UnitBytes {
		suffix = "B"
	}
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	for math.Abs(v) >= 1000 && i < len(prefixes)-1 {
		v /= 1000
		i++
	}
	s := fmt.Sprintf("%.1f", v)
	if v == math.Trunc(v) && i == 0 {
		s = fmt.Sprintf("%.0f", v)
	}
	if p := prefixes[i] + suffix; p != "" {
		s += " " + p
	}
	return s
}

func newRuleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rule", Short: "Metric alert rules (Azure's metricAlerts)"}
	cmd.AddCommand(newRuleCreateCmd(),
		&cobra.Command{
			Use: "list", Short: "List alert rules", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				rules, err := c.ListAlertRules(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, rules, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tENABLED\tSEV\tCONDITION\tSCOPES\tACTIONS")
					for _, r := range rules {
						fmt.Fprintf(tw, "%s\t%t\t%d\t%s\t%s\t%d\n", r.Name, r.IsEnabled(), r.SeverityLevel(), ruleCondition(r), scopesText(r.Scopes), len(r.Actions))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "show RULE", Short: "Show an alert rule (by name or id)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				r, err := c.GetAlertRule(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return render(cmd, r, func(w io.Writer) { printRule(w, r) })
			},
		},
		&cobra.Command{
			Use: "delete RULE", Short: "Delete an alert rule; its alerts stay", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteAlertRule(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "rule %s deleted\n", args[0]) })
			},
		})
	return cmd
}

func newRuleCreateCmd() *cobra.Command {
	var (
		preset, metric, aggregation, operator, frequency, window, description, file string
		threshold                                                                   float64
		severity                                                                    int
		groups, scopes, ifaces, props                                               []string
		noMitigate, disabled                                                        bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a metric alert rule",
		Long: "create makes a static-threshold rule from flags, a preset (--preset seed: Network Out Total, Average > 3 over 5m every 1m), " +
			"or any rule (dynamic thresholds included) from a JSON file in Azure's metricAlerts shape (--file). Flags given with --preset override it.",
		Example: `  tripcap rule create high-egress --metric "Network Out Total" --aggregation Average --operator GreaterThan \
      --threshold 1000000 --frequency 1m --window 5m --action-group ops
  tripcap rule create seed --preset seed --action-group ops`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			var scopeList []tripcap.Scope
			for _, s := range scopes {
				scopeList = append(scopeList, tripcap.Scope(s))
			}
			var r *tripcap.AlertRule
			switch {
			case file != "":
				if preset != "" {
					return errors.New("--file and --preset: give one")
				}
				r = &tripcap.AlertRule{}
				if err := readJSONFile(cmd, file, r); err != nil {
					return err
				}
				r.Name = args[0]
			case preset != "":
				var err error
				if r, err = tripcap.PresetAlertRule(preset, args[0], scopeList); err != nil {
					return err
				}
			default:
				if metric == "" || !set("threshold") {
					return errors.New("--metric and --threshold: required (or give --preset or --file)")
				}
				r = &tripcap.AlertRule{Name: args[0], Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{}}}}}
			}
			if file == "" {
				s := r.Criteria.AllOf[0].Static
				if set("metric") {
					s.MetricName = metric
				}
				if set("aggregation") {
					s.TimeAggregation = tripcap.Aggregation(aggregation)
				} else if s.TimeAggregation == "" {
					// The metric's own default, as Azure's portal picks.
					if m, err := tripcap.ParseMetric("--metric", s.MetricName); err == nil {
						d, _ := m.Definition()
						s.TimeAggregation = d.DefaultAggregation
					}
				}
				if set("operator") || s.Operator == "" {
					s.Operator = tripcap.Operator(operator)
				}
				if set("threshold") {
					s.Threshold = threshold
				}
				if len(ifaces) > 0 {
					s.Dimensions = []tripcap.Dimension{{Name: tripcap.DimensionInterface, Operator: "Include", Values: ifaces}}
				}
			}
			if set("scope") || len(r.Scopes) == 0 {
				r.Scopes = scopeList
			}
			var err error
			if set("frequency") || r.EvaluationFrequency == "" {
				if r.EvaluationFrequency, err = isoDuration("--frequency", frequency); err != nil {
					return err
				}
			}
			if set("window") || r.WindowSize == "" {
				if r.WindowSize, err = isoDuration("--window", window); err != nil {
					return err
				}
			}
			if set("severity") {
				r.Severity = &severity
			}
			if set("description") {
				r.Description = description
			}
			if noMitigate {
				r.AutoMitigate = new(bool)
			}
			if disabled {
				r.Enabled = new(bool)
			}
			var custom map[string]string
			for _, p := range props {
				k, v, err := keyValue("webhook-property", p)
				if err != nil {
					return err
				}
				if custom == nil {
					custom = map[string]string{}
				}
				custom[k] = v
			}
			if len(groups) > 0 {
				r.Actions = nil
				for _, g := range groups {
					r.Actions = append(r.Actions, tripcap.Action{ActionGroupID: g, WebHookProperties: custom})
				}
			} else if custom != nil {
				return errors.New("--webhook-property: give --action-group too")
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			created, err := c.CreateAlertRule(cmd.Context(), r)
			if err != nil {
				return err
			}
			return render(cmd, created, func(w io.Writer) { printRule(w, created) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "", "start from a preset: seed (Network Out Total, Average > 3, 1m/5m) or seed-2017 (TCP Segments Sent, Total > 100)")
	f.StringVar(&file, "file", "", "read the rule from a JSON file (Azure's metricAlerts properties; '-' for standard input)")
	f.StringVar(&metric, "metric", "", "metric: \"Network Out Total\", network_out_bytes, … (tripcap metrics lists them in the API)")
	f.StringVar(&aggregation, "aggregation", "", "Average, Minimum, Maximum, Total or Count (default the metric's)")
	f.StringVar(&operator, "operator", "GreaterThan", "Equals, NotEquals, GreaterThan, GreaterThanOrEqual, LessThan or LessThanOrEqual")
	f.Float64Var(&threshold, "threshold", 0, "the threshold the aggregated value is compared with")
	f.StringVar(&frequency, "frequency", "1m", "evaluation frequency: 1s … 1h (or PT1M)")
	f.StringVar(&window, "window", "5m", "window size: 1s … 24h, at least the frequency (or PT5M)")
	f.StringArrayVar(&groups, "action-group", nil, "action group to notify, by name or id (repeatable)")
	f.StringArrayVar(&props, "webhook-property", nil, "custom property k=v for the payloads (repeatable)")
	f.StringArrayVar(&scopes, "scope", []string{"*"}, "hosts: *, host:NAME, location:LOC, label:K=V or a subscription, group or VM resource id (repeatable)")
	f.StringArrayVar(&ifaces, "interface", nil, "evaluate these interfaces' series instead of the host's (repeatable; * for each)")
	f.IntVar(&severity, "severity", tripcap.DefaultAlertSeverity, "severity, 0 (critical) to 4")
	f.StringVar(&description, "description", "", "description")
	f.BoolVar(&noMitigate, "no-auto-mitigate", false, "keep fired alerts Fired when the condition clears")
	f.BoolVar(&disabled, "disabled", false, "create the rule disabled")
	return cmd
}

// ruleCondition is a one-line summary of a rule's criteria.
func ruleCondition(r *tripcap.AlertRule) string {
	var parts []string
	for _, c := range r.Criteria.AllOf {
		b := c.Base()
		switch {
		case c.Static != nil:
			parts = append(parts, fmt.Sprintf("%s %s %s %s", b.TimeAggregation, b.MetricName, c.Static.Operator, strconv.FormatFloat(c.Static.Threshold, 'f', -1, 64)))
		case c.Dynamic != nil:
			parts = append(parts, fmt.Sprintf("%s %s %s dynamic (%s)", b.TimeAggregation, b.MetricName, c.Dynamic.Operator, c.Dynamic.AlertSensitivity))
		}
	}
	return strings.Join(parts, " and ") + fmt.Sprintf(" over %s every %s", r.WindowSize, r.EvaluationFrequency)
}

func scopesText(scopes []tripcap.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

func printRule(w io.Writer, r *tripcap.AlertRule) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nEnabled:\t%t\nSeverity:\t%s\n", r.Name, r.ID, r.IsEnabled(), tripcap.SeverityName(r.SeverityLevel()))
	if r.Description != "" {
		fmt.Fprintf(tw, "Description:\t%s\n", r.Description)
	}
	fmt.Fprintf(tw, "Condition:\t%s\nScopes:\t%s\nAuto-mitigate:\t%t\n", ruleCondition(r), scopesText(r.Scopes), r.Mitigates())
	for _, a := range r.Actions {
		fmt.Fprintf(tw, "Action group:\t%s\n", a.ActionGroupID)
	}
	tw.Flush()
}

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
				fmt.Fprintln(tw, "ID\tSTATE\tSEV\tRULE\tHOST\tFIRED\tRESOLVED")
				for _, a := range alerts {
					resolved := "-"
					if a.ResolvedAt != nil {
						resolved = a.ResolvedAt.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.MonitorCondition, tripcap.SeverityName(a.Severity), a.RuleName, a.HostName,
						a.FiredAt.Local().Format(time.DateTime), resolved)
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
	tw.Flush()
	fmt.Fprintln(w, "\nHistory:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CONDITION\tAT\tWINDOW\tVALUES")
	for _, h := range a.History {
		var vals []string
		for _, c := range h.AllOf {
			vals = append(vals, fmt.Sprintf("%s %s=%v (%s %v)", c.TimeAggregation, c.MetricName, c.MetricValue, c.Operator, c.Threshold))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s … %s\t%s\n", h.MonitorCondition, h.Time.Local().Format(time.TimeOnly),
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

func newActionGroupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "action-group", Short: "Action groups: where alerts are delivered (webhooks, email)"}
	cmd.AddCommand(newActionGroupCreateCmd(),
		&cobra.Command{
			Use: "list", Short: "List action groups", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				gs, err := c.ListActionGroups(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, gs, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tID\tENABLED\tRECEIVERS")
					for _, g := range gs {
						fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", g.Name, g.ID, g.IsEnabled(), strings.Join(receivers(g), ", "))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "show GROUP", Short: "Show an action group (by name or id)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				g, err := c.GetActionGroup(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return render(cmd, g, func(w io.Writer) { printGroup(w, g) })
			},
		},
		&cobra.Command{
			Use: "delete GROUP", Short: "Delete an action group no rule uses", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteActionGroup(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "action group %s deleted\n", args[0]) })
			},
		})
	return cmd
}

func newActionGroupCreateCmd() *cobra.Command {
	var (
		shortName, file                         string
		webhooks, originals, emails, responders []string
		disabled                                bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an action group; its webhook signing secret is shown once",
		Example: `  tripcap action-group create ops --webhook fn=https://fn.example.com/api/alert --email oncall=oncall@example.com
  tripcap action-group create legacy --webhook-original seedfn=https://fn.example.com/api/alert?code=…`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g := &tripcap.ActionGroup{}
			if file != "" {
				if err := readJSONFile(cmd, file, g); err != nil {
					return err
				}
			}
			g.Name = args[0]
			if shortName != "" {
				g.GroupShortName = shortName
			}
			if disabled {
				g.Enabled = new(bool)
			}
			for _, spec := range []struct {
				flag   string
				values []string
				common bool
			}{{"webhook", webhooks, true}, {"webhook-original", originals, false}} {
				for _, v := range spec.values {
					name, uri, err := keyValue(spec.flag, v)
					if err != nil {
						return err
					}
					g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: name, ServiceURI: uri, UseCommonAlertSchema: spec.common})
				}
			}
			for _, v := range emails {
				name, addr, err := keyValue("email", v)
				if err != nil {
					return err
				}
				g.EmailReceivers = append(g.EmailReceivers, tripcap.EmailReceiver{Name: name, EmailAddress: addr, UseCommonAlertSchema: true})
			}
			for _, v := range responders {
				name, id, err := keyValue("responder", v)
				if err != nil {
					return err
				}
				g.ResponderReceivers = append(g.ResponderReceivers, tripcap.ResponderReceiver{Name: name, ResponderID: id})
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			created, err := c.CreateActionGroup(cmd.Context(), g)
			if err != nil {
				return err
			}
			return render(cmd, created, func(w io.Writer) {
				printGroup(w, created)
				fmt.Fprintf(w, "\nSigning secret: %s\nIt is shown only now. Receivers verify X-Tripcap-Signature with it (see docs/alerting.md).\n", created.SigningSecret)
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&webhooks, "webhook", nil, "webhook receiver NAME=URL, posted the common alert schema (repeatable)")
	f.StringArrayVar(&originals, "webhook-original", nil, "webhook receiver NAME=URL, posted Azure's original AzureMonitorMetricAlert schema, as the seed's function reads (repeatable)")
	f.StringArrayVar(&emails, "email", nil, "email receiver NAME=ADDRESS (repeatable; needs the server's TRIPCAP_SMTP_* settings)")
	f.StringArrayVar(&responders, "responder", nil, "responder receiver NAME=RESPONDER (a responder's name or id)")
	f.StringVar(&shortName, "short-name", "", "group short name (at most 12 characters)")
	f.StringVar(&file, "file", "", "read the group from a JSON file (Azure's actionGroups properties; '-' for standard input)")
	f.BoolVar(&disabled, "disabled", false, "create the group disabled (it delivers nothing)")
	return cmd
}

func receivers(g *tripcap.ActionGroup) []string {
	var out []string
	for _, r := range g.WebhookReceivers {
		schema := "common"
		if !r.UseCommonAlertSchema {
			schema = "original"
		}
		out = append(out, fmt.Sprintf("webhook %s (%s)", r.Name, schema))
	}
	for _, r := range g.EmailReceivers {
		out = append(out, "email "+r.Name)
	}
	for _, r := range g.ResponderReceivers {
		out = append(out, "responder "+r.Name)
	}
	return out
}

func printGroup(w io.Writer, g *tripcap.ActionGroup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nEnabled:\t%t\n", g.Name, g.ID, g.IsEnabled())
	for _, r := range g.WebhookReceivers {
		schema := "common alert schema"
		if !r.UseCommonAlertSchema {
			schema = "AzureMonitorMetricAlert schema"
		}
		fmt.Fprintf(tw, "Webhook %s:\t%s (%s)\n", r.Name, r.ServiceURI, schema)
	}
	for _, r := range g.EmailReceivers {
		fmt.Fprintf(tw, "Email %s:\t%s\n", r.Name, r.EmailAddress)
	}
	for _, r := range g.ResponderReceivers {
		fmt.Fprintf(tw, "Responder %s:\t%s\n", r.Name, r.ResponderID)
	}
	tw.Flush()
}
