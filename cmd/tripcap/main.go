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
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", tripcapErrorText(err))
		os.Exit(1)
	}
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
		Version:       tripcap.Version,
	}
	root.PersistentFlags().StringP("output", "o", "text", "output format: text or json")
	root.PersistentFlags().String("server", "", "server URL (default from $TRIPCAP_SERVER or the client config)")
	root.PersistentFlags().String("token", "", "bearer credential (default from $TRIPCAP_TOKEN or the client config)")
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error")

	captureCmd := newCaptureCmd()
	captureCmd.AddCommand(newCaptureRunCmd(), newCaptureMergeCmd())
	root.AddCommand(newServerCmd(), newAgentCmd(), newUpCmd(), newHostCmd(), captureCmd, newWatcherCmd(), newStorageCmd(),
		newMetricsCmd(), newRuleCmd(), newAlertCmd(), newActionGroupCmd(), newResponderCmd())
	root.AddCommand(newAnalyzeCmd())
	return root
}

func newLogger(cmd *cobra.Command) *slog.Logger {
	level := slog.LevelInfo
	if v, _ := cmd.Flags().GetString("log-level"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// clientConfig is what `tripcap up` writes so that the CLI works at once.
type clientConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
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
	// Write then chmod: an existing file keeps its old mode on open.
	if err := os.WriteFile(p, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write client config: %w", err)
	}
	return p, os.Chmod(p, 0o600)
}

// client builds the API client from flags, environment, then the config file.
func client(cmd *cobra.Command) (*tchttp.Client, error) {
	server, _ := cmd.Flags().GetString("server")
	token, _ := cmd.Flags().GetString("token")
	if server == "" {
		server = os.Getenv("TRIPCAP_SERVER")
	}
	if token == "" {
		token = os.Getenv("TRIPCAP_TOKEN")
	}
	if server == "" || token == "" {
		p, err := clientConfigPath()
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read client config: %w", err)
		}
		var cfg clientConfig
		if err == nil {
			if err := json.Unmarshal(b, &cfg); err != nil {
				return nil, fmt.Errorf("client config %s: %w", p, err)
			}
		}
		if server == "" {
			server = cfg.Server
		}
		if token == "" {
			token = cfg.Token
		}
	}
	if server == "" {
		return nil, errors.New("no server: run `tripcap up`, or give --server / $TRIPCAP_SERVER")
	}
	if token == "" {
		return nil, errors.New("no credential: give --token / $TRIPCAP_TOKEN (the server writes the admin token to <data>/admin.token)")
	}
	return tchttp.NewClient(server, token)
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
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
