package arm

import (
	"context"
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
	rules, groups := in.rules(), in.groups()
	p.Handle(http.MethodGet, sub+"metricAlerts", "MetricAlerts_ListBySubscription", only(metricAlertVersions, listOf(in, rules)))
	p.Handle(http.MethodGet, group+"metricAlerts", "MetricAlerts_ListByResourceGroup", only(metricAlertVersions, listOf(in, rules)))
	p.Handle(http.MethodGet, rule, "MetricAlerts_Get", only(metricAlertVersions, getOf(in, rules)))
	p.Handle(http.MethodPut, rule, "MetricAlerts_CreateOrUpdate", only(metricAlertVersions, putOf(in, rules, http.StatusOK, in.decodeRule)))
	p.Handle(http.MethodPatch, rule, "MetricAlerts_Update", only(metricAlertVersions, patchOf(in, rules, in.prepareRulePatch)))
	p.Handle(http.MethodDelete, rule, "MetricAlerts_Delete", only(metricAlertVersions, deleteOf(in, rules)))

	p.Handle(http.MethodGet, sub+"actionGroups", "ActionGroups_ListBySubscriptionId", only(actionGroupVersions, listOf(in, groups)))
	p.Handle(http.MethodGet, group+"actionGroups", "ActionGroups_ListByResourceGroup", only(actionGroupVersions, listOf(in, groups)))
	p.Handle(http.MethodGet, agroup, "ActionGroups_Get", only(actionGroupVersions, getOf(in, groups)))
	p.Handle(http.MethodPut, agroup, "ActionGroups_CreateOrUpdate", only(actionGroupVersions, putOf(in, groups, http.StatusCreated, in.decodeGroup)))
	p.Handle(http.MethodPatch, agroup, "ActionGroups_Update", only(actionGroupVersions, patchOf(in, groups, in.prepareGroupPatch)))
	p.Handle(http.MethodDelete, agroup, "ActionGroups_Delete", only(actionGroupVersions, deleteOf(in, groups)))

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

// kind is what the handlers of metricAlerts and actionGroups share about
// one of tripcap's rules or groups (T): how to find, write and show one.
type kind[T any] struct {
	typ, param, what string // "metricAlerts", "ruleName", "alert rule"
	list             func(ctx context.Context) ([]*T, error)
	find             func(ctx context.Context, ref string) (*T, error)
	create           func(ctx context.Context, v *T) (*T, error)
	update           func(ctx context.Context, id string, v *T, ifMatch string) (*T, error)
	remove           func(ctx context.Context, id string) error
	// about gives a T's id, name, ETag and placement.
	about func(v *T) (id, name, etag string, p tripcap.AzurePlacement)
	// shower does the lookups answers need once per request, and returns
	// what shows one T.
	shower func(r *Request) (func(v *T) any, error)
}

func (in *insights) rules() kind[tripcap.AlertRule] {
	m := in.svc.Monitor
	return kind[tripcap.AlertRule]{typ: typeMetricAlerts, param: "ruleName", what: "alert rule",
		list: m.FindRules, find: m.FindRule, create: m.CreateRule, update: m.UpdateRule, remove: m.DeleteRule,
		about: func(v *tripcap.AlertRule) (string, string, string, tripcap.AzurePlacement) {
			return v.ID, v.Name, v.ETag(), v.AzurePlacement
		},
		shower: func(r *Request) (func(*tripcap.AlertRule) any, error) {
			ref, err := in.groupIndex(r)
			if err != nil {
				return nil, err
			}
			return func(v *tripcap.AlertRule) any {
				sub, group := in.placement(v.AzurePlacement)
				return metricAlertOf(v, sub, group, ref)
			}, nil
		},
	}
}

func (in *insights) groups() kind[tripcap.ActionGroup] {
	m := in.svc.Monitor
	return kind[tripcap.ActionGroup]{typ: typeActionGroups, param: "actionGroupName", what: "action group",
		list: m.FindActionGroups, find: m.FindActionGroup, create: m.CreateActionGroup, update: m.UpdateActionGroup, remove: m.DeleteActionGroup,
		about: func(v *tripcap.ActionGroup) (string, string, string, tripcap.AzurePlacement) {
			return v.ID, v.Name, v.ETag(), v.AzurePlacement
		},
		shower: func(r *Request) (func(*tripcap.ActionGroup) any, error) {
			names := in.responderNames(r)
			return func(v *tripcap.ActionGroup) any {
				sub, group := in.placement(v.AzurePlacement)
				return actionGroupOf(v.Redacted(), sub, group, r.AbsURL("", nil), names)
			}, nil
		},
	}
}

// listOf lists the kind's resources in the path's subscription (and group).
func listOf[T any](in *insights, k kind[T]) HandlerFunc {
	return func(w http.ResponseWriter, r *Request) error {
		all, err := k.list(r.Context())
		if err != nil {
			return err
		}
		show, err := k.shower(r)
		if err != nil {
			return err
		}
		var out []any
		for _, v := range all {
			if _, _, _, p := k.about(v); in.placed(p, r) {
				out = append(out, show(v))
			}
		}
		page, next, err := Paginate(r, out)
		if err != nil {
			return err
		}
		return WritePage(w, r, page, next)
	}
}

// findIn is the resource the path names, in the path's resource group.
func findIn[T any](in *insights, r *Request, k kind[T]) (*T, error) {
	name := r.Param(k.param)
	v, err := k.find(r.Context(), name)
	if err == nil {
		// The native API finds by id too; an ARM path names a resource by name.
		if _, n, _, p := k.about(v); !in.placed(p, r) || !strings.EqualFold(n, name) {
			err = tripcap.Errorf(tripcap.ENOTFOUND, "not here")
		}
	}
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, Errorf(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s/%s' under resource group '%s' was not found.",
			insightsNamespace, k.typ, name, r.Param("resourceGroupName"))
	}
	return v, err
}

// answer writes v as the kind shows it.
func answer[T any](w http.ResponseWriter, r *Request, k kind[T], status int, v *T) error {
	show, err := k.shower(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, status, show(v))
}

func getOf[T any](in *insights, k kind[T]) HandlerFunc {
	return func(w http.ResponseWriter, r *Request) error {
		v, err := findIn(in, r, k)
		if err != nil {
			return err
		}
		return answer(w, r, k, http.StatusOK, v)
	}
}

// putOf creates (created: 200 for rules, 201 for groups, as Azure answers)
// or replaces the resource decode reads from the body. A name filed in
// another resource group is a conflict: names are unique on the server,
// not per group as in Azure.
func putOf[T any](in *insights, k kind[T], created int, decode func(r *Request, body []byte) (*T, error)) HandlerFunc {
	return func(w http.ResponseWriter, r *Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		v, err := decode(r, body)
		if err != nil {
			return withTarget(err, "")
		}
		status := http.StatusOK
		cur, err := k.find(r.Context(), r.Param(k.param))
		switch {
		case err == nil:
			id, name, _, p := k.about(cur)
			if !in.placed(p, r) {
				sub, group := in.placement(p)
				return Errorf(http.StatusConflict, "Conflict",
					"An %s named '%s' already exists in resource group '%s' of subscription '%s'; tripcap's %s names are unique on the server (regardless of case), so pick another name.",
					k.what, name, group, sub, k.what)
			}
			v, err = k.update(r.Context(), id, v, "*")
		case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
			status = created
			v, err = k.create(r.Context(), v)
		}
		if err != nil {
			return withTarget(withPrefix("properties", err), "")
		}
		return answer(w, r, k, status, v)
	}
}

// patchOf changes what the body gives: prepare reads the body once and
// returns what makes the new resource from the current one. A concurrent
// change makes it apply the patch again to the new version.
func patchOf[T any](in *insights, k kind[T], prepare func(r *Request, body []byte) (func(cur *T) (*T, error), error)) HandlerFunc {
	return func(w http.ResponseWriter, r *Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		change, err := prepare(r, body)
		if err != nil {
			return withTarget(err, "")
		}
		for attempt := 1; ; attempt++ {
			cur, err := findIn(in, r, k)
			if err != nil {
				return err
			}
			next, err := change(cur)
			if err != nil {
				return withTarget(err, "")
			}
			id, _, etag, _ := k.about(cur)
			out, err := k.update(r.Context(), id, next, etag)
			if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && attempt < 3 {
				continue
			}
			if err != nil {
				return withTarget(withPrefix("properties", err), "")
			}
			return answer(w, r, k, http.StatusOK, out)
		}
	}
}

// deleteOf answers 200 when it deleted, 204 when there was nothing to
// delete; a group a rule uses is 409 (naming the rule).
func deleteOf[T any](in *insights, k kind[T]) HandlerFunc {
	return func(w http.ResponseWriter, r *Request) error {
		v, err := findIn(in, r, k)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			return WriteJSON(w, http.StatusNoContent, nil)
		}
		if err != nil {
			return err
		}
		id, _, _, _ := k.about(v)
		if err := k.remove(r.Context(), id); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, nil)
	}
}

// decodeRule reads a metric alert PUT: every property Azure requires, and
// none tripcap does not know.
func (in *insights) decodeRule(r *Request, body []byte) (*tripcap.AlertRule, error) {
	var res metricAlertResource
	if err := decodeStrict("", body, &res); err != nil {
		return nil, err
	}
	if res.Properties != nil {
		if err := res.Properties.checkRequired(); err != nil {
			return nil, err
		}
	}
	return alertRule(&res, r.Param("subscriptionId"), r.Param("resourceGroupName"), r.Param("ruleName"), in.resolveGroup(r))
}

// prepareRulePatch reads a metric alert PATCH.
func (in *insights) prepareRulePatch(r *Request, body []byte) (func(*tripcap.AlertRule) (*tripcap.AlertRule, error), error) {
	var patch patchBody[metricAlertProperties]
	if err := decodeStrict("", body, &patch); err != nil {
		return nil, err
	}
	if err := checkNoIdentity("identity", patch.Identity); err != nil {
		return nil, err
	}
	return func(cur *tripcap.AlertRule) (*tripcap.AlertRule, error) {
		next := *cur
		if patch.Tags != nil {
			next.Tags = patch.Tags
		}
		if patch.Properties != nil {
			if err := patch.Properties.apply(&next, in.resolveGroup(r)); err != nil {
				return nil, err
			}
		}
		return &next, nil
	}, nil
}

// decodeGroup reads an action group PUT.
func (in *insights) decodeGroup(r *Request, body []byte) (*tripcap.ActionGroup, error) {
	var res actionGroupResource
	if err := decodeStrict("", body, &res); err != nil {
		return nil, err
	}
	return actionGroup(&res, r.Param("subscriptionId"), r.Param("resourceGroupName"), r.Param("actionGroupName"), in.functionEnv(r))
}

// prepareGroupPatch reads an action group PATCH: its tags and enabled.
func (in *insights) prepareGroupPatch(r *Request, body []byte) (func(*tripcap.ActionGroup) (*tripcap.ActionGroup, error), error) {
	var patch patchBody[actionGroupPatchProperties]
	if err := decodeStrict("", body, &patch); err != nil {
		return nil, err
	}
	if err := checkNoIdentity("identity", patch.Identity); err != nil {
		return nil, err
	}
	return func(cur *tripcap.ActionGroup) (*tripcap.ActionGroup, error) {
		next := *cur
		next.SigningSecretSet = false
		if patch.Tags != nil {
			next.Tags = patch.Tags
		}
		if patch.Properties != nil && patch.Properties.Enabled != nil {
			next.Enabled = new(*patch.Properties.Enabled)
		}
		return &next, nil
	}, nil
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
		return withTarget(err, "")
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
		return withTarget(invalid("timespan", "%s is longer than this server keeps metrics (%s)", tripcap.FormatISODuration(window), tripcap.FormatISODuration(rollup)), "")
	}
	interval, step := q.Interval, q.Interval
	if q.Full || interval > window {
		// One value over the timespan: the store's intervals are aligned
		// to their length, so it is read at a grain that divides the
		// timespan's ends, and reduced.
		interval = window
		if step, err = fullStep(q.Start, q.End); err != nil {
			return withTarget(err, "")
		}
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
				return withTarget(invalid("$filter", "%s has no %s dimension (it is the host's alone)", def.DisplayName, tripcap.DimensionInterface), "")
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
					Window: window, Interval: step, Aggregation: string(agg), End: q.End})
				if err != nil {
					return withTarget(err, "")
				}
				s.Results[agg] = res
				if step != interval {
					s.Results[agg] = reduced(res, agg, q.Start)
				}
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
			return withTarget(invalid(k, "not a parameter of metricDefinitions"), "")
		}
	}
	if ns := r.URL.Query().Get("metricnamespace"); ns != "" && !strings.EqualFold(ns, tripcap.MetricNamespace) {
		return withTarget(invalid("metricnamespace", "%q: a host's metrics are in %s", clip(ns), tripcap.MetricNamespace), "")
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
