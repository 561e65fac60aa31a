package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

func newActionGroupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "action-group", Short: "Action groups: where alerts are delivered (webhooks, email)"}
	cmd.AddCommand(newActionGroupCreateCmd(), newActionGroupUpdateCmd(),
		enableCmd("action group", true, setGroupEnabled), enableCmd("action group", false, setGroupEnabled),
		&cobra.Command{
			Use: "list", Short: "List action groups", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				gs, err := c.ListActionGroups(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, gs, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tID\tENABLED\tRECEIVERS")
					for _, g := range gs {
						fmt.Fprintf(tw, "%s\t%s\t%t\t%s\n", g.Name, g.ID, g.IsEnabled(), strings.Join(receivers(g), ", "))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "show GROUP", Short: "Show an action group (by name or id)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				g, err := c.GetActionGroup(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return render(cmd, g, func(w io.Writer) { printGroup(w, g) })
			},
		},
		&cobra.Command{
			Use: "delete GROUP", Short: "Delete an action group no rule uses", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteActionGroup(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "action group %s deleted\n", args[0]) })
			},
		})
	return cmd
}

// groupFlags are the flags `action-group create` and `action-group update`
// share; apply writes into a group only the flags given. A receiver flag
// replaces the group's receivers of its kind (--webhook and
// --webhook-original together replace the webhooks).
type groupFlags struct {
	shortName                               string
	webhooks, originals, emails, responders []string
	disabled                                bool
}

func (f *groupFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.webhooks, "webhook", nil, "webhook receiver NAME=URL, posted the common alert schema (repeatable)")
	fl.StringArrayVar(&f.originals, "webhook-original", nil, "webhook receiver NAME=URL, posted Azure's original AzureMonitorMetricAlert schema, as the seed's function reads (repeatable)")
	fl.StringArrayVar(&f.emails, "email", nil, "email receiver NAME=ADDRESS (repeatable; needs the server's TRIPCAP_SMTP_* settings)")
	fl.StringArrayVar(&f.responders, "responder", nil, "responder receiver NAME=RESPONDER (a responder's name or id)")
	fl.StringVar(&f.shortName, "short-name", "", "group short name (at most 12 characters)")
}

func (f *groupFlags) apply(cmd *cobra.Command, g *tripcap.ActionGroup) error {
	set := cmd.Flags().Changed
	if set("short-name") {
		g.GroupShortName = f.shortName
	}
	if set("disabled") {
		g.Enabled = new(!f.disabled)
	}
	if set("webhook") || set("webhook-original") {
		g.WebhookReceivers = nil
		for _, spec := range []struct {
			flag   string
			values []string
			common bool
		}{{"webhook", f.webhooks, true}, {"webhook-original", f.originals, false}} {
			for _, v := range spec.values {
				name, uri, err := keyValue(spec.flag, v)
				if err != nil {
					return err
				}
				g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: name, ServiceURI: uri, UseCommonAlertSchema: spec.common})
			}
		}
	}
	if set("email") {
		g.EmailReceivers = nil
		for _, v := range f.emails {
			name, addr, err := keyValue("email", v)
			if err != nil {
				return err
			}
			g.EmailReceivers = append(g.EmailReceivers, tripcap.EmailReceiver{Name: name, EmailAddress: addr, UseCommonAlertSchema: true})
		}
	}
	if set("responder") {
		g.ResponderReceivers = nil
		for _, v := range f.responders {
			name, id, err := keyValue("responder", v)
			if err != nil {
				return err
			}
			g.ResponderReceivers = append(g.ResponderReceivers, tripcap.ResponderReceiver{Name: name, ResponderID: id})
		}
	}
	return nil
}

func newActionGroupCreateCmd() *cobra.Command {
	var (
		f    groupFlags
		file string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an action group; its webhook signing secret is shown once",
		Example: `  tripcap action-group create ops --webhook fn=https://fn.example.com/api/alert --email oncall=oncall@example.com
  tripcap action-group create legacy --webhook-original seedfn=https://fn.example.com/api/alert?code=…`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g := &tripcap.ActionGroup{}
			if file != "" {
				if err := readJSONFile(cmd, file, g); err != nil {
					return err
				}
			}
			g.Name = args[0]
			if err := f.apply(cmd, g); err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			created, err := c.CreateActionGroup(cmd.Context(), g)
			if err != nil {
				return err
			}
			return render(cmd, created, func(w io.Writer) {
				printGroup(w, created)
				fmt.Fprintf(w, "\nSigning secret: %s\nIt is shown only now. Receivers verify X-Tripcap-Signature with it (see docs/alerting.md).\n", created.SigningSecret)
			})
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "read the group from a JSON file (Azure's actionGroups properties; '-' for standard input)")
	fl.BoolVar(&f.disabled, "disabled", false, "create the group disabled (it delivers nothing)")
	return cmd
}

func newActionGroupUpdateCmd() *cobra.Command {
	var (
		f            groupFlags
		file, rename string
	)
	cmd := &cobra.Command{
		Use:   "update GROUP",
		Short: "Change an action group: only the flags given (its id and signing secret stay)",
		Long: "Change an action group (by name or id). Only the flags given change; a receiver flag replaces the\n" +
			"group's receivers of its kind. --file replaces all its settings with the JSON in FILE instead. If someone\n" +
			"else changes the group in between, the change is made again on their version.",
		Example: `  tripcap action-group update ops --webhook fn=https://fn2.example.com/api/alert`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var fromFile tripcap.ActionGroup
			if file != "" {
				if err := readJSONFile(cmd, file, &fromFile); err != nil {
					return err
				}
			}
			updated, err := updateGroup(cmd, args[0], func(g *tripcap.ActionGroup) error {
				if file != "" {
					name := g.Name
					*g = fromFile
					if g.Name == "" {
						g.Name = name
					}
				} else if err := f.apply(cmd, g); err != nil {
					return err
				}
				if rename != "" {
					g.Name = rename
				}
				return nil
			})
			if err != nil {
				return err
			}
			return render(cmd, updated, func(w io.Writer) { printGroup(w, updated) })
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&file, "file", "", "replace the group's settings with a JSON file (Azure's actionGroups properties; '-' for standard input)")
	fl.StringVar(&rename, "rename", "", "a new name")
	fl.BoolVar(&f.disabled, "disabled", false, "disable it (--disabled=false enables)")
	return cmd
}

// updateGroup reads a group, changes it and writes it If-Match the version read.
func updateGroup(cmd *cobra.Command, ref string, change func(g *tripcap.ActionGroup) error) (*tripcap.ActionGroup, error) {
	c, err := client(cmd)
	if err != nil {
		return nil, err
	}
	return readChangeWrite(func() (*tripcap.ActionGroup, error) { return c.GetActionGroup(cmd.Context(), ref) },
		func(cur *tripcap.ActionGroup) (string, string, error) { return cur.ID, cur.ETag(), change(cur) },
		func(id string, g *tripcap.ActionGroup, etag string) (*tripcap.ActionGroup, error) {
			return c.UpdateActionGroup(cmd.Context(), id, g, etag)
		})
}

func setGroupEnabled(cmd *cobra.Command, ref string, enabled bool) (string, error) {
	g, err := updateGroup(cmd, ref, func(g *tripcap.ActionGroup) error { g.Enabled = new(enabled); return nil })
	if err != nil {
		return "", err
	}
	return g.Name, nil
}

func receivers(g *tripcap.ActionGroup) []string {
	var out []string
	for _, r := range g.WebhookReceivers {
		schema := "common"
		if !r.UseCommonAlertSchema {
			schema = "original"
		}
		out = append(out, fmt.Sprintf("webhook %s (%s)", r.Name, schema))
	}
	for _, r := range g.EmailReceivers {
		out = append(out, "email "+r.Name)
	}
	for _, r := range g.ResponderReceivers {
		out = append(out, "responder "+r.Name)
	}
	return out
}

func printGroup(w io.Writer, g *tripcap.ActionGroup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\nID:\t%s\nEnabled:\t%t\n", g.Name, g.ID, g.IsEnabled())
	for _, r := range g.WebhookReceivers {
		schema := "common alert schema"
		if !r.UseCommonAlertSchema {
			schema = "AzureMonitorMetricAlert schema"
		}
		fmt.Fprintf(tw, "Webhook %s:\t%s (%s)\n", r.Name, r.ServiceURI, schema)
	}
	for _, r := range g.EmailReceivers {
		fmt.Fprintf(tw, "Email %s:\t%s\n", r.Name, r.EmailAddress)
	}
	for _, r := range g.ResponderReceivers {
		fmt.Fprintf(tw, "Responder %s:\t%s\n", r.Name, r.ResponderID)
	}
	tw.Flush()
}
