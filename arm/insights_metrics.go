package arm

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/metricstore"
)

// The VM metrics API (GET {vm}/providers/Microsoft.Insights/metrics and
// metricDefinitions), answered from tripcap's metric store: the metrics
// are the host metrics under Azure's names (Network In Total, Network Out
// Total, Inbound Flows, …), with the one dimension "interface".

const (
	// defaultTimespan is the window of a query that gives none, as in Azure.
	defaultTimespan = time.Hour
	// defaultInterval is Azure's default time grain.
	defaultInterval = time.Minute
	// defaultTop is how many series a split query returns when top is not given.
	defaultTop = 10
	// maxMetricNames bounds one query, as Azure does (20 metrics).
	maxMetricNames = 20
)

// metricsRequest is a parsed metrics query.
type metricsRequest struct {
	Metrics      []tripcap.MetricID
	Aggregations []tripcap.Aggregation
	Start, End   time.Time
	// Interval is the time grain; Full asks for one value over the whole timespan.
	Interval time.Duration
	Full     bool
	// Split lists the interface dimension's values to split by; SplitAll
	// splits by every interface the host has series of. Neither: the host's series.
	Split    []string
	SplitAll bool
	Top      int
	// OrderBy sorts split series by their value over the timespan.
	OrderBy   tripcap.Aggregation
	OrderDesc bool
	Metadata  bool // resultType=Metadata: series without data
}

// metricsParams are the query parameters of the metrics API (2018-01-01 to
// 2024-02-01) with what tripcap does with each; any other is refused.
var metricsParams = []string{"api-version", "metricnames", "timespan", "interval", "aggregation", "$filter",
	"top", "orderby", "resultType", "metricnamespace", "AutoAdjustTimegrain", "ValidateDimensions", "rollupby"}

// parseMetricsQuery reads the metrics API's query parameters; now is the
// end of a query without a timespan. Errors name the parameter.
func parseMetricsQuery(q url.Values, now time.Time) (*metricsRequest, error) {
	for k := range q {
		if !slices.ContainsFunc(metricsParams, func(p string) bool { return strings.EqualFold(p, k) }) {
			return nil, invalid(k, "not a parameter of the metrics API")
		}
	}
	get := func(name string) string {
		for k, v := range q {
			if strings.EqualFold(k, name) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	req := &metricsRequest{Top: defaultTop}
	names := get("metricnames")
	if names == "" {
		return nil, invalid("metricnames", "required: one or more of %s, separated by commas", strings.Join(azureMetricNames(), ", "))
	}
	for _, n := range strings.Split(names, ",") {
		m, err := tripcap.ParseMetric("metricnames", strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		if !slices.Contains(req.Metrics, m) {
			req.Metrics = append(req.Metrics, m)
		}
	}
	if len(req.Metrics) > maxMetricNames {
		return nil, invalid("metricnames", "%d metrics; at most %d in one query", len(req.Metrics), maxMetricNames)
	}
	if a := get("aggregation"); a != "" {
		for _, s := range strings.Split(a, ",") {
			agg, err := tripcap.ParseAggregation("aggregation", strings.TrimSpace(s))
			if err != nil {
				return nil, err
			}
			if !slices.Contains(req.Aggregations, agg) {
				req.Aggregations = append(req.Aggregations, agg)
			}
		}
	}
	var err error
	if req.Start, req.End, err = parseTimespan("timespan", get("timespan"), now); err != nil {
		return nil, err
	}
	req.Interval = defaultInterval
	if iv := get("interval"); iv != "" {
		if strings.EqualFold(iv, "FULL") {
			req.Full = true
		} else if req.Interval, err = tripcap.ParseISODuration("interval", iv); err != nil {
			return nil, err
		} else if req.Interval < time.Second {
			return nil, invalid("interval", "%q is shorter than the metrics' 1-second grain", iv)
		}
	}
	if f := get("$filter"); f != "" {
		if req.Split, req.SplitAll, err = parseDimensionFilter("$filter", f); err != nil {
			return nil, err
		}
	}
	if t := get("top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 1000 {
			return nil, invalid("top", "%q is not a whole number from 1 to 1000", clip(t))
		}
		req.Top = n
	}
	if o := get("orderby"); o != "" {
		if req.OrderBy, req.OrderDesc, err = parseOrderBy("orderby", o); err != nil {
			return nil, err
		}
	}
	switch rt := get("resultType"); {
	case rt == "" || strings.EqualFold(rt, "Data"):
	case strings.EqualFold(rt, "Metadata"):
		req.Metadata = true
	default:
		return nil, invalid("resultType", "%q is not Data or Metadata", clip(rt))
	}
	if ns := get("metricnamespace"); ns != "" && !strings.EqualFold(ns, tripcap.MetricNamespace) {
		return nil, invalid("metricnamespace", "%q: a host's metrics are in %s", clip(ns), tripcap.MetricNamespace)
	}
	if v := get("AutoAdjustTimegrain"); v != "" {
		// Any whole-second grain is served as asked, so there is nothing to adjust.
		if _, err := strconv.ParseBool(v); err != nil {
			return nil, invalid("AutoAdjustTimegrain", "%q is not true or false", clip(v))
		}
	}
	if v := get("ValidateDimensions"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalid("ValidateDimensions", "%q is not true or false", clip(v))
		}
		if !b {
			return nil, invalid("ValidateDimensions", "tripcap always checks the filter's dimensions (the one there is: %s); leave it true", tripcap.DimensionInterface)
		}
	}
	if get("rollupby") != "" {
		return nil, invalid("rollupby", "not supported: leave out the $filter on interface for the host's own series (every interface but loopback)")
	}
	return req, nil
}

// azureMetricNames lists the metrics under Azure's names.
func azureMetricNames() []string {
	var out []string
	for _, d := range tripcap.MetricDefinitions() {
		out = append(out, d.DisplayName)
	}
	return out
}

// parseTimespan reads an ISO 8601 interval as the metrics API takes it:
// "START/END", "START/DURATION", "DURATION/END", or a DURATION ending now;
// "" is the last hour. Times are RFC 3339 (UTC when no zone is given).
func parseTimespan(field, s string, now time.Time) (start, end time.Time, err error) {
	if s == "" {
		return now.Add(-defaultTimespan), now, nil
	}
	a, b, two := strings.Cut(s, "/")
	bad := func(why string) (time.Time, time.Time, error) {
		return time.Time{}, time.Time{}, invalid(field, "%q %s; give START/END in ISO 8601 (2024-05-01T10:00:00Z/2024-05-01T11:00:00Z), START/PT1H or PT1H", clip(s), why)
	}
	switch {
	case !two:
		d, derr := tripcap.ParseISODuration(field, a)
		if derr != nil {
			return bad("is not a timespan")
		}
		start, end = now.Add(-d), now
	case strings.HasPrefix(a, "P"):
		d, derr := tripcap.ParseISODuration(field, a)
		e, terr := parseTime(b)
		if derr != nil || terr != nil {
			return bad("is not a timespan")
		}
		start, end = e.Add(-d), e
	case strings.HasPrefix(b, "P"):
		st, terr := parseTime(a)
		d, derr := tripcap.ParseISODuration(field, b)
		if derr != nil || terr != nil {
			return bad("is not a timespan")
		}
		start, end = st, st.Add(d)
	default:
		st, serr := parseTime(a)
		e, eerr := parseTime(b)
		if serr != nil || eerr != nil {
			return bad("is not a timespan")
		}
		start, end = st, e
	}
	if !end.After(start) {
		return bad("ends before it starts")
	}
	return start.UTC(), end.UTC(), nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalid("", "%q is not a time", s)
}

// parseDimensionFilter reads a $filter on the interface dimension:
// "interface eq '*'" splits by every interface, "interface eq 'eth0' or
// interface eq 'eth1'" by those. Other dimensions and operators are refused.
func parseDimensionFilter(field, s string) (values []string, all bool, err error) {
	toks, err := filterTokens(field, s)
	if err != nil {
		return nil, false, err
	}
	for i := 0; ; {
		if len(toks) < i+3 {
			return nil, false, invalid(field, "%q: expected %s eq 'VALUE'", clip(s), tripcap.DimensionInterface)
		}
		name, op, val := toks[i], toks[i+1], toks[i+2]
		if name.quoted || !strings.EqualFold(name.text, tripcap.DimensionInterface) {
			return nil, false, invalid(field, "%q is not a dimension of these metrics; the one there is is %s", clip(name.text), tripcap.DimensionInterface)
		}
		if op.quoted || !strings.EqualFold(op.text, "eq") {
			return nil, false, invalid(field, "operator %q is not supported; use eq (several joined by or)", clip(op.text))
		}
		if !val.quoted {
			return nil, false, invalid(field, "%q: the value must be quoted ('eth0')", clip(val.text))
		}
		if val.text == "*" {
			all = true
		} else {
			if val.text == "" || len(val.text) > 15 || strings.ContainsAny(val.text, "/ \t\n\x00") {
				return nil, false, invalid(field, "%q is not an interface name", clip(val.text))
			}
			if !slices.Contains(values, val.text) {
				values = append(values, val.text)
			}
		}
		i += 3
		if i == len(toks) {
			break
		}
		if toks[i].quoted || !strings.EqualFold(toks[i].text, "or") {
			return nil, false, invalid(field, "%q: conditions on %s join with or", clip(toks[i].text), tripcap.DimensionInterface)
		}
		i++
	}
	if all {
		values = nil
	}
	return values, all, nil
}

type filterToken struct {
	text   string
	quoted bool
}

// filterTokens splits a $filter into words and 'quoted' values (” is a quote).
func filterTokens(field, s string) ([]filterToken, error) {
	var out []filterToken
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, invalid(field, "%q has an unterminated quote", clip(s))
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, filterToken{b.String(), true})
		case c == '(' || c == ')':
			return nil, invalid(field, "parentheses are not supported; join conditions on %s with or", tripcap.DimensionInterface)
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\'' && s[j] != '(' && s[j] != ')' {
				j++
			}
			out = append(out, filterToken{s[i:j], false})
			i = j
		}
		if len(out) > 200 {
			return nil, invalid(field, "too long: at most 50 conditions")
		}
	}
	return out, nil
}

// parseOrderBy reads "AGGREGATION [asc|desc]" (Azure's "sum" is Total).
func parseOrderBy(field, s string) (tripcap.Aggregation, bool, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return "", false, invalid(field, "%q: give an aggregation and asc or desc (total desc)", clip(s))
	}
	name := f[0]
	if strings.EqualFold(name, "sum") {
		name = string(tripcap.AggregationTotal)
	}
	agg, err := tripcap.ParseAggregation(field, name)
	if err != nil {
		return "", false, err
	}
	desc := false
	if len(f) == 2 {
		switch {
		case strings.EqualFold(f[1], "desc"):
			desc = true
		case strings.EqualFold(f[1], "asc"):
		default:
			return "", false, invalid(field, "%q is not asc or desc", clip(f[1]))
		}
	}
	return agg, desc, nil
}

// Wire types of the metrics API's answers.
type (
	localizableString struct {
		Value          string `json:"value"`
		LocalizedValue string `json:"localizedValue"`
	}
	metricsResponse struct {
		Cost           int            `json:"cost"`
		Timespan       string         `json:"timespan"`
		Interval       string         `json:"interval,omitempty"`
		Namespace      string         `json:"namespace"`
		ResourceRegion string         `json:"resourceregion"`
		Value          []metricSeries `json:"value"`
	}
	metricSeries struct {
		ID                 string              `json:"id"`
		Type               string              `json:"type"`
		Name               localizableString   `json:"name"`
		DisplayDescription string              `json:"displayDescription"`
		Unit               tripcap.MetricUnit  `json:"unit"`
		Timeseries         []timeSeriesElement `json:"timeseries"`
		ErrorCode          string              `json:"errorCode"`
	}
	timeSeriesElement struct {
		Metadatavalues []metadataValue `json:"metadatavalues"`
		Data           []metricValue   `json:"data,omitempty"`
	}
	metadataValue struct {
		Name  localizableString `json:"name"`
		Value string            `json:"value"`
	}
	metricValue struct {
		TimeStamp time.Time `json:"timeStamp"`
		Average   *float64  `json:"average,omitempty"`
		Minimum   *float64  `json:"minimum,omitempty"`
		Maximum   *float64  `json:"maximum,omitempty"`
		Total     *float64  `json:"total,omitempty"`
		Count     *float64  `json:"count,omitempty"`
	}
)

func localized(s string) localizableString { return localizableString{Value: s, LocalizedValue: s} }

// seriesResults are one series' query answers, one per aggregation asked.
type seriesResults struct {
	Interface string // "" for the host's series
	Results   map[tripcap.Aggregation]*metricstore.Result
}

// value is the series' value over the whole timespan under agg, from its
// per-interval values (Average weighted by each interval's point count).
func (s seriesResults) value(agg tripcap.Aggregation) (float64, bool) {
	res := s.Results[agg]
	if res == nil {
		return 0, false
	}
	var v, n float64
	var points int64
	for _, p := range res.Points {
		if p.Count == 0 {
			continue
		}
		switch agg {
		case tripcap.AggregationMinimum:
			if points == 0 || p.Value < v {
				v = p.Value
			}
		case tripcap.AggregationMaximum:
			if points == 0 || p.Value > v {
				v = p.Value
			}
		case tripcap.AggregationAverage:
			v += p.Value * float64(p.Count)
			n += float64(p.Count)
		default:
			v += p.Value
		}
		points++
	}
	if points == 0 {
		return 0, false
	}
	if agg == tripcap.AggregationAverage {
		v /= n
	}
	return v, true
}

// fullStep is the grain a timespan is read at to be reduced to one value
// (interval=FULL): the longest of an hour, a minute and a second that
// divides both its ends, within the store's points per query.
func fullStep(start, end time.Time) (time.Duration, error) {
	for _, step := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if start.Truncate(step).Equal(start) && end.Truncate(step).Equal(end) && end.Sub(start)/step <= metricstore.DefaultMaxQueryPoints {
			return step, nil
		}
	}
	return 0, invalid("timespan", "with interval FULL, a timespan longer than %d seconds starts and ends on whole minutes", metricstore.DefaultMaxQueryPoints)
}

// reduced is res as one interval from start, its values reduced under agg.
func reduced(res *metricstore.Result, agg tripcap.Aggregation, start time.Time) *metricstore.Result {
	out := *res
	p := metricstore.Point{Time: start}
	for _, x := range res.Points {
		p.Count += x.Count
	}
	if v, ok := (seriesResults{Results: map[tripcap.Aggregation]*metricstore.Result{agg: res}}).value(agg); ok {
		p.Value = v
	} else {
		p.Count = 0
	}
	out.Points = []metricstore.Point{p}
	return &out
}

// orderSeries sorts split series by their value under agg (series without
// data last) and keeps the first top.
func orderSeries(ss []seriesResults, agg tripcap.Aggregation, desc bool, top int) []seriesResults {
	if agg != "" {
		slices.SortStableFunc(ss, func(a, b seriesResults) int {
			va, oka := a.value(agg)
			vb, okb := b.value(agg)
			switch {
			case oka != okb:
				if oka {
					return -1
				}
				return 1
			case va == vb:
				return 0
			case (va < vb) != desc:
				return -1
			}
			return 1
		})
	}
	return ss[:min(len(ss), top)]
}

// metricSeriesOf is one metric's entry in an answer: its series, each
// with one value per interval holding each aggregation asked.
func metricSeriesOf(resourceID string, def tripcap.MetricDefinition, aggs []tripcap.Aggregation, series []seriesResults, split, metadataOnly bool) metricSeries {
	m := metricSeries{
		ID:   resourceID + "/providers/Microsoft.Insights/metrics/" + def.DisplayName,
		Type: "Microsoft.Insights/metrics", Name: localized(def.DisplayName),
		DisplayDescription: def.Description, Unit: def.Unit, ErrorCode: "Success",
		Timeseries: []timeSeriesElement{},
	}
	for _, s := range series {
		el := timeSeriesElement{Metadatavalues: []metadataValue{}}
		if split {
			el.Metadatavalues = append(el.Metadatavalues, metadataValue{Name: localized(tripcap.DimensionInterface), Value: s.Interface})
		}
		if !metadataOnly {
			el.Data = mergeAggregations(aggs, s.Results)
		}
		m.Timeseries = append(m.Timeseries, el)
	}
	return m
}

// mergeAggregations lays the answers of each aggregation side by side, one
// value per interval; an interval without data has its time stamp alone
// (no data is never 0).
func mergeAggregations(aggs []tripcap.Aggregation, results map[tripcap.Aggregation]*metricstore.Result) []metricValue {
	var out []metricValue
	for _, agg := range aggs {
		res := results[agg]
		if res == nil {
			continue
		}
		if out == nil {
			out = make([]metricValue, len(res.Points))
			for i, p := range res.Points {
				out[i].TimeStamp = p.Time
			}
		}
		for i, p := range res.Points {
			if i >= len(out) || p.Count == 0 || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				continue
			}
			v := p.Value
			switch agg {
			case tripcap.AggregationAverage:
				out[i].Average = &v
			case tripcap.AggregationMinimum:
				out[i].Minimum = &v
			case tripcap.AggregationMaximum:
				out[i].Maximum = &v
			case tripcap.AggregationTotal:
				out[i].Total = &v
			case tripcap.AggregationCount:
				out[i].Count = &v
			}
		}
	}
	if out == nil {
		out = []metricValue{}
	}
	return out
}

// Wire types of metricDefinitions and metricNamespaces.
type (
	metricDefinitionWire struct {
		ID                        string                   `json:"id"`
		ResourceID                string                   `json:"resourceId"`
		Namespace                 string                   `json:"namespace"`
		Name                      localizableString        `json:"name"`
		DisplayDescription        string                   `json:"displayDescription"`
		Category                  string                   `json:"category"`
		Unit                      tripcap.MetricUnit       `json:"unit"`
		PrimaryAggregationType    tripcap.Aggregation      `json:"primaryAggregationType"`
		SupportedAggregationTypes []tripcap.Aggregation    `json:"supportedAggregationTypes"`
		MetricAvailabilities      []metricAvailabilityWire `json:"metricAvailabilities"`
		IsDimensionRequired       bool                     `json:"isDimensionRequired"`
		Dimensions                []localizableString      `json:"dimensions,omitempty"`
	}
	metricAvailabilityWire struct {
		TimeGrain string `json:"timeGrain"`
		Retention string `json:"retention"`
	}
	metricNamespaceWire struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		Type           string `json:"type"`
		Classification string `json:"classification"`
		Properties     struct {
			MetricNamespaceName string `json:"metricNamespaceName"`
		} `json:"properties"`
	}
)

// metricDefinitionsOf describes the host metrics of resourceID: 1-second
// points kept raw, 1-minute rollups kept rollup.
func metricDefinitionsOf(resourceID string, defs []tripcap.MetricDefinition, raw, rollup time.Duration) []metricDefinitionWire {
	out := make([]metricDefinitionWire, 0, len(defs))
	for _, d := range defs {
		w := metricDefinitionWire{
			ID:         resourceID + "/providers/microsoft.insights/metricdefinitions/" + d.DisplayName,
			ResourceID: resourceID, Namespace: tripcap.MetricNamespace, Name: localized(d.DisplayName),
			DisplayDescription: d.Description, Category: "Network", Unit: d.Unit, PrimaryAggregationType: d.DefaultAggregation,
			SupportedAggregationTypes: []tripcap.Aggregation{tripcap.AggregationAverage, tripcap.AggregationMinimum, tripcap.AggregationMaximum, tripcap.AggregationTotal, tripcap.AggregationCount},
			MetricAvailabilities: []metricAvailabilityWire{
				{TimeGrain: "PT1S", Retention: tripcap.FormatISODuration(raw)},
				{TimeGrain: "PT1M", Retention: tripcap.FormatISODuration(rollup)},
			},
		}
		if d.PerInterface {
			w.Dimensions = []localizableString{localized(tripcap.DimensionInterface)}
		}
		out = append(out, w)
	}
	return out
}

// metricNamespaceOf is the one metric namespace of a host.
func metricNamespaceOf(resourceID string) metricNamespaceWire {
	name := strings.ReplaceAll(tripcap.MetricNamespace, "/", "-")
	w := metricNamespaceWire{ID: resourceID + "/providers/microsoft.insights/metricNamespaces/" + name, Name: name,
		Type: "Microsoft.Insights/metricNamespaces", Classification: "Platform"}
	w.Properties.MetricNamespaceName = tripcap.MetricNamespace
	return w
}
