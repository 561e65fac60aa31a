package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

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
				groups := actionGroupNames(cmd, c)
				return render(cmd, r, func(w io.Writer) { printRule(w, r, groups) })
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
			groups := actionGroupNames(cmd, c)
			return render(cmd, created, func(w io.Writer) { printRule(w, created, groups) })
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

// actionGroupNames maps action group ids to names, for showing a rule's
// actions by name; an empty map when the groups cannot be listed (the ids
// are shown then).
func actionGroupNames(cmd *cobra.Command, c *tchttp.Client) map[string]string {
	names := map[string]string{}
	if gs, err := c.ListActionGroups(cmd.Context()); err == nil {
		for _, g := range gs {
			names[g.ID] = g.Name
		}
	}
	return names
}

// grainText says what the rule's aggregations are taken over.
func grainText(r *tripcap.AlertRule) string {
	if r.Grain() == tripcap.GrainMinute {
		return "1 minute, as in Azure (Average, Minimum and Maximum over per-minute values)"
	}
	return "1 second (Average, Minimum and Maximum over 1-second points)"
}

func printRule(w io.Writer, r *tripcap.AlertRule, groups map[string]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nEnabled:\t%t\nSeverity:\t%s\n", r.Name, r.ID, r.IsEnabled(), tripcap.SeverityName(r.SeverityLevel()))
	if r.Description != "" {
		fmt.Fprintf(tw, "Description:\t%s\n", r.Description)
	}
	fmt.Fprintf(tw, "Condition:\t%s\nGrain:\t%s\nScopes:\t%s\nAuto-mitigate:\t%t\n", ruleCondition(r), grainText(r), scopesText(r.Scopes), r.Mitigates())
	for _, a := range r.Actions {
		if name, ok := groups[a.ActionGroupID]; ok {
			fmt.Fprintf(tw, "Action group:\t%s (%s)\n", name, a.ActionGroupID)
		} else {
			fmt.Fprintf(tw, "Action group:\t%s\n", a.ActionGroupID)
		}
	}
	tw.Flush()
}
