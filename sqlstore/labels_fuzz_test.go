package sqlstore_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tripcap/tripcap/sqlstore"
)

// FuzzLabelNeedle: a labels column holds a selector's needle exactly when
// the labels match it (key=value: that key with that value; key: that key),
// whatever the keys and values hold (quotes, colons, '=', escapes).
func FuzzLabelNeedle(f *testing.F) {
	f.Add("team", "a", "team", "a", "team=a")
	f.Add("team", `a"b`, "xteam", "a", "team=a")
	f.Add("odd%", "_", `k":"v`, "x", `k":"v=x`)
	f.Add("a", "b=c", "b", "", "a=b=c")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, sel string) {
		for _, s := range []string{k1, v1, k2, v2, sel} {
			if !utf8.ValidString(s) {
				t.Skip() // refused before it reaches a column or a query
			}
		}
		labels := map[string]string{k1: v1, k2: v2}
		col, err := sqlstore.EncodeLabels(labels)
		if err != nil {
			t.Fatal(err)
		}
		key, value, hasValue := strings.Cut(sel, "=")
		v, ok := labels[key]
		want := ok && (!hasValue || v == value)
		if got := strings.Contains(string(col), sqlstore.LabelNeedle(sel)); got != want {
			t.Fatalf("labels %s, selector %q: matched %v, want %v (needle %s)", col, sel, got, want, sqlstore.LabelNeedle(sel))
		}
	})
}
