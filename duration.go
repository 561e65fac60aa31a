package tripcap

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AzureEvaluationFrequencies are the values Azure accepts; tripcap accepts any
// whole number of seconds from PT1S to PT1H besides.
var AzureEvaluationFrequencies = []string{"PT1M", "PT5M", "PT15M", "PT30M", "PT1H"}

// ParseISODuration reads an ISO 8601 duration of whole seconds as Azure
// writes them: "PT1S", "PT5M", "PT1H30M", "P1D", "P1DT12H", "P1W". Years and
// months are refused (their length varies); so are fractions and signs.
func ParseISODuration(field, s string) (time.Duration, error) {
	bad := func(why string) error {
		return Errorf(EINVALID, "%s: %q is not an ISO 8601 duration such as PT1M or PT24H (%s)", field, clip(s), why)
	}
	rest, ok := strings.CutPrefix(strings.ToUpper(s), "P")
	if !ok {
		return 0, bad("it must start with P")
	}
	if rest == "" || rest == "T" {
		return 0, bad("it has no amount")
	}
	const limit = 366 * 24 * time.Hour
	var total time.Duration
	inTime := false
	last := 0
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, bad("T appears twice")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return 0, bad("nothing follows T")
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, bad("each amount is digits followed by a unit")
		}
		if i > 9 {
			return 0, bad("an amount is too large")
		}
		n, _ := strconv.ParseInt(rest[:i], 10, 64)
		unit := rest[i]
		var d time.Duration
		switch {
		case !inTime && unit == 'W':
			d = 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			d = 24 * time.Hour
		case inTime && unit == 'H':
			d = time.Hour
		case inTime && unit == 'M':
			d = time.Minute
		case inTime && unit == 'S':
			d = time.Second
		case !inTime && (unit == 'Y' || unit == 'M'):
			return 0, bad("years and months have no fixed length")
		default:
			return 0, bad(fmt.Sprintf("unit %q is not allowed there", unit))
		}
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		// Units must appear once each, largest first.
		order := map[string]int{"W": 1, "D": 2, "TH": 3, "TM": 4, "TS": 5}[key]
		if order <= last {
			return 0, bad("units are repeated or out of order")
		}
		last = order
		if time.Duration(n) > limit/d {
			return 0, bad("it is longer than a year")
		}
		total += time.Duration(n) * d
		if total > limit {
			return 0, bad("it is longer than a year")
		}
		rest = rest[i+1:]
	}
	return total, nil
}

// FormatISODuration writes d as Azure does: hours, minutes and seconds
// ("PT5M", "PT24H", "PT1H30M"), "PT0S" for zero. Sub-second parts are
// dropped; negative durations print as their absolute value.
func FormatISODuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	s := int64(d / time.Second)
	if s == 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("PT")
	if h := s / 3600; h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "H")
	}
	if m := s / 60 % 60; m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "M")
	}
	if sec := s % 60; sec > 0 {
		b.WriteString(strconv.FormatInt(sec, 10) + "S")
	}
	return b.String()
}
