package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/responder"
)

// Server side: the responders (alert-triggered capture functions).

// newResponders builds the control plane's responder service; its
// completion notifications go through the same SMTP server as alerts.
func newResponders(svc *controlplane.Service, log *slog.Logger, publicURL string, audit responder.Auditor, targets actiongroup.Targets, keyRate, keyBurst int) (*responder.Responders, error) {
	n, err := actiongroup.New(actiongroup.Config{SMTP: smtpFromEnv(), Logger: log, Targets: targets})
	if err != nil {
		return nil, fmt.Errorf("TRIPCAP_SMTP_*: %w", err)
	}
	deps := svc.ResponderDeps()
	deps.Audit = audit
	// Zero (and below) takes responder's defaults.
	return responder.New(deps, log, responder.Config{PublicURL: publicURL, Notifier: n,
		KeyRate: float64(keyRate), KeyBurst: keyBurst, ResponderRate: float64(2 * keyRate), ResponderBurst: 2 * keyBurst})
}

// The CLI.

func newResponderCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "responder", Short: "Responders: start a packet capture on the host an alert is about (Azure Monitor, Alertmanager, Grafana or tripcap's own alerts)"}
	cmd.AddCommand(newResponderCreateCmd(), newResponderUpdateCmd(),
		enableCmd("responder", true, setResponderEnabled), enableCmd("responder", false, setResponderEnabled),
		&cobra.Command{
			Use: "list", Short: "List responders", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				rs, err := c.ListResponders(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, rs, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tID\tENABLED\tCAPTURE\tTIME LIMIT\tCONFLICT\tNOTIFY")
					for _, r := range rs {
						fmt.Fprintf(tw, "%s\t%s\t%t\t%s\t%ds\t%s\t%s\n", r.Name, r.ID, r.IsEnabled(), r.Capture.Name, r.Capture.TimeLimitInSeconds, r.NameConflict, r.NotifyActionGroup)
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "show RESPONDER", Short: "Show a responder (by name or id)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				r, err := c.GetResponder(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return render(cmd, r, func(w io.Writer) {
					b, _ := json.MarshalIndent(r, "", "  ")
					fmt.Fprintf(w, "%s\n", b)
					fmt.Fprintf(w, "trigger URL: %s/api/functions/%s?code=<key>\n", serverURL(cmd), r.Name)
				})
			},
		},
		&cobra.Command{
			Use: "delete RESPONDER", Short: "Delete a responder and its keys (its runs stay)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteResponder(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "responder %s deleted\n", args[0]) })
			},
		},
		newResponderRunsCmd(), newResponderKeysCmd())
	return cmd
}

// serverURL is the server the CLI talks to, for printing trigger URLs.
func serverURL(cmd *cobra.Command) string {
	if c, err := client(cmd); err == nil {
		return strings.TrimRight(c.BaseURL(), "/")
	}
	return "<server>"
}

func newResponderCreateCmd() *cobra.Command {
	var f responderFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a responder (defaults as the seed: capture PSAzureFunction, 30 s, replace on name conflict, limit 100)",
		Long: "Create a responder. Alerts reach it from an action group's responder receiver, or posted to\n" +
			"POST /api/functions/NAME with a key (tripcap responder keys create NAME). Filters may use\n" +
			"${host.address} and ${host.name}, filled from the alert's host. -f FILE takes the whole\n" +
			"responder as JSON instead of flags.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r tripcap.Responder
			if f.file != "" {
				if err := readJSONFile(cmd, f.file, &r); err != nil {
					return err
				}
			} else if err := f.apply(cmd, &r); err != nil {
				return err
			}
			r.Name = args[0]
			c, err := client(cmd)
			if err != nil {
				return err
			}
			created, err := c.CreateResponder(cmd.Context(), &r)
			if err != nil {
				return err
			}
			return render(cmd, created, func(w io.Writer) {
				fmt.Fprintf(w, "responder %s created (id %s)\n", created.Name, created.ID)
				fmt.Fprintf(w, "create a key for inbound alerts: tripcap responder keys create %s\n", created.Name)
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&f.disabled, "disabled", false, "create disabled (runs are recorded, nothing starts)")
	return cmd
}

func newResponderRunsCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use: "runs RESPONDER", Short: "A responder's invocations, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			runs, err := c.ListResponderRuns(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			return render(cmd, runs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "RECEIVED\tRUN\tSOURCE\tFORMAT\tCONDITION\tDECISION\tHOSTS\tTOOK\tREASON / ERRORS")
				for _, r := range runs {
					var hosts []string
					for _, h := range r.Hosts {
						s := h.HostName
						if s == "" {
							s = "?"
						}
						s += ":" + h.Decision
						if h.CaptureName != "" {
							s += "(" + h.CaptureName + ")"
						}
						hosts = append(hosts, s)
					}
					took := "-"
					if r.FinishedAt != nil {
						took = r.FinishedAt.Sub(r.ReceivedAt).Round(time.Millisecond).String()
					}
					why := strings.Join(append([]string{r.Reason}, r.Errors...), " ")
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ReceivedAt.Local().Format(time.DateTime), r.ID, r.Source, r.Format,
						r.Condition, r.Decision, strings.Join(hosts, ", "), took, strings.TrimSpace(why))
				}
				tw.Flush()
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default 100)")
	return cmd
}

func newResponderKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Function keys: what inbound senders put in ?code= or x-functions-key"}
	printKey := func(cmd *cobra.Command, responder string, k *tripcap.ResponderKey) error {
		return render(cmd, k, func(w io.Writer) {
			fmt.Fprintf(w, "key %s of responder %s: %s\n", k.Name, responder, k.Secret)
			fmt.Fprintf(w, "(shown only now) trigger URL: %s/api/functions/%s?code=%s\n", serverURL(cmd), responder, k.Secret)
		})
	}
	create := &cobra.Command{
		Use: "create RESPONDER [KEY]", Short: "Create a key (default name \"default\"); its secret is shown once", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			k, err := c.CreateResponderKey(cmd.Context(), args[0], name)
			if err != nil {
				return err
			}
			return printKey(cmd, args[0], k)
		},
	}
	rotate := &cobra.Command{
		Use: "rotate RESPONDER KEY", Short: "Replace a key's secret (the old one stops working at once)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			k, err := c.RotateResponderKey(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return printKey(cmd, args[0], k)
		},
	}
	list := &cobra.Command{
		Use: "list RESPONDER", Short: "List a responder's keys (never their secrets)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			ks, err := c.ListResponderKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, ks, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tID\tCREATED")
				for _, k := range ks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Name, k.ID, k.CreatedAt.Local().Format(time.DateTime))
				}
				tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke RESPONDER KEY", Short: "Revoke a key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeResponderKey(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"revoked": args[1]}, func(w io.Writer) { fmt.Fprintf(w, "key %s of responder %s revoked\n", args[1], args[0]) })
		},
	}
	cmd.AddCommand(create, rotate, list, revoke)
	return cmd
}

// setResponderEnabled turns a responder on or off through its update path.
func setResponderEnabled(cmd *cobra.Command, ref string, enabled bool) (string, error) {
	c, err := client(cmd)
	if err != nil {
		return "", err
	}
	r, err := readChangeWrite(func() (*tripcap.Responder, error) { return c.GetResponder(cmd.Context(), ref) },
		func(cur *tripcap.Responder) (string, string, error) {
			cur.Enabled = new(enabled)
			return cur.ID, cur.ETag(), nil
		},
		func(id string, r *tripcap.Responder, etag string) (*tripcap.Responder, error) {
			return c.UpdateResponder(cmd.Context(), id, r, etag)
		})
	if err != nil {
		return "", err
	}
	return r.Name, nil
}
