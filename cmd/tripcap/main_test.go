package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestMain lets a test run the binary's main with arguments, to see its
// exit status: the test binary runs itself with TRIPCAP_TEST_MAIN_ARGS set.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("TRIPCAP_TEST_MAIN_ARGS"); ok {
		os.Args = append([]string{"tripcap"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestEveryCommandChecksItsArguments walks the whole command tree: a
// command that groups others prints its help alone and refuses an unknown
// subcommand, and every command refuses arguments it does not take, both as
// usage errors.
func TestEveryCommandChecksItsArguments(t *testing.T) {
	var groups, leaves int
	var walk func(path []string, c *cobra.Command)
	walk = func(path []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(append(path[:len(path):len(path)], sub.Name()), sub)
		}
		name := strings.Join(append([]string{"tripcap"}, path...), " ")
		if c.HasSubCommands() && c.Runnable() {
			// A command that runs and has subcommands (server, and its
			// rotate-master-key): unknown words are refused, not run.
			groups++
			_, err := execute(append(path, "nonsense")...)
			var u *usageError
			if !errors.As(err, &u) || !strings.Contains(err.Error(), `unknown command "nonsense" for "`+name+`"`) {
				t.Errorf("%s nonsense = %v, want a usage error naming the unknown command", name, err)
			}
			return
		}
		if c.HasSubCommands() {
			groups++
			out, err := execute(path...)
			if err != nil || !strings.Contains(out, "Available Commands:") {
				t.Errorf("%s alone = %v, printed %q; want its help", name, err, out)
			}
			_, err = execute(append(path, "nonsense")...)
			var u *usageError
			if !errors.As(err, &u) || !strings.Contains(err.Error(), `unknown command "nonsense" for "`+name+`"`) {
				t.Errorf("%s nonsense = %v, want a usage error naming the unknown command", name, err)
			}
			return
		}
		leaves++
		if c.Annotations[takesWords] != "" {
			return // its words are a list (files, an expression), as many as it has
		}
		// More arguments than any command takes: refused before anything runs.
		_, err := execute(append(path, "a", "b", "c", "d", "e")...)
		var u *usageError
		if !errors.As(err, &u) {
			t.Errorf("%s with five arguments = %v, want a usage error", name, err)
		}
	}
	walk(nil, newRootCmd())
	if groups < 10 || leaves < 40 {
		t.Errorf("walked %d groups and %d commands: the tree is larger", groups, leaves)
	}
}

// execute runs the command line on a fresh tree, with a server that is not
// there: no command may get as far as calling it.
func execute(args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--server", "http://127.0.0.1:1", "--token", "x"}, args...))
	err := root.Execute()
	return out.String(), err
}

// TestExitStatus: a command line that does not fit exits 2 with an error
// (an unknown subcommand used to print help and exit 0), a failure 1, help 0.
func TestExitStatus(t *testing.T) {
	for _, c := range []struct {
		args   string
		status int
		says   string
	}{
		{"action-group rotate ops", 2, `error: unknown command "rotate" for "tripcap action-group"`},
		{"host join-token nope", 2, `error: unknown command "nope" for "tripcap host join-token"`},
		{"rule lsit", 2, "Did you mean this?\n\tlist"},
		{"frobnicate", 2, `error: unknown command "frobnicate" for "tripcap"`},
		{"rule list extra", 2, `error: unknown command "extra" for "tripcap rule list"`},
		{"capture show", 2, "error: accepts 1 arg(s), received 0"},
		{"action-group", 0, "Available Commands:"},
		{"--server http://127.0.0.1:1 --token x host list", 1, "error:"},
	} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TRIPCAP_TEST_MAIN_ARGS="+c.args, "TRIPCAP_CONFIG="+t.TempDir()+"/none.json")
		out, err := cmd.CombinedOutput()
		status := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != c.status || !strings.Contains(string(out), c.says) {
			t.Errorf("tripcap %s: exit %d, printed %q; want exit %d saying %q", c.args, status, out, c.status, c.says)
		}
	}
}
