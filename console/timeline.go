package console

import (
	"bytes"
	_ "embed"
	"html/template"
	"time"
)

//go:embed templates/timeline.svg.tmpl
var timelineSource string

var timelineSVG = template.Must(template.New("timeline").Funcs(template.FuncMap{
	"utc": utc,
	"clip": func(s string) string {
		if r := []rune(s); len(r) > 30 {
			return string(r[:29]) + "…"
		}
		return s
	},
}).Parse(timelineSource))

// A timeline is laid out on the server as SVG coordinates (attributes, not
// inline styles, which the CSP forbids), so it shows without JavaScript.

const (
	timelineWidth  = 1000.0
	timelineGutter = 220.0
	timelineLane   = 22.0
	timelineAxis   = 24.0
	timelineTicks  = 5
)

// span is a stretch of time on its own lane.
type span struct {
	Label    string
	From, To time.Time
	// Class is the CSS class of its bar (span, capture, pretrigger).
	Class string
	// Open says it has not ended (drawn to now); Muted that a silence muted it.
	Open, Muted bool
	Link        string
}

// mark is a moment drawn across every lane (a delivery, a notification).
type mark struct {
	At           time.Time
	Class, Label string
}

type timeline struct {
	From, To      time.Time
	Width, Height float64
	Gutter        float64
	Rows          []timelineRow
	Marks         []timelineMark
	Ticks         []timelineTick
}

type timelineRow struct {
	span
	Y, X, W, TextY float64
}

type timelineMark struct {
	mark
	X, Y2 float64
}

type timelineTick struct {
	X     float64
	Label string
}

// layoutTimeline places spans, one lane each, and marks on one axis
// covering all of them with a margin; now ends open spans.
func layoutTimeline(spans []span, marks []mark, now time.Time) timeline {
	var from, to time.Time
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if from.IsZero() || t.Before(from) {
			from = t
		}
		if to.IsZero() || t.After(to) {
			to = t
		}
	}
	for _, s := range spans {
		see(s.From)
		see(s.To)
	}
	for _, m := range marks {
		see(m.At)
	}
	if from.IsZero() {
		from, to = now.Add(-time.Hour), now
	}
	pad := max(to.Sub(from)/20, 30*time.Second)
	from, to = from.Add(-pad), to.Add(pad)
	tl := timeline{From: from, To: to, Width: timelineWidth, Gutter: timelineGutter}
	scale := (timelineWidth - timelineGutter) / float64(to.Sub(from))
	x := func(t time.Time) float64 { return timelineGutter + float64(t.Sub(from))*scale }
	for i, s := range spans {
		y := timelineAxis + float64(i)*timelineLane
		w := max(x(s.To)-x(s.From), 2)
		tl.Rows = append(tl.Rows, timelineRow{span: s, Y: y + 4, X: x(s.From), W: w, TextY: y + 15})
	}
	tl.Height = timelineAxis + float64(len(spans))*timelineLane + 6
	for _, m := range marks {
		tl.Marks = append(tl.Marks, timelineMark{mark: m, X: x(m.At), Y2: tl.Height})
	}
	step := to.Sub(from) / timelineTicks
	for i := 0; i <= timelineTicks; i++ {
		t := from.Add(time.Duration(i) * step)
		label := t.UTC().Format("15:04:05")
		if step >= 12*time.Hour {
			label = t.UTC().Format("01-02 15:04")
		}
		tl.Ticks = append(tl.Ticks, timelineTick{X: x(t), Label: label})
	}
	return tl
}

// SVG draws the timeline.
func (tl timeline) SVG() (template.HTML, error) {
	var b bytes.Buffer
	if err := timelineSVG.Execute(&b, tl); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // #nosec: html/template escaped it
}
