package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/agent"
	"github.com/tripcap/tripcap/tlscert"
)

// The up role: a control plane and a local agent in one process, for a first run.

func newUpCmd() *cobra.Command {
	var so serverOptions
	var ao agentOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a server and a local agent in one process, with embedded defaults",
		Long:  "up runs the control plane on SQLite with file storage under --data, enrolls a local agent, and writes a client config so the CLI works at once.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd)
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cp, err := openControlPlane(ctx, &so, log)
			if err != nil {
				return err
			}
			defer cp.Close()
			token := cp.adminToken
			if token == "" {
				b, err := os.ReadFile(so.adminTokenFile)
				if err != nil {
					return fmt.Errorf("this data directory's admin token is not in %s: %w", so.adminTokenFile, err)
				}
				token = strings.TrimSpace(string(b))
			}
			cc := clientConfig{Server: cp.url, Token: token}
			if cp.tls != nil {
				cc.CA = string(tlscert.EncodePEM(cp.tls.Anchor()))
			}
			cfgPath, err := writeClientConfig(cc)
			if err != nil {
				return err
			}
			adminCtx := tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{ID: "up", Name: "tripcap up", Kind: tripcap.PrincipalSystem, Assignments: tripcap.OwnerEverywhere()})
			jt, err := cp.svc.CreateJoinToken(adminCtx, 10*time.Minute, 1)
			if err != nil {
				return err
			}
			ao.server, ao.joinToken = cp.url, jt.Token
			ao.stateDir = filepath.Join(so.data, "agent")
			ao.captureDir = filepath.Join(so.data, "captures")
			self := invokedAs()
			fmt.Fprintf(cmd.OutOrStdout(), "tripcap is up at %s\nclient config: %s\ntry: %s host list\n     %s capture create first --host %s --time-limit 10s --wait\nconsole: %s%s (signs you in once, within %s)\n",
				cp.url, cfgPath, self, self, hostnameOr(ao.name), cp.url, cp.console.SignInLink(token, signInLinkTTL), signInLinkTTL)
			if !agent.CanCapture() {
				log.Warn("capturing needs root or CAP_NET_RAW: the local agent's captures will fail with CaptureFailed until tripcap runs with it")
			}
			if so.arm {
				fmt.Fprint(cmd.OutOrStdout(), cp.armLines(so.tenantID != ""))
			}
			// The agent stops first, and the control plane after it, so
			// the agent's last reports and uploads reach a server still
			// serving; a control plane that fails stops the agent.
			agentCtx, stopAgent := context.WithCancel(ctx)
			defer stopAgent()
			serverCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
			defer stopServer()
			var g errgroup.Group
			g.Go(func() error {
				defer stopServer()
				return named("local agent", ao.runAgent(agentCtx, log, cp.http.Registry()))
			})
			g.Go(func() error { defer stopAgent(); return cp.Run(serverCtx) })
			return errors.Join(g.Wait(), cp.Close())
		},
	}
	so.addFlags(cmd)
	ao.addFlags(cmd, false)
	addConfigFlag(cmd, "")
	return cmd
}

// armLines are what an Azure client needs of the ARM surface: its
// endpoint, the tenant to sign in to and the hosts' subscription. A tenant
// not pinned follows --public-url, else the listen address, so it says so.
func (cp *controlPlane) armLines(pinned bool) string {
	tenant := cp.tenantID
	if !pinned {
		tenant += " (derived from the URL: pin it with --tenant-id for a lasting setup)"
	}
	return fmt.Sprintf("Azure Resource Manager API: %s/subscriptions/… (docs/azure.md)\nAzure tenant id: %s\nAzure subscription id: %s\n",
		cp.url, tenant, cp.svc.Config().SubscriptionID)
}

// signInLinkTTL is how long the sign-in link `up` prints works (once).
const signInLinkTTL = 15 * time.Minute

func hostnameOr(name string) string {
	if name != "" {
		return name
	}
	h, _ := os.Hostname()
	return h
}

// absPaths makes each flag's path absolute, naming the flag on failure.
func absPaths(paths map[string]*string) error {
	for flag, p := range paths {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, *p, err)
		}
		*p = abs
	}
	return nil
}

// invokedAs is how the user can run this binary again: "tripcap" when that
// is what PATH finds, "go run ./cmd/tripcap" under go run (the binary lives
// in a temporary build directory), else the path it was started by.
func invokedAs() string {
	exe, err := os.Executable()
	if err != nil {
		return "tripcap"
	}
	if onPath, err := exec.LookPath("tripcap"); err == nil {
		if a, b := resolved(onPath), resolved(exe); a == b {
			return "tripcap"
		}
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/tripcap"
	}
	return os.Args[0]
}

func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
