package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

// TestHelpShowsStoredDefaults: what --help calls the default is what is
// stored when the flag is left out.
func TestHelpShowsStoredDefaults(t *testing.T) {
	root := newRootCmd()
	for _, path := range [][]string{{"responder", "create"}, {"responder", "update"}} {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		want := (tripcap.DefaultResponderTimeLimit * time.Second).String()
		if got := cmd.Flags().Lookup("time-limit").DefValue; got != want {
			t.Errorf("%v --time-limit default %s, want the responder's %s", path, got, want)
		}
	}
}

// TestEmptyListIsJSONArray: -o json prints [] for an empty listing.
func TestEmptyListIsJSONArray(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"host", "list"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.SetOut(&out)
	if err := cmd.ParseFlags([]string{"-o", "json"}); err != nil {
		t.Fatal(err)
	}
	var hosts []*tripcap.Host
	if err := render(cmd, hosts, nil); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.([]any); !ok {
		t.Fatalf("empty listing printed %s, want []", out.String())
	}
}
