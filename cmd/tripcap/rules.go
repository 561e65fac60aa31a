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
	cmd.AddCommand(newRuleCreateCmd(), newRuleUpdateCmd(),
		enableCmd("rule", true, setRuleEnabled), enableCmd("rule", false, setRuleEnabled),
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

// ruleFlags are the flags `rule create` and `rule update` share. apply
// writes into a rule only the flags given (and, for a new rule, the
// defaults of those not given), so update keeps the rule's other values.
type ruleFlags struct {
	metric, aggregation, operator, frequency, window, description string
	threshold                                                     float64
	severity                                                      int
	groups, scopes, ifaces, props                                 []string
	noMitigate, disabled                                          bool
}

func (f *ruleFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.metric, "metric", "", "metric: \"Network Out Total\", network_out_bytes, … (tripcap metrics lists them in the API)")
	fl.StringVar(&f.aggregation, "aggregation", "", "Average, Minimum, Maximum, Total or Count (default the metric's)")
	fl.StringVar(&f.operator, "operator", "GreaterThan", "Equals, NotEquals, GreaterThan, GreaterThanOrEqual, LessThan or LessThanOrEqual")
	fl.Float64Var(&f.threshold, "threshold", 0, "the threshold the aggregated value is compared with")
	fl.StringVar(&f.frequency, "frequency", "1m", "evaluation frequency: 1s … 1h (or PT1M)")
	fl.StringVar(&f.window, "window", "5m", "window size: 1s … 24h, at least the frequency (or PT5M)")
	fl.StringArrayVar(&f.groups, "action-group", nil, "action group to notify, by name or id (repeatable)")
	fl.StringArrayVar(&f.props, "webhook-property", nil, "custom property k=v for the payloads (repeatable)")
	fl.StringArrayVar(&f.scopes, "scope", []string{"*"}, "hosts: *, host:NAME, location:LOC, label:K=V or a subscription, group or VM resource id (repeatable)")
	fl.StringArrayVar(&f.ifaces, "interface", nil, "evaluate these interfaces' series instead of the host's (repeatable; * for each)")
	fl.IntVar(&f.severity, "severity", tripcap.DefaultAlertSeverity, "severity, 0 (critical) to 4")
	fl.StringVar(&f.description, "description", "", "description")
	fl.BoolVar(&f.noMitigate, "no-auto-mitigate", false, "keep fired alerts Fired when the condition clears")
}

// criterionFlags are the flags that change the rule's first criterion.
var criterionFlags = []string{"metric", "aggregation", "operator", "threshold", "interface"}

// apply sets r's fields from the flags given; criteria selects whether the
// criterion flags apply (not to a rule read from a file).
func (f *ruleFlags) apply(cmd *cobra.Command, r *tripcap.AlertRule, criteria bool) error {
	set := cmd.Flags().Changed
	if criteria {
		if len(r.Criteria.AllOf) == 0 || r.Criteria.AllOf[0].Static == nil {
			for _, name := range criterionFlags {
				if set(name) {
					return fmt.Errorf("--%s: the rule's first criterion is not a static threshold; change it with --file", name)
				}
			}
		} else if err := f.applyCriterion(cmd, r.Criteria.AllOf[0].Static); err != nil {
			return err
		}
	}
	if set("scope") || len(r.Scopes) == 0 {
		r.Scopes = nil
		for _, sc := range f.scopes {
			r.Scopes = append(r.Scopes, tripcap.Scope(sc))
		}
	}
	var err error
	if set("frequency") || r.EvaluationFrequency == "" {
		if r.EvaluationFrequency, err = isoDuration("--frequency", f.frequency); err != nil {
			return err
		}
	}
	if set("window") || r.WindowSize == "" {
		if r.WindowSize, err = isoDuration("--window", f.window); err != nil {
			return err
		}
	}
	if set("severity") {
		r.Severity = new(f.severity)
	}
	if set("description") {
		r.Description = f.description
	}
	if set("no-auto-mitigate") {
		r.AutoMitigate = new(!f.noMitigate)
	}
	if set("disabled") {
		r.Enabled = new(!f.disabled)
	}
	var custom map[string]string
	for _, p := range f.props {
		k, v, err := keyValue("webhook-property", p)
		if err != nil {
			return err
		}
		if custom == nil {
			custom = map[string]string{}
		}
		custom[k] = v
	}
	switch {
	case len(f.groups) > 0:
		r.Actions = nil
		for _, g := range f.groups {
			r.Actions = append(r.Actions, tripcap.Action{ActionGroupID: g, WebHookProperties: custom})
		}
	case custom != nil:
		return errors.New("--webhook-property: give --action-group too")
	}
	return nil
}

func (f *ruleFlags) applyCriterion(cmd *cobra.Command, s *tripcap.StaticCriterion) error {
	set := cmd.Flags().Changed
	if set("metric") {
		s.MetricName = f.metric
	}
	if set("aggregation") {
		s.TimeAggregation = tripcap.Aggregation(f.aggregation)
	} else if s.TimeAggregation == "" {
		// The metric's own default, as Azure's portal picks.
		if m, err := tripcap.ParseMetric("--metric", s.MetricName); err == nil {
			d, _ := m.Definition()
			s.TimeAggregation = d.DefaultAggregation
		}
	}
	if set("operator") || s.Operator == "" {
		s.Operator = tripcap.Operator(f.operator)
	}
	if set("threshold") {
		s.Threshold = f.threshold
	}
	if set("interface") {
		s.Dimensions = nil
		if len(f.ifaces) > 0 {
			s.Dimensions = []tripcap.Dimension{{Name: tripcap.DimensionInterface, Operator: "Include", Values: f.ifaces}}
		}
	}
	return nil
}

func newRuleCreateCmd() *cobra.Command {
	var (
		f            ruleFlags
		preset, file string
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
				var scopes []tripcap.Scope
				for _, s := range f.scopes {
					scopes = append(scopes, tripcap.Scope(s))
				}
				var err error
				if r, err = tripcap.PresetAlertRule(preset, args[0], scopes); err != nil {
					return err
				}
			default:
				if f.metric == "" || !set("threshold") {
					return errors.New("--metric and --threshold: required (or give --preset or --file)")
				}
				r = &tripcap.AlertRule{Name: args[0], Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{}}}}}
			}
			if err := f.apply(cmd, r, file == ""); err != nil {
				return err
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
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&preset, "preset", "", "start from a preset: seed (Network Out Total, Average > 3, 1m/5m) or seed-2017 (TCP Segments Sent, Total > 100)")
	fl.StringVar(&file, "file", "", "read the rule from a JSON file (Azure's metricAlerts properties; '-' for standard input)")
	fl.BoolVar(&f.disabled, "disabled", false, "create the rule disabled")
	return cmd
}

func newRuleUpdateCmd() *cobra.Command {
	var (
		f            ruleFlags
		file, rename string
	)
	cmd := &cobra.Command{
		Use:   "update RULE",
		Short: "Change an alert rule: only the flags given (its id, alerts and history stay)",
		Long: "Change a rule (by name or id). Only the flags given change; the criterion flags (--metric, --threshold, …)\n" +
			"change its first criterion. --file replaces all its settings with the JSON in FILE instead. If someone else\n" +
			"changes the rule in between, the change is made again on their version. A fired alert of the rule resolves\n" +
			"at the next evaluation that finds the new condition not met.",
		Example: `  tripcap rule update high-egress --threshold 5000000 --window 10m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var fromFile tripcap.AlertRule
			if file != "" {
				if err := readJSONFile(cmd, file, &fromFile); err != nil {
					return err
				}
			}
			updated, err := updateRule(cmd, args[0], func(r *tripcap.AlertRule) error {
				if file != "" {
					name := r.Name
					*r = fromFile
					if r.Name == "" {
						r.Name = name
					}
				} else if err := f.apply(cmd, r, true); err != nil {
					return err
				}
				if rename != "" {
					r.Name = rename
				}
				return nil
			})
			if err != nil {
				return err
			}
			return render(cmd, updated, func(w io.Writer) {
				fmt.Fprintf(w, "rule %s updated (version %d)\n", updated.Name, updated.Version)
			})
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "replace the rule's settings with a JSON file (Azure's metricAlerts properties; '-' for standard input)")
	fl.StringVar(&rename, "rename", "", "a new name")
	fl.BoolVar(&f.disabled, "disabled", false, "disable it (--disabled=false enables)")
	return cmd
}

// updateRule reads a rule, changes it and writes it If-Match the version
// read; a concurrent change makes the server refuse, and change is applied
// again to the new version.
func updateRule(cmd *cobra.Command, ref string, change func(r *tripcap.AlertRule) error) (*tripcap.AlertRule, error) {
	c, err := client(cmd)
	if err != nil {
		return nil, err
	}
	return readChangeWrite(func() (*tripcap.AlertRule, error) { return c.GetAlertRule(cmd.Context(), ref) },
		func(cur *tripcap.AlertRule) (string, string, error) { return cur.ID, cur.ETag(), change(cur) },
		func(id string, r *tripcap.AlertRule, etag string) (*tripcap.AlertRule, error) {
			return c.UpdateAlertRule(cmd.Context(), id, r, etag)
		})
}

// readChangeWrite is the CLI's side of a conditional update: read, change,
// write If-Match the ETag read, and again on a concurrent change.
func readChangeWrite[T any](read func() (*T, error), change func(cur *T) (id, etag string, err error), write func(id string, v *T, etag string) (*T, error)) (*T, error) {
	for attempt := 1; ; attempt++ {
		cur, err := read()
		if err != nil {
			return nil, err
		}
		id, etag, err := change(cur)
		if err != nil {
			return nil, err
		}
		out, err := write(id, cur, etag)
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && attempt < 4 {
			continue
		}
		return out, err
	}
}

// enableCmd makes `enable NAME` or `disable NAME` for a kind of object
// whose update sets Enabled.
func enableCmd(kind string, enable bool, set func(cmd *cobra.Command, ref string, enabled bool) (name string, err error)) *cobra.Command {
	verb, what := "disable", "disabled"
	short := "Disable a " + kind + " (by name or id)"
	if enable {
		verb, what, short = "enable", "enabled", "Enable a "+kind+" (by name or id)"
	}
	return &cobra.Command{
		Use: verb + " " + strings.ToUpper(strings.ReplaceAll(kind, " ", "-")), Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := set(cmd, args[0], enable)
			if err != nil {
				return err
			}
			return render(cmd, map[string]any{"name": name, "enabled": enable}, func(w io.Writer) { fmt.Fprintf(w, "%s %s %s\n", kind, name, what) })
		},
	}
}

func setRuleEnabled(cmd *cobra.Command, ref string, enabled bool) (string, error) {
	r, err := updateRule(cmd, ref, func(r *tripcap.AlertRule) error { r.Enabled = new(enabled); return nil })
	if err != nil {
		return "", err
	}
	return r.Name, nil
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
