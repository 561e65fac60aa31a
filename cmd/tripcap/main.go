// Command tripcap is tripcap's one binary: the control plane (server), the
// per-host agent, both at once (up), and the CLI client verbs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/atomicfile"
	tchttp "github.com/tripcap/tripcap/http"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", tripcapErrorText(err))
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for a command line that does not fit the command (as is
// usual for usage errors), 1 for any other failure.
func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a command line that does not fit its command: an unknown
// subcommand, or arguments the command does not take.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// strictArgs makes every command of the tree check its arguments, so that
// a typo is an error and not silently something else. A command that only
// groups others (no action of its own) prints its help when called alone,
// and refuses anything else as an unknown subcommand; cobra would print the
// help and succeed. A command that declares no argument check takes none.
// Every argument check's failure is a usageError (exit status 2).
func strictArgs(c *cobra.Command) {
	if !c.Runnable() && c.HasSubCommands() {
		c.Args = unknownSubcommand
		// Cobra checks arguments only of a command that runs; its usage
		// would then show a use line of its own, which a group has none of.
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[groupAnnotation] = "true"
	}
	if !c.HasParent() {
		// Every command inherits the root's template.
		c.SetUsageTemplate(strings.Replace(c.UsageTemplate(), "{{if .Runnable}}", `{{if and .Runnable (not (index .Annotations "`+groupAnnotation+`"))}}`, 1))
	}
	check := c.Args
	if check == nil {
		check = cobra.NoArgs
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
}

// groupAnnotation marks a command that only groups others.
const groupAnnotation = "tripcap/group"

// unknownSubcommand refuses any argument of a command that only groups
// others, suggesting the subcommand meant as cobra does for the root.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
	}
	return errors.New(msg)
}

// tripcapErrorText shows a domain error's message without its code prefix.
func tripcapErrorText(err error) string {
	var e *tripcap.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tripcap",
		Short:         "Alert-triggered packet capture for your fleet",
		Long:          "tripcap watches hosts' network metrics and, when a rule fires, captures packets on the host at fault (including the seconds before), stores the pcap, and tells someone where it is.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionText(),
	}
	root.SetVersionTemplate("tripcap {{.Version}}\n")
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.PersistentFlags().String("server", "", "server URL (default from $TRIPCAP_SERVER or the client config)")
	root.PersistentFlags().String("token", "", "bearer credential (default from $TRIPCAP_TOKEN or the client config)")
	root.PersistentFlags().String("ca-file", "", "CA certificate(s), PEM, that verify an https:// server (default: $TRIPCAP_CA_FILE, the client config's CA, the system roots; the agent: the CA its join token pinned)")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")

	captureCmd := newCaptureCmd()
	captureCmd.AddCommand(newCaptureRunCmd(), newCaptureMergeCmd())
	root.AddCommand(newServerCmd(), newAgentCmd(), newUpCmd(), newHostCmd(), captureCmd, newWatcherCmd(), newStorageCmd(),
		newMetricsCmd(), newRuleCmd(), newAlertCmd(), newActionGroupCmd(), newSilenceCmd(), newResponderCmd(), newFileCmd())
	root.AddCommand(newLoginCmd(), newPrincipalCmd(), newTokenCmd(), newAdminTokenCmd(), newRoleCmd())
	root.AddCommand(newAnalyzeCmd())
	root.AddCommand(newAuditCmd())
	strictArgs(root)
	return root
}

func newLogger(cmd *cobra.Command) *slog.Logger {
	level := slog.LevelInfo
	if v, _ := cmd.Flags().GetString("log-level"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// clientConfig is what `tripcap up` writes so that the CLI works at once.
type clientConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	// CA is the PEM of the CA that verifies Server (`up` writes its own).
	CA string `json:"ca,omitempty"`
}

// clientConfigPath is $TRIPCAP_CONFIG, else the user's config dir.
func clientConfigPath() (string, error) {
	if p := os.Getenv("TRIPCAP_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(dir, "tripcap", "config.json"), nil
}

func writeClientConfig(cfg clientConfig) (string, error) {
	p, err := clientConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	// A new file renamed over the old: the token is never in a file of the
	// old one's (perhaps wider) mode, nor half written.
	if err := atomicfile.Write(p, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write client config: %w", err)
	}
	return p, nil
}

// readClientConfig reads the client config and says where it is; a
// missing file is an empty config.
func readClientConfig() (clientConfig, string, error) {
	var cfg clientConfig
	p, err := clientConfigPath()
	if err != nil {
		return cfg, "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, p, nil
	}
	if err != nil {
		return cfg, p, fmt.Errorf("read client config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, p, fmt.Errorf("client config %s: %w", p, err)
	}
	return cfg, p, nil
}

// client builds the API client from flags, environment, then the config file.
func client(cmd *cobra.Command) (*tchttp.Client, error) {
	c, _, err := connect(cmd, true)
	return c, err
}

// connect builds the API client: with the caller's credential (from flags,
// environment, then the config file), or with none (to log in), and
// returns the config file's settings read on the way.
func connect(cmd *cobra.Command, withToken bool) (*tchttp.Client, clientConfig, error) {
	server, _ := cmd.Flags().GetString("server")
	token, _ := cmd.Flags().GetString("token")
	if server == "" {
		server = os.Getenv("TRIPCAP_SERVER")
	}
	if token == "" {
		token = os.Getenv("TRIPCAP_TOKEN")
	}
	var cfg clientConfig
	// An https:// server's CA may be in the config too (clientTLS).
	if server == "" || token == "" || strings.HasPrefix(server, "https://") || !withToken {
		var err error
		if cfg, _, err = readClientConfig(); err != nil {
			return nil, cfg, err
		}
		if server == "" {
			server = cfg.Server
		}
		if token == "" {
			token = cfg.Token
		}
	}
	if server == "" {
		return nil, cfg, errors.New("no server: run `tripcap up`, log in (`tripcap login --server URL --user NAME`), or give --server / $TRIPCAP_SERVER")
	}
	if !withToken {
		token = ""
	} else if token == "" {
		return nil, cfg, errors.New("no credential: run `tripcap login`, or give --token / $TRIPCAP_TOKEN (the server writes the admin token to <data>/admin.token)")
	}
	opts, err := clientTLS(cmd, server, cfg)
	if err != nil {
		return nil, cfg, err
	}
	c, err := tchttp.NewClient(server, token, opts...)
	return c, cfg, err
}

// jsonOutput reports whether -o json was asked for.
func jsonOutput(cmd *cobra.Command) (bool, error) {
	v, _ := cmd.Flags().GetString("output")
	switch v {
	case "json":
		return true, nil
	case "", "text", "table":
		return false, nil
	}
	return false, fmt.Errorf("--output: %q is not text or json", v)
}

// render prints v as JSON with -o json, else with text.
func render(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	asJSON, err := jsonOutput(cmd)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		// An empty listing is [], not null: scripts iterate over it.
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []struct{}{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
