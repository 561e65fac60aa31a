package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

func newRoleCmd() *cobra.Command {
	var names []string
	for _, r := range tripcap.RoleNames() {
		names = append(names, string(r))
	}
	cmd := &cobra.Command{Use: "role", Short: "Role assignments: a principal holds a role (" + strings.Join(names, ", ") + ") at a scope"}
	var scope string
	assign := &cobra.Command{
		Use:   "assign PRINCIPAL ROLE",
		Short: "Grant a user or service principal a role at a scope (default \"*\")",
		Long: "assign grants PRINCIPAL (a name or id) ROLE at --scope: \"*\" (everything), location:NAME, host:NAME,\n" +
			"label:KEY=VALUE, label:KEY!=VALUE, label:KEY, or a subscription, resource group or VM resource id.\n" +
			"Roles: " + strings.Join(names, ", ") + " (case, spaces and dashes do not matter: network-contributor).",
		Example: `  tripcap role assign alice reader --scope label:team=a
  tripcap role assign ci-bot "Network Contributor" --scope location:westeurope`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			a, err := c.AssignRole(cmd.Context(), args[0], roleName(args[1]), tripcap.Scope(scope))
			if err != nil {
				return err
			}
			return render(cmd, a, func(w io.Writer) {
				fmt.Fprintf(w, "%s holds %s at %s (assignment %s)\n", args[0], a.Role, a.Scope, a.ID)
			})
		},
	}
	assign.Flags().StringVar(&scope, "scope", "*", "where the role applies")
	var principal string
	list := &cobra.Command{
		Use: "list", Short: "List role assignments (--principal's; you may list your own)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListRoleAssignments(cmd.Context(), principal)
			if err != nil {
				return err
			}
			return render(cmd, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPRINCIPAL\tROLE\tSCOPE\tCREATED\tBY")
				for _, a := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, cmp.Or(a.PrincipalName, a.PrincipalID), a.Role, a.Scope, a.CreatedAt.Local().Format(time.DateTime), a.CreatedBy)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&principal, "principal", "", "only this principal's (a name or id)")
	cmd.AddCommand(assign, list, &cobra.Command{
		Use: "unassign ID", Short: "Remove a role assignment", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteRoleAssignment(cmd.Context(), args[0]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "role assignment %s removed\n", args[0]) })
		},
	})
	return cmd
}

// roleName returns the built-in role s names regardless of case, spaces
// and dashes ("network-contributor"), or s itself for the server to refuse.
func roleName(s string) tripcap.RoleName {
	norm := func(v string) string {
		return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.ToLower(v))
	}
	for _, r := range tripcap.RoleNames() {
		if norm(string(r)) == norm(s) {
			return r
		}
	}
	return tripcap.RoleName(s)
}
