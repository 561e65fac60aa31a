package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

func newHostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Hosts running the tripcap agent"}
	cmd.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List hosts", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				hosts, err := c.ListHosts(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, hosts, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tSTATE\tLOCATION\tADDRESSES\tAGENT\tLAST SEEN")
					for _, h := range hosts {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.State, h.Location, addressSummary(hostAddresses(h)), h.Inventory.AgentVersion, ago(h.LastSeen))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "show HOST", Short: "Show a host (by name, id or VM resource id)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				h, err := c.GetHost(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return render(cmd, h, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nResource ID:\t%s\nState:\t%s (last seen %s)\nLocation:\t%s\n", h.Name, h.ID, h.ResourceID(), h.State, ago(h.LastSeen), h.Location)
					fmt.Fprintf(tw, "Hostname:\t%s\nOS:\t%s %s\nAgent:\t%s\n", h.Inventory.Hostname, h.Inventory.OS, h.Inventory.Kernel, h.Inventory.AgentVersion)
					keys := make([]string, 0, len(h.Labels))
					for k := range h.Labels {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						fmt.Fprintf(tw, "Label:\t%s=%s\n", k, h.Labels[k])
					}
					for _, i := range h.Inventory.Interfaces {
						state := "down"
						if i.Up {
							state = "up"
						}
						fmt.Fprintf(tw, "Interface:\t%s (%s) %s\n", i.Name, state, strings.Join(i.Addresses, " "))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "delete HOST", Short: "Forget a host and revoke its agent's credentials", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteHost(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "host %s deleted\n", args[0]) })
			},
		},
		newApproveCmd(),
		newPendingCmd(),
		newJoinTokenCmd(),
	)
	return cmd
}

// newPendingCmd lists the enrollments awaiting approval; its delete
// subcommand refuses one.
func newPendingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "pending", Short: "List enrollments under enrolled hosts' names awaiting approval (delete ID refuses one)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			ps, err := c.ListPendingEnrollments(cmd.Context())
			if err != nil {
				return err
			}
			return render(cmd, ps, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tHOST\tFROM\tHOSTNAME\tJOIN TOKEN\tASKED\tAPPROVED")
				for _, p := range ps {
					approved := "no"
					if p.ApprovedAt != nil {
						approved = "by " + p.ApprovedBy
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.HostName, p.Remote, p.Hostname, p.JoinTokenID, ago(p.CreatedAt), approved)
				}
				tw.Flush()
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use: "delete ID", Short: "Refuse a pending enrollment: forget it (the agent asks anew if it tries again)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeletePendingEnrollment(cmd.Context(), args[0]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "pending enrollment %s deleted\n", args[0]) })
		},
	})
	return cmd
}

// newApproveCmd approves an agent's enrollment under an enrolled host's
// name, which revokes the host's current agent when the new one enrolls.
func newApproveCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "approve HOST",
		Short: "Approve an agent's pending enrollment under an enrolled host's name (revokes the host's agent)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			p, err := c.ApproveEnrollment(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			return render(cmd, p, func(w io.Writer) {
				fmt.Fprintf(w, "enrollment %s of host %s from %s approved: the agent there enrolls at its next try, and the host's current agent is revoked\n", p.ID, p.HostName, p.Remote)
			})
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "which pending enrollment, when several wait (see `tripcap host pending`)")
	return cmd
}

func hostAddresses(h *tripcap.Host) []string {
	var out []string
	for _, i := range h.Inventory.Interfaces {
		if !i.Loopback {
			out = append(out, i.Addresses...)
		}
	}
	return out
}

// addressSummary keeps a listing's ADDRESSES column narrow: the first two
// addresses and how many more (host show lists them all).
func addressSummary(addrs []string) string {
	const shown = 2
	if len(addrs) <= shown {
		return strings.Join(addrs, ",")
	}
	return fmt.Sprintf("%s +%d more", strings.Join(addrs[:shown], ","), len(addrs)-shown)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func newJoinTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "join-token", Short: "Join tokens that let agents enroll"}
	var ttl time.Duration
	var uses int
	var host string
	create := &cobra.Command{
		Use: "create", Short: "Create a join token (shown once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			t, err := c.CreateHostJoinToken(cmd.Context(), host, ttl, uses)
			if err != nil {
				return err
			}
			return render(cmd, t, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n", t.Token)
				if t.HostName != "" {
					fmt.Fprintf(w, "# bound to host %s: it enrolls that name only, re-enrolling it (and revoking its current agent) if it is enrolled\n", t.HostName)
				}
				fmt.Fprintf(w, "# valid until %s for %d enrollment(s): tripcap agent --server %s --join-token %s\n", t.ExpiresAt.Local().Format(time.RFC3339), t.UsesLeft, c.BaseURL(), t.Token)
			})
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	create.Flags().IntVar(&uses, "uses", 1, "how many agents may enroll with it")
	create.Flags().StringVar(&host, "host", "", "bind the token to this host name: it enrolls that name only, and re-enrolls it when it is enrolled already (an agent that lost its state), revoking the old agent; such a token is for one use (--uses 1) within 24h (--ttl)")
	list := &cobra.Command{
		Use: "list", Short: "List usable join tokens", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			ts, err := c.ListJoinTokens(cmd.Context())
			if err != nil {
				return err
			}
			return render(cmd, ts, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSES LEFT\tEXPIRES\tHOST")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.ID, t.UsesLeft, t.ExpiresAt.Local().Format(time.RFC3339), t.HostName)
				}
				tw.Flush()
			})
		},
	}
	del := &cobra.Command{
		Use: "delete ID", Short: "Revoke a join token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteJoinToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "join token %s revoked\n", args[0]) })
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func newWatcherCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "watcher", Short: "Network watchers: one per location, scoping captures"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List network watchers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			ws, err := c.ListWatchers(cmd.Context())
			if err != nil {
				return err
			}
			return render(cmd, ws, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tLOCATION\tMAX CAPTURES\tSUBSCRIPTION\tRESOURCE GROUP\tID")
				for _, x := range ws {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", x.Name, x.Location, x.MaxCaptures, x.SubscriptionID, x.ResourceGroup, x.ID)
				}
				tw.Flush()
			})
		},
	})
	var limit int
	set := &cobra.Command{
		Use: "set-limit WATCHER", Short: "Change a watcher's parallel-capture limit (WATCHER: its name, or its id when subscriptions share the name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			w, err := c.SetWatcherLimit(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			return render(cmd, w, func(out io.Writer) { fmt.Fprintf(out, "%s: at most %d parallel captures\n", w.Name, w.MaxCaptures) })
		},
	}
	set.Flags().IntVar(&limit, "max-captures", tripcap.DefaultParallelCapturesPerWatcher, "the limit")
	cmd.AddCommand(set)
	return cmd
}
