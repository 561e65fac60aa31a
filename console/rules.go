package console

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// The rules page: metric alert rules (Azure's metricAlerts) listed,
// created (the seeds' rules one click away), edited with a chart of what
// the rule would have done over the last hour, enabled, disabled and
// silenced. The Monitor authorizes every call; the page only leaves out
// the controls a Reader may not use.

func (c *Console) rulesPage() {
	if c.cfg.Monitor == nil {
		return
	}
	c.nav(navRules, "Rules", "/rules", tripcap.PermRead)
	c.get("/rules", c.rulesList)
	c.get("/rules/new", c.ruleNew)
	c.post("/rules/new", c.ruleCreate)
	c.post("/rules/check", c.ruleCheck)
	c.post("/rules/preview", c.rulePreview)
	c.get("/rules/{rule}", c.ruleEdit)
	c.post("/rules/{rule}", c.ruleUpdate)
	c.post("/rules/{rule}/enabled", c.ruleEnabled)
	c.post("/rules/{rule}/silence", c.ruleSilence)
	c.post("/rules/{rule}/delete", c.ruleDelete)
	c.post("/silences/{silence}/expire", c.silenceExpire)
}

type rulesData struct {
	Rules []ruleRow
	// Silences are the silences in force or to come, by rule id.
	Silences  []*tripcap.Silence
	RuleNames map[string]string
	Presets   []preset
	Notice    string
}

type ruleRow struct {
	*tripcap.AlertRule
	Condition string
	Groups    []string
	// Muted is the silence of the rule in force now, if any.
	Muted *tripcap.Silence
}

func (c *Console) rulesList(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rules, err := c.cfg.Monitor.FindRules(ctx)
	if err != nil {
		return err
	}
	silences, err := c.cfg.Monitor.FindSilences(ctx, false)
	if err != nil {
		return err
	}
	groups, err := c.groupNames(r)
	if err != nil {
		return err
	}
	now := c.cfg.Now()
	d := rulesData{Silences: silences, Notice: notice(r), Presets: presets, RuleNames: map[string]string{}}
	for _, rule := range rules {
		d.RuleNames[rule.ID] = rule.Name
		row := ruleRow{AlertRule: rule, Condition: conditionText(rule)}
		for _, a := range rule.Actions {
			row.Groups = append(row.Groups, cmp.Or(groups[a.ActionGroupID], a.ActionGroupID))
		}
		for _, s := range silences {
			if s.Rule == rule.ID && s.Host == "" && len(s.Labels) == 0 && !s.StartsAt.After(now) && s.EndsAt.After(now) {
				row.Muted = s
			}
		}
		d.Rules = append(d.Rules, row)
	}
	return c.render(w, r, "rules", d)
}

// groupNames maps action group ids to names.
func (c *Console) groupNames(r *http.Request) (map[string]string, error) {
	gs, err := c.cfg.Monitor.FindActionGroups(r.Context())
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(gs))
	for _, g := range gs {
		m[g.ID] = g.Name
	}
	return m, nil
}

// conditionText is a rule's criteria as a sentence: "Average Network Out
// Total > 3 over PT5M, every PT1M".
func conditionText(r *tripcap.AlertRule) string {
	var parts []string
	for _, c := range r.Criteria.AllOf {
		switch {
		case c.Static != nil:
			parts = append(parts, string(c.Static.TimeAggregation)+" "+c.Static.MetricName+" "+operatorSign(c.Static.Operator)+" "+formatNumber(c.Static.Threshold))
		case c.Dynamic != nil:
			parts = append(parts, string(c.Dynamic.TimeAggregation)+" "+c.Dynamic.MetricName+" "+string(c.Dynamic.Operator)+" a dynamic threshold ("+string(c.Dynamic.AlertSensitivity)+")")
		}
	}
	return strings.Join(parts, " and ") + " over " + r.WindowSize + ", every " + r.EvaluationFrequency
}

func operatorSign(o tripcap.Operator) string {
	switch o {
	case tripcap.OperatorGreaterThan:
		return ">"
	case tripcap.OperatorGreaterThanOrEqual:
		return "≥"
	case tripcap.OperatorLessThan:
		return "<"
	case tripcap.OperatorLessThanOrEqual:
		return "≤"
	case tripcap.OperatorEquals:
		return "="
	case tripcap.OperatorNotEquals:
		return "≠"
	}
	return string(o)
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ruleForm is the rule editor's fields, as typed.
type ruleForm struct {
	// Ref is the rule being edited ("" for a new one) and ETag its version.
	Ref, ETag                                string
	Name, Description, Severity, Scopes      string
	Metric, Aggregation, Operator, Threshold string
	Frequency, Window                        string
	Groups                                   []string
	Enabled, AutoMitigate                    bool
	Host                                     string
	// Editable is false for a rule the form cannot show whole (dynamic or
	// several criteria): it is enabled, disabled and silenced only.
	Editable bool
}

type ruleEditData struct {
	Form    ruleForm
	Error   *formError
	Metrics []tripcap.MetricDefinition
	Groups  []*tripcap.ActionGroup
	Hosts   []string
	Presets []preset
	Aggs    []tripcap.Aggregation
	Ops     []tripcap.Operator
	// Severities are Azure's names, Sev0 (critical) to Sev4.
	Severities []string
}

type preset struct{ Name, Label string }

var presets = []preset{
	{tripcap.PresetSeed, "The seed's rule: Network Out Total, Average > 3 over 5 minutes, every minute"},
	{tripcap.PresetSeed2017, "The 2017 seed's rule: TCP Segments Sent, Total > 100 over 5 minutes"},
}

var (
	formAggregations = []tripcap.Aggregation{tripcap.AggregationAverage, tripcap.AggregationMinimum, tripcap.AggregationMaximum, tripcap.AggregationTotal, tripcap.AggregationCount}
	formOperators    = []tripcap.Operator{tripcap.OperatorGreaterThan, tripcap.OperatorGreaterThanOrEqual, tripcap.OperatorLessThan, tripcap.OperatorLessThanOrEqual, tripcap.OperatorEquals, tripcap.OperatorNotEquals}
)

// formOf is the editor's fields for a rule.
func formOf(rule *tripcap.AlertRule) ruleForm {
	f := ruleForm{Name: rule.Name, Description: rule.Description, Severity: strconv.Itoa(rule.SeverityLevel()),
		Frequency: rule.EvaluationFrequency, Window: rule.WindowSize, Enabled: rule.IsEnabled(), AutoMitigate: rule.Mitigates()}
	if rule.ID != "" {
		f.Ref, f.ETag = rule.ID, rule.ETag()
	}
	var scopes []string
	for _, s := range rule.Scopes {
		scopes = append(scopes, string(s))
	}
	f.Scopes = strings.Join(scopes, ", ")
	for _, a := range rule.Actions {
		f.Groups = append(f.Groups, a.ActionGroupID)
	}
	if len(rule.Criteria.AllOf) == 1 && rule.Criteria.AllOf[0].Static != nil && len(rule.Criteria.AllOf[0].Static.Dimensions) == 0 {
		s := rule.Criteria.AllOf[0].Static
		f.Metric, f.Aggregation, f.Operator, f.Threshold = s.MetricName, string(s.TimeAggregation), string(s.Operator), formatNumber(s.Threshold)
		f.Editable = true
	}
	return f
}

// readRuleForm reads the editor's fields from a posted form.
func readRuleForm(r *http.Request) ruleForm {
	v := postForm(r)
	return ruleForm{
		Ref: v.Get("ref"), ETag: v.Get("etag"), Name: strings.TrimSpace(v.Get("name")), Description: v.Get("description"),
		Severity: v.Get("severity"), Scopes: v.Get("scopes"), Metric: v.Get("metric"), Aggregation: v.Get("aggregation"),
		Operator: v.Get("operator"), Threshold: strings.TrimSpace(v.Get("threshold")), Frequency: strings.TrimSpace(v.Get("evaluationFrequency")),
		Window: strings.TrimSpace(v.Get("windowSize")), Groups: v["actionGroup"], Enabled: v.Get("enabled") != "",
		AutoMitigate: v.Get("autoMitigate") != "", Host: strings.TrimSpace(v.Get("host")), Editable: true,
	}
}

// rule turns the fields into a rule; the error names the field (the
// Monitor checks the rest, with the same names).
func (f ruleForm) rule() (*tripcap.AlertRule, error) {
	sev, err := strconv.Atoi(f.Severity)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "severity: %q is not a number 0 to 4", f.Severity)
	}
	threshold, err := strconv.ParseFloat(f.Threshold, 64)
	if err != nil {
		return nil, tripcap.Errorf(tripcap.EINVALID, "criteria.allOf[0].threshold: %q is not a number", f.Threshold)
	}
	agg, err := tripcap.ParseAggregation("criteria.allOf[0].timeAggregation", f.Aggregation)
	if err != nil {
		return nil, err
	}
	op, err := tripcap.ParseOperator("criteria.allOf[0].operator", f.Operator)
	if err != nil {
		return nil, err
	}
	rule := &tripcap.AlertRule{Name: f.Name, Description: f.Description, Severity: &sev, Enabled: &f.Enabled, AutoMitigate: &f.AutoMitigate,
		EvaluationFrequency: f.Frequency, WindowSize: f.Window,
		Criteria: tripcap.Criteria{AllOf: []tripcap.Criterion{{Static: &tripcap.StaticCriterion{
			MetricCriterion: tripcap.MetricCriterion{Name: "Metric1", MetricName: f.Metric, TimeAggregation: agg},
			Operator:        op, Threshold: threshold,
		}}}}}
	for _, s := range strings.FieldsFunc(f.Scopes, func(r rune) bool { return r == ',' || r == '\n' }) {
		if s = strings.TrimSpace(s); s != "" {
			rule.Scopes = append(rule.Scopes, tripcap.Scope(s))
		}
	}
	for _, g := range f.Groups {
		if g != "" {
			rule.Actions = append(rule.Actions, tripcap.Action{ActionGroupID: g})
		}
	}
	return rule, nil
}

func (c *Console) ruleNew(w http.ResponseWriter, r *http.Request) error {
	f := ruleForm{Severity: "3", Scopes: "*", Metric: "Network Out Total", Aggregation: "Average", Operator: "GreaterThan",
		Threshold: "0", Frequency: tripcap.DefaultEvaluationFrequency, Window: tripcap.DefaultWindowSize, Enabled: true, AutoMitigate: true, Editable: true}
	if p := r.URL.Query().Get("preset"); p != "" {
		name := cmp.Or(r.URL.Query().Get("name"), "seed-rule")
		rule, err := tripcap.PresetAlertRule(p, name, []tripcap.Scope{tripcap.ScopeAll})
		if err != nil {
			return err
		}
		f = formOf(rule)
	}
	return c.renderRuleEditor(w, r, http.StatusOK, f, nil)
}

func (c *Console) renderRuleEditor(w http.ResponseWriter, r *http.Request, status int, f ruleForm, ferr *formError) error {
	ctx := r.Context()
	groups, err := c.cfg.Monitor.FindActionGroups(ctx)
	if err != nil {
		return err
	}
	d := ruleEditData{Form: f, Error: ferr, Metrics: tripcap.MetricDefinitions(), Groups: groups, Presets: presets, Aggs: formAggregations, Ops: formOperators,
		Severities: []string{"Sev0 (critical)", "Sev1 (error)", "Sev2 (warning)", "Sev3 (informational)", "Sev4 (verbose)"}}
	// The chart's host: the form's, else the first the caller may read.
	hosts, _, err := c.cfg.Service.FindHosts(ctx, tripcap.HostFilter{Limit: 100})
	if err != nil {
		return err
	}
	for _, h := range hosts {
		d.Hosts = append(d.Hosts, h.Name)
	}
	if d.Form.Host == "" && len(d.Hosts) > 0 {
		d.Form.Host = d.Hosts[0]
	}
	// Groups are chosen by id; a preset's form names none.
	for i, g := range d.Form.Groups {
		for _, ag := range groups {
			if strings.EqualFold(g, ag.Name) {
				d.Form.Groups[i] = ag.ID
			}
		}
	}
	c.renderStatus(w, r, status, "rule", d)
	return nil
}

// HasGroup reports whether the form chose the action group.
func (f ruleForm) HasGroup(id string) bool { return slices.Contains(f.Groups, id) }

func (c *Console) ruleCreate(w http.ResponseWriter, r *http.Request) error {
	f := readRuleForm(r)
	rule, err := f.rule()
	if err == nil {
		_, err = c.cfg.Monitor.CreateRule(r.Context(), rule)
	}
	if tripcap.ErrorCode(err) == tripcap.EINVALID || tripcap.ErrorCode(err) == tripcap.ECONFLICT {
		return c.renderRuleEditor(w, r, http.StatusBadRequest, f, newFormError(err))
	}
	if err != nil {
		return err
	}
	done(w, r, "/rules", "rule-created")
	return nil
}

func (c *Console) ruleEdit(w http.ResponseWriter, r *http.Request) error {
	rule, err := c.cfg.Monitor.FindRule(r.Context(), r.PathValue("rule"))
	if err != nil {
		return err
	}
	return c.renderRuleEditor(w, r, http.StatusOK, formOf(rule), nil)
}

func (c *Console) ruleUpdate(w http.ResponseWriter, r *http.Request) error {
	f := readRuleForm(r)
	f.Ref = r.PathValue("rule")
	rule, err := f.rule()
	if err == nil {
		_, err = c.cfg.Monitor.UpdateRule(r.Context(), f.Ref, rule, f.ETag)
	}
	switch tripcap.ErrorCode(err) {
	case "":
	case tripcap.EINVALID, tripcap.ECONFLICT:
		return c.renderRuleEditor(w, r, http.StatusBadRequest, f, newFormError(err))
	case tripcap.EPRECONDITION:
		// Someone saved the rule since this form was read: show the error
		// over the form as typed, so nothing is lost.
		return c.renderRuleEditor(w, r, http.StatusPreconditionFailed, f, newFormError(err))
	default:
		return err
	}
	done(w, r, "/rules", "rule-saved")
	return nil
}

// ruleCheck validates the editor's fields as they are typed: the answer
// names the field at fault (console.js marks it), or is empty. A form
// still being typed is not a failed request: the answer is 200 either way.
func (c *Console) ruleCheck(w http.ResponseWriter, r *http.Request) error {
	f := readRuleForm(r)
	rule, err := f.rule()
	if err == nil {
		rule.ApplyDefaults()
		err = rule.Validate()
	}
	return answerCheck(w, err, struct{}{})
}

// answerCheck answers a check or preview a script asked for: ok when err
// is nil, the field and reason (200) when the input is invalid, else the
// error (forbidden, not found…) as the framework answers it.
func answerCheck(w http.ResponseWriter, err error, ok any) error {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ok)
		return nil
	case tripcap.ErrorCode(err) == tripcap.EINVALID:
		msg := tripcap.ErrorMessage(err)
		writeJSON(w, http.StatusOK, fieldError{Field: errorField(msg), Message: msg})
		return nil
	}
	return err
}

// rulePreview answers what the rule being edited would have done on the
// chosen host over the last hour (controlplane.ReplayRule), for the chart.
func (c *Console) rulePreview(w http.ResponseWriter, r *http.Request) error {
	f := readRuleForm(r)
	rule, err := f.rule()
	if err != nil {
		return answerCheck(w, err, nil)
	}
	rp, err := c.cfg.Monitor.ReplayRule(r.Context(), rule, f.Host, time.Hour)
	return answerCheck(w, err, rp)
}

// ruleEnabled enables or disables a rule (enabled=true|false), keeping the rest.
func (c *Console) ruleEnabled(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rule, err := c.cfg.Monitor.FindRule(ctx, r.PathValue("rule"))
	if err != nil {
		return err
	}
	on, err := strconv.ParseBool(postForm(r).Get("enabled"))
	if err != nil {
		return tripcap.Errorf(tripcap.EINVALID, "enabled: %q is not true or false", postForm(r).Get("enabled"))
	}
	etag := cmp.Or(postForm(r).Get("etag"), rule.ETag())
	in := *rule
	in.Enabled = &on
	if _, err := c.cfg.Monitor.UpdateRule(ctx, rule.ID, &in, etag); err != nil {
		return err
	}
	key := "rule-disabled"
	if on {
		key = "rule-enabled"
	}
	done(w, r, "/rules", key)
	return nil
}

// silenceDurations are the silence form's choices.
var silenceDurations = map[string]time.Duration{"15m": 15 * time.Minute, "1h": time.Hour, "4h": 4 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// ruleSilence mutes the rule's alerts for a while: they are still
// recorded (as muted) and delivered to no one.
func (c *Console) ruleSilence(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	rule, err := c.cfg.Monitor.FindRule(ctx, r.PathValue("rule"))
	if err != nil {
		return err
	}
	d, ok := silenceDurations[postForm(r).Get("for")]
	if !ok {
		return tripcap.Errorf(tripcap.EINVALID, "for: %q is not one of 15m, 1h, 4h, 24h, 7d", postForm(r).Get("for"))
	}
	now := c.cfg.Now()
	_, err = c.cfg.Monitor.CreateSilence(ctx, &tripcap.Silence{Rule: rule.ID, StartsAt: now, EndsAt: now.Add(d), Comment: postForm(r).Get("comment")})
	if err != nil {
		return err
	}
	done(w, r, "/rules", "rule-silenced")
	return nil
}

func (c *Console) silenceExpire(w http.ResponseWriter, r *http.Request) error {
	if _, err := c.cfg.Monitor.ExpireSilence(r.Context(), r.PathValue("silence")); err != nil {
		return err
	}
	done(w, r, "/rules", "silence-ended")
	return nil
}

func (c *Console) ruleDelete(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("rule")
	if err := c.cfg.Monitor.DeleteRule(r.Context(), ref); err != nil {
		return err
	}
	done(w, r, "/rules", "rule-deleted")
	return nil
}

// postForm is the posted form, parsed (the CSRF check has usually parsed it
// already; a form the server cannot read is empty, and its fields required).
func postForm(r *http.Request) url.Values {
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
		_ = r.ParseForm()
	}
	return r.PostForm
}
