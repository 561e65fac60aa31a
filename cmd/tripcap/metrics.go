package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/metricstore"
)

func newMetricsCmd() *cobra.Command {
	var window, interval, aggregation, iface string
	cmd := &cobra.Command{
		Use:   "metrics HOST METRIC",
		Short: "Chart a host's metric (e.g. \"Network Out Total\") over a window",
		Long: "metrics charts one of a host's metrics, one value per interval, from the server's metric store (intervals older than it holds from the remote store, when the server has --remote-read-url). METRIC is an Azure name " +
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
