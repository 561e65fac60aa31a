package arm

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
)

// Microsoft.Insights: metricAlerts and actionGroups over the Monitor's
// rules and action groups (insights_alerts.go, insights_groups.go), and a
// host's metrics, metric definitions and metric namespaces from its
// metric store (insights_metrics.go).

// Each resource type has its own api-versions; the provider accepts them
// all, and each route refuses those of another type.
var (
	metricAlertVersions = []string{"2017-09-01-preview", "2018-03-01", "2024-03-01-preview", "2026-01-01"}
	actionGroupVersions = []string{"2017-04-01", "2018-03-01", "2018-09-01", "2019-03-01", "2019-06-01", "2021-09-01",
		"2022-04-01", "2022-06-01", "2023-01-01", "2023-09-01-preview", "2024-10-01-preview"}
	metricsVersions    = []string{"2018-01-01", "2019-07-01", "2021-05-01", "2023-10-01", "2024-02-01"}
	namespacesVersions = []string{"2017-12-01-preview", "2024-02-01"}
)

// insights serves the provider's routes.
type insights struct {
	svc Services
}

// registerInsights serves Microsoft.Insights.
func registerInsights(a *API, svc Services) {
	if svc.Monitor == nil || svc.Control == nil {
		return
	}
	var all []string
	for _, vs := range [][]string{metricAlertVersions, actionGroupVersions, metricsVersions, namespacesVersions} {
		all = append(all, vs...)
	}
	p := a.Provider(insightsNamespace, all...)
	in := &insights{svc: svc}
	only := func(versions []string, h HandlerFunc) HandlerFunc {
		typ := &Provider{Namespace: insightsNamespace, versions: versions}
		return func(w http.ResponseWriter, r *Request) error {
			if _, err := typ.checkVersion(r.URL.Query()); err != nil {
				return err
			}
			return h(w, r)
		}
	}
	const (
		sub    = "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/"
		group  = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Insights/"
		vm     = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/virtualMachines/{vmName}/providers/Microsoft.Insights/"
		rule   = group + "metricAlerts/{ruleName}"
		agroup = group + "actionGroups/{actionGroupName}"
	)
	p.Handle(http.MethodGet, sub+"metricAlerts", "MetricAlerts_ListBySubscription", only(metricAlertVersions, in.listRules))
	p.Handle(http.MethodGet, group+"metricAlerts", "MetricAlerts_ListByResourceGroup", only(metricAlertVersions, in.listRules))
	p.Handle(http.MethodGet, rule, "MetricAlerts_Get", only(metricAlertVersions, in.getRule))
	p.Handle(http.MethodPut, rule, "MetricAlerts_CreateOrUpdate", only(metricAlertVersions, in.putRule))
	p.Handle(http.MethodPatch, rule, "MetricAlerts_Update", only(metricAlertVersions, in.patchRule))
	p.Handle(http.MethodDelete, rule, "MetricAlerts_Delete", only(metricAlertVersions, in.deleteRule))

	p.Handle(http.MethodGet, sub+"actionGroups", "ActionGroups_ListBySubscriptionId", only(actionGroupVersions, in.listGroups))
	p.Handle(http.MethodGet, group+"actionGroups", "ActionGroups_ListByResourceGroup", only(actionGroupVersions, in.listGroups))
	p.Handle(http.MethodGet, agroup, "ActionGroups_Get", only(actionGroupVersions, in.getGroup))
	p.Handle(http.MethodPut, agroup, "ActionGroups_CreateOrUpdate", only(actionGroupVersions, in.putGroup))
	p.Handle(http.MethodPatch, agroup, "ActionGroups_Update", only(actionGroupVersions, in.patchGroup))
	p.Handle(http.MethodDelete, agroup, "ActionGroups_Delete", only(actionGroupVersions, in.deleteGroup))

	p.Handle(http.MethodGet, vm+"metrics", "Metrics_List", only(metricsVersions, in.metrics))
	p.Handle(http.MethodGet, vm+"metricDefinitions", "MetricDefinitions_List", only(metricsVersions, in.metricDefinitions))
	p.Handle(http.MethodGet, vm+"metricNamespaces", "MetricNamespaces_List", only(namespacesVersions, in.metricNamespaces))
}

// defaults are the subscription and resource group of rules and groups
// made through the native API (the server's own).
func (in *insights) defaults() (sub, group string) {
	cfg := in.svc.Control.Config()
	return cfg.SubscriptionID, cfg.ResourceGroup
}

// placement is where p is filed, defaults filled in.
func (in *insights) placement(p tripcap.AzurePlacement) (sub, group string) {
	sub, group = in.defaults()
	if p.SubscriptionID != "" {
		sub, group = p.SubscriptionID, p.ResourceGroup
	}
	return sub, group
}

func (in *insights) placed(p tripcap.AzurePlacement, r *Request) bool {
	sub, group := in.defaults()
	return p.Placed(r.Param("subscriptionId"), r.Param("resourceGroupName"), sub, group)
}

// notFound is Azure's answer for a resource of typ missing from the request's group.
func notFound(r *Request, typ, name string) error {
	return Errorf(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s/%s' under resource group '%s' was not found.",
		insightsNamespace, typ, name, r.Param("resourceGroupName"))
}

// elsewhere refuses a name taken in another resource group: names are
// unique on the server, not per group as in Azure.
func elsewhere(what, name, sub, group string) error {
	return Errorf(http.StatusConflict, "Conflict",
		"An %s named '%s' already exists in resource group '%s' of subscription '%s'; tripcap's %s names are unique on the server (regardless of case), so pick another name.",
		what, name, group, sub, what)
}

// insightsError is err as ARM answers it: a tripcap EINVALID becomes a 400
// whose target is the field its message starts with.
func insightsError(err error) error {
	var e *tripcap.Error
	if err == nil || !errors.As(err, &e) || e.Code != tripcap.EINVALID {
		return err
	}
	target := ""
	if f, _, ok := strings.Cut(e.Message, ": "); ok && !strings.ContainsAny(f, " \t") {
		target = f
	}
	return BadRequest("InvalidRequestFormat", target, "%s", e.Message)
}

// readBody reads the request body, bounded.
func readBody(r *Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	var big *http.MaxBytesError
	if errors.As(err, &big) {
		return nil, BadRequest("InvalidRequestFormat", "", "The request body is larger than %d bytes.", big.Limit)
	}
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, BadRequest("InvalidRequestFormat", "", "The request body is empty; a JSON object is required.")
	}
	return b, nil
}

// groupIndex maps action group ids to their resource ids, for a rule's actions.
func (in *insights) groupIndex(r *Request) (groupRef, error) {
	gs, err := in.svc.Monitor.FindActionGroups(r.Context())
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, g := range gs {
		sub, group := in.placement(g.AzurePlacement)
		ids[g.ID] = insightsID(sub, group, typeActionGroups, g.Name)
	}
	return func(id string) string {
		if rid, ok := ids[id]; ok {
			return rid
		}
		return id
	}, nil
}

// resolveGroup is resolveAction over the Monitor: the group the resource id
// names, when it is filed where the id says.
func (in *insights) resolveGroup(r *Request) resolveAction {
	return func(field, rid string) (string, error) {
		id, err := ParseResourceID(field, rid)
		if err != nil {
			return "", err
		}
		if !id.Is(insightsNamespace, typeActionGroups) || id.ResourceGroup == "" {
			return "", invalid(field, "%q is not an action group resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Insights/actionGroups/NAME)", clip(rid))
		}
		g, err := in.svc.Monitor.FindActionGroup(r.Context(), id.Name())
		dsub, dgroup := in.defaults()
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || (err == nil && !g.Placed(id.Subscription, id.ResourceGroup, dsub, dgroup)) {
			return "", invalid(field, "no action group %q; create it first", clip(rid))
		}
		if err != nil {
			return "", err
		}
		return g.ID, nil
	}
}

func (in *insights) ruleOf(r *Request, rule *tripcap.AlertRule, ref groupRef) *metricAlertResource {
	sub, group := in.placement(rule.AzurePlacement)
	return metricAlertOf(rule, sub, group, ref)
}

func (in *insights) listRules(w http.ResponseWriter, r *Request) error {
	rules, err := in.svc.Monitor.FindRules(r.Context())
	if err != nil {
		return err
	}
	ref, err := in.groupIndex(r)
	if err != nil {
		return err
	}
	var out []*metricAlertResource
	for _, rule := range rules {
		if in.placed(rule.AzurePlacement, r) {
			out = append(out, in.ruleOf(r, rule, ref))
		}
	}
	page, next, err := Paginate(r, out)
	if err != nil {
		return err
	}
	return WritePage(w, r, page, next)
}

// findRule is the rule the path names, in the path's resource group.
func (in *insights) findRule(r *Request) (*tripcap.AlertRule, error) {
	name := r.Param("ruleName")
	rule, err := in.svc.Monitor.FindRule(r.Context(), name)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || (err == nil && (!in.placed(rule.AzurePlacement, r) || !strings.EqualFold(rule.Name, name))) {
		return nil, notFound(r, typeMetricAlerts, name)
	}
	return rule, err
}

func (in *insights) answerRule(w http.ResponseWriter, r *Request, rule *tripcap.AlertRule) error {
	ref, err := in.groupIndex(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, in.ruleOf(r, rule, ref))
}

func (in *insights) getRule(w http.ResponseWriter, r *Request) error {
	rule, err := in.findRule(r)
	if err != nil {
		return err
	}
	return in.answerRule(w, r, rule)
}

// putRule creates or replaces a rule: 200 either way, as Azure answers.
func (in *insights) putRule(w http.ResponseWriter, r *Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var res metricAlertResource
	if err := decodeStrict("", body, &res); err != nil {
		return insightsError(err)
	}
	if res.Properties != nil {
		if err := res.Properties.checkRequired(); err != nil {
			return insightsError(err)
		}
	}
	name := r.Param("ruleName")
	rule, err := res.rule(r.Param("subscriptionId"), r.Param("resourceGroupName"), name, in.resolveGroup(r))
	if err != nil {
		return insightsError(err)
	}
	cur, err := in.svc.Monitor.FindRule(r.Context(), name)
	switch {
	case err == nil && !in.placed(cur.AzurePlacement, r):
		sub, group := in.placement(cur.AzurePlacement)
		return elsewhere("alert rule", cur.Name, sub, group)
	case err == nil:
		rule, err = in.svc.Monitor.UpdateRule(r.Context(), cur.ID, rule, "*")
	case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
		rule, err = in.svc.Monitor.CreateRule(r.Context(), rule)
	}
	if err != nil {
		return insightsError(withPrefix("properties", err))
	}
	return in.answerRule(w, r, rule)
}

// patchRule changes the properties and tags the body gives.
func (in *insights) patchRule(w http.ResponseWriter, r *Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var patch metricAlertPatch
	if err := decodeStrict("", body, &patch); err != nil {
		return insightsError(err)
	}
	if err := checkNoIdentity("identity", patch.Identity); err != nil {
		return insightsError(err)
	}
	for attempt := 1; ; attempt++ {
		cur, err := in.findRule(r)
		if err != nil {
			return err
		}
		next := *cur
		if patch.Tags != nil {
			next.Tags = patch.Tags
		}
		if patch.Properties != nil {
			if err := patch.Properties.apply(&next, in.resolveGroup(r)); err != nil {
				return insightsError(err)
			}
		}
		out, err := in.svc.Monitor.UpdateRule(r.Context(), cur.ID, &next, cur.ETag())
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && attempt < 3 {
			continue // changed meanwhile: apply the patch to the new version
		}
		if err != nil {
			return insightsError(withPrefix("properties", err))
		}
		return in.answerRule(w, r, out)
	}
}

// deleteRule answers 200 when it deleted, 204 when there was no such rule.
func (in *insights) deleteRule(w http.ResponseWriter, r *Request) error {
	rule, err := in.findRule(r)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return WriteJSON(w, http.StatusNoContent, nil)
	}
	if err != nil {
		return err
	}
	if err := in.svc.Monitor.DeleteRule(r.Context(), rule.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, nil)
}

// functionEnv is what the request's action group may name as a responder.
func (in *insights) functionEnv(r *Request) functionEnv {
	base, _ := url.Parse(r.AbsURL("", nil))
	return functionEnv{
		local: func(u *url.URL) bool {
			return strings.EqualFold(u.Host, r.Host) || (base != nil && strings.EqualFold(u.Host, base.Host))
		},
		responder: func(name string) (*tripcap.Responder, error) {
			if in.svc.Responders == nil {
				return nil, tripcap.Errorf(tripcap.ENOTFOUND, "this server has no responders")
			}
			return in.svc.Responders.FindResponder(r.Context(), name)
		},
	}
}

// responderNames names a group's responders (by id or name) for its answer.
func (in *insights) responderNames(r *Request) responderName {
	return func(ref string) string {
		if in.svc.Responders != nil {
			if rs, err := in.svc.Responders.FindResponder(r.Context(), ref); err == nil {
				return rs.Name
			}
		}
		return ref
	}
}

func (in *insights) groupOf(r *Request, g *tripcap.ActionGroup) *actionGroupResource {
	sub, group := in.placement(g.AzurePlacement)
	return actionGroupOf(g.Redacted(), sub, group, r.AbsURL("", nil), in.responderNames(r))
}

func (in *insights) listGroups(w http.ResponseWriter, r *Request) error {
	gs, err := in.svc.Monitor.FindActionGroups(r.Context())
	if err != nil {
		return err
	}
	var out []*actionGroupResource
	for _, g := range gs {
		if in.placed(g.AzurePlacement, r) {
			out = append(out, in.groupOf(r, g))
		}
	}
	page, next, err := Paginate(r, out)
	if err != nil {
		return err
	}
	return WritePage(w, r, page, next)
}

// findGroup is the group the path names, in the path's resource group.
func (in *insights) findGroup(r *Request) (*tripcap.ActionGroup, error) {
	name := r.Param("actionGroupName")
	g, err := in.svc.Monitor.FindActionGroup(r.Context(), name)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND || (err == nil && (!in.placed(g.AzurePlacement, r) || !strings.EqualFold(g.Name, name))) {
		return nil, notFound(r, typeActionGroups, name)
	}
	return g, err
}

func (in *insights) getGroup(w http.ResponseWriter, r *Request) error {
	g, err := in.findGroup(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, in.groupOf(r, g))
}

// putGroup creates (201) or replaces (200) an action group.
func (in *insights) putGroup(w http.ResponseWriter, r *Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var res actionGroupResource
	if err := decodeStrict("", body, &res); err != nil {
		return insightsError(err)
	}
	name := r.Param("actionGroupName")
	g, err := res.group(r.Param("subscriptionId"), r.Param("resourceGroupName"), name, in.functionEnv(r))
	if err != nil {
		return insightsError(err)
	}
	status := http.StatusOK
	cur, err := in.svc.Monitor.FindActionGroup(r.Context(), name)
	switch {
	case err == nil && !in.placed(cur.AzurePlacement, r):
		sub, group := in.placement(cur.AzurePlacement)
		return elsewhere("action group", cur.Name, sub, group)
	case err == nil:
		g, err = in.svc.Monitor.UpdateActionGroup(r.Context(), cur.ID, g, "*")
	case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
		status = http.StatusCreated
		g, err = in.svc.Monitor.CreateActionGroup(r.Context(), g)
	}
	if err != nil {
		return insightsError(withPrefix("properties", err))
	}
	return WriteJSON(w, status, in.groupOf(r, g))
}

// patchGroup changes the group's tags and enabled.
func (in *insights) patchGroup(w http.ResponseWriter, r *Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var patch actionGroupPatch
	if err := decodeStrict("", body, &patch); err != nil {
		return insightsError(err)
	}
	if err := checkNoIdentity("identity", patch.Identity); err != nil {
		return insightsError(err)
	}
	for attempt := 1; ; attempt++ {
		cur, err := in.findGroup(r)
		if err != nil {
			return err
		}
		next := *cur
		next.SigningSecretSet = false
		if patch.Tags != nil {
			next.Tags = patch.Tags
		}
		if patch.Properties != nil && patch.Properties.Enabled != nil {
			next.Enabled = new(*patch.Properties.Enabled)
		}
		out, err := in.svc.Monitor.UpdateActionGroup(r.Context(), cur.ID, &next, cur.ETag())
		if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && attempt < 3 {
			continue
		}
		if err != nil {
			return insightsError(withPrefix("properties", err))
		}
		return WriteJSON(w, http.StatusOK, in.groupOf(r, out))
	}
}

// deleteGroup answers 200 when it deleted, 204 when there was no such
// group; a group a rule uses is 409 (the rule names it).
func (in *insights) deleteGroup(w http.ResponseWriter, r *Request) error {
	g, err := in.findGroup(r)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusNotFound {
		return WriteJSON(w, http.StatusNoContent, nil)
	}
	if err != nil {
		return err
	}
	if err := in.svc.Monitor.DeleteActionGroup(r.Context(), g.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, nil)
}

// host is the VM the path names: 404 ResourceNotFound as for any resource
// the caller may not see.
func (in *insights) host(r *Request) (*tripcap.Host, string, error) {
	rid := tripcap.VMResourceID(r.Param("subscriptionId"), r.Param("resourceGroupName"), r.Param("vmName"))
	h, err := in.svc.Control.FindHost(r.Context(), rid)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, "", Errorf(http.StatusNotFound, "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/%s' under resource group '%s' was not found.",
			r.Param("vmName"), r.Param("resourceGroupName"))
	}
	if err != nil {
		return nil, "", err
	}
	return h, h.ResourceID(), nil
}

// metrics answers a metrics query from the metric store.
func (in *insights) metrics(w http.ResponseWriter, r *Request) error {
	q, err := parseMetricsQuery(r.URL.Query(), time.Now().UTC())
	if err != nil {
		return insightsError(err)
	}
	h, rid, err := in.host(r)
	if err != nil {
		return err
	}
	_, rollup := in.svc.Monitor.MetricRetention()
	window := q.End.Sub(q.Start).Round(time.Second)
	if window < time.Second {
		window = time.Second
	}
	if window > rollup {
		return insightsError(invalid("timespan", "%s is longer than this server keeps metrics (%s)", tripcap.FormatISODuration(window), tripcap.FormatISODuration(rollup)))
	}
	interval := q.Interval
	if q.Full || interval > window {
		interval = window
	}
	resp := metricsResponse{Timespan: q.Start.Format(time.RFC3339) + "/" + q.End.Format(time.RFC3339),
		Interval: tripcap.FormatISODuration(interval), Namespace: tripcap.MetricNamespace, ResourceRegion: h.Location, Value: []metricSeries{}}
	split := q.SplitAll || len(q.Split) > 0
	for _, m := range q.Metrics {
		def, _ := m.Definition()
		aggs := q.Aggregations
		if len(aggs) == 0 {
			aggs = []tripcap.Aggregation{def.DefaultAggregation}
		}
		ifaces := []string{""}
		if split {
			if !def.PerInterface {
				return insightsError(invalid("$filter", "%s has no %s dimension (it is the host's alone)", def.DisplayName, tripcap.DimensionInterface))
			}
			ifaces = q.Split
			if q.SplitAll {
				if ifaces, err = in.svc.Monitor.MetricInterfaces(r.Context(), h.ID, string(m)); err != nil {
					return err
				}
			}
		}
		queried := aggs
		if q.OrderBy != "" && !slices.Contains(aggs, q.OrderBy) {
			queried = append(append([]tripcap.Aggregation(nil), aggs...), q.OrderBy)
		}
		var series []seriesResults
		for _, ifc := range ifaces {
			s := seriesResults{Interface: ifc, Results: map[tripcap.Aggregation]*metricstore.Result{}}
			for _, agg := range queried {
				res, err := in.svc.Monitor.QueryMetrics(r.Context(), controlplane.MetricsQuery{Host: h.ID, Metric: string(m), Interface: ifc,
					Window: window, Interval: interval, Aggregation: string(agg), End: q.End})
				if err != nil {
					return insightsError(err)
				}
				s.Results[agg] = res
			}
			series = append(series, s)
		}
		if split {
			series = orderSeries(series, q.OrderBy, q.OrderDesc, q.Top)
		}
		resp.Value = append(resp.Value, metricSeriesOf(rid, def, aggs, series, split, q.Metadata))
	}
	return WriteJSON(w, http.StatusOK, resp)
}

func (in *insights) metricDefinitions(w http.ResponseWriter, r *Request) error {
	for k := range r.URL.Query() {
		if !strings.EqualFold(k, "api-version") && !strings.EqualFold(k, "metricnamespace") {
			return insightsError(invalid(k, "not a parameter of metricDefinitions"))
		}
	}
	if ns := r.URL.Query().Get("metricnamespace"); ns != "" && !strings.EqualFold(ns, tripcap.MetricNamespace) {
		return insightsError(invalid("metricnamespace", "%q: a host's metrics are in %s", clip(ns), tripcap.MetricNamespace))
	}
	_, rid, err := in.host(r)
	if err != nil {
		return err
	}
	defs, err := in.svc.Monitor.MetricDefinitions(r.Context())
	if err != nil {
		return err
	}
	raw, rollup := in.svc.Monitor.MetricRetention()
	return WriteJSON(w, http.StatusOK, List[metricDefinitionWire]{Value: metricDefinitionsOf(rid, defs, raw, rollup)})
}

func (in *insights) metricNamespaces(w http.ResponseWriter, r *Request) error {
	_, rid, err := in.host(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, List[metricNamespaceWire]{Value: []metricNamespaceWire{metricNamespaceOf(rid)}})
}
