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
	cmd.AddCommand(newActionGroupCreateCmd(),
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

func newActionGroupCreateCmd() *cobra.Command {
	var (
		shortName, file                         string
		webhooks, originals, emails, responders []string
		disabled                                bool
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
			if shortName != "" {
				g.GroupShortName = shortName
			}
			if disabled {
				g.Enabled = new(bool)
			}
			for _, spec := range []struct {
				flag   string
				values []string
				common bool
			}{{"webhook", webhooks, true}, {"webhook-original", originals, false}} {
				for _, v := range spec.values {
					name, uri, err := keyValue(spec.flag, v)
					if err != nil {
						return err
					}
					g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: name, ServiceURI: uri, UseCommonAlertSchema: spec.common})
				}
			}
			for _, v := range emails {
				name, addr, err := keyValue("email", v)
				if err != nil {
					return err
				}
				g.EmailReceivers = append(g.EmailReceivers, tripcap.EmailReceiver{Name: name, EmailAddress: addr, UseCommonAlertSchema: true})
			}
			for _, v := range responders {
				name, id, err := keyValue("responder", v)
				if err != nil {
					return err
				}
				g.ResponderReceivers = append(g.ResponderReceivers, tripcap.ResponderReceiver{Name: name, ResponderID: id})
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
	f := cmd.Flags()
	f.StringArrayVar(&webhooks, "webhook", nil, "webhook receiver NAME=URL, posted the common alert schema (repeatable)")
	f.StringArrayVar(&originals, "webhook-original", nil, "webhook receiver NAME=URL, posted Azure's original AzureMonitorMetricAlert schema, as the seed's function reads (repeatable)")
	f.StringArrayVar(&emails, "email", nil, "email receiver NAME=ADDRESS (repeatable; needs the server's TRIPCAP_SMTP_* settings)")
	f.StringArrayVar(&responders, "responder", nil, "responder receiver NAME=RESPONDER (a responder's name or id)")
	f.StringVar(&shortName, "short-name", "", "group short name (at most 12 characters)")
	f.StringVar(&file, "file", "", "read the group from a JSON file (Azure's actionGroups properties; '-' for standard input)")
	f.BoolVar(&disabled, "disabled", false, "create the group disabled (it delivers nothing)")
	return cmd
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
