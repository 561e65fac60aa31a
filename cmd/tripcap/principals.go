package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

func newPrincipalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "principal", Short: "Users and service principals: who may be granted roles (tripcap role) and hold tokens"}
	var passwordFile string
	createUser := &cobra.Command{
		Use: "create-user NAME", Short: "Create a user; the password (12 characters at least) is asked for, or read from stdin or --password-file",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, passwordFile, fmt.Sprintf("Password for the new user %s: ", args[0]))
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), args[0], pw)
			if err != nil {
				return err
			}
			return render(cmd, u, func(w io.Writer) {
				fmt.Fprintf(w, "user %s created (id %s); grant it roles with tripcap role assign\n", u.Name, u.ID)
			})
		},
	}
	createUser.Flags().StringVar(&passwordFile, "password-file", "", "read the password from the first line of this file")
	createService := &cobra.Command{
		Use: "create-service NAME", Short: "Create a service principal; its client secret is shown only now",
		Long: "create-service creates a service principal for automation. It gets a JWT from POST /oauth2/token\n" +
			"(grant_type=client_credentials) with the client id and secret printed here, which the server keeps only as a hash.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			sp, err := c.CreateServicePrincipal(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, sp, func(w io.Writer) {
				fmt.Fprintf(w, "service principal %s created\nclient id:     %s\nclient secret: %s\n(the secret is shown only now)\n", sp.Name, sp.ClientID, sp.ClientSecret)
			})
		},
	}
	var kind string
	list := &cobra.Command{
		Use: "list", Short: "List users and service principals", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListPrincipals(cmd.Context(), tripcap.PrincipalKind(kind))
			if err != nil {
				return err
			}
			return render(cmd, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tKIND\tNAME\tCREATED\tBY")
				for _, p := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Kind, p.Name, p.CreatedAt.Local().Format(time.DateTime), p.CreatedBy)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&kind, "kind", "", "only user or servicePrincipal")
	cmd.AddCommand(createUser, createService, list, &cobra.Command{
		Use: "delete NAME|ID", Short: "Delete a user or service principal with its tokens and role assignments", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeletePrincipal(cmd.Context(), args[0]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "principal %s deleted\n", args[0]) })
		},
	})
	return cmd
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Personal API tokens: expiring, revocable bearer tokens of a user or service principal"}
	var principal, name string
	var expires time.Duration
	create := &cobra.Command{
		Use: "create", Short: "Create a personal API token (yours, or --principal's with access/write); shown only now",
		Example: `  tripcap token create --name ci --expires 720h
  tripcap token create --principal alice --expires P30D`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expires <= 0 {
				return errors.New("--expires: required, at most a year (8760h, P365D)")
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), principal, name, time.Now().Add(expires))
			if err != nil {
				return err
			}
			return render(cmd, t, func(w io.Writer) {
				fmt.Fprintf(w, "token %s (%s) valid until %s:\n%s\n(shown only now)\n", t.ID, t.Name, t.ExpiresAt.Local().Format(time.DateTime), t.Token)
			})
		},
	}
	create.Flags().StringVar(&principal, "principal", "", "whose token: a user or service principal's name or id (default yours)")
	create.Flags().StringVar(&name, "name", "", "what the token is for (default personal)")
	create.Flags().Var(retentionValue{&expires}, "expires", "how long the token lives: 720h, P30D (required; at most a year)")
	var listPrincipal string
	list := &cobra.Command{
		Use: "list", Short: "List API tokens (yours, or --principal's), without their secrets", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			list, err := c.ListTokens(cmd.Context(), listPrincipal)
			if err != nil {
				return err
			}
			return render(cmd, list, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tEXPIRES\tCREATED\tBY")
				for _, t := range list {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.ExpiresAt.Local().Format(time.DateTime), t.CreatedAt.Local().Format(time.DateTime), t.CreatedBy)
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&listPrincipal, "principal", "", "whose tokens: a name or id (default yours)")
	cmd.AddCommand(create, list, &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			return render(cmd, map[string]string{"revoked": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "token %s revoked\n", args[0]) })
		},
	})
	return cmd
}

func newAdminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin-token", Short: "The bootstrap admin token: rotate or revoke it"}
	cmd.AddCommand(&cobra.Command{
		Use: "rotate", Short: "Issue a new admin token (written to the server's token file) and revoke the old one",
		Long: "rotate makes the server write a new admin token to its token file (mode 0600) and revoke the old one at\n" +
			"once. The client config is updated when it held the old token. Replicas that read a copy of the file need\n" +
			"the new one before they restart: a revoked token in a token file stops the server.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			secret, err := c.RotateAdminToken(cmd.Context())
			if err != nil {
				return err
			}
			updated, err := replaceConfigToken(cmd, c.BaseURL(), secret)
			if err != nil {
				return err
			}
			out := map[string]any{"token": secret, "clientConfigUpdated": updated}
			return render(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "new admin token (the old one is revoked):\n%s\n", secret)
				if updated != "" {
					fmt.Fprintf(w, "the client config %s holds it\n", updated)
				}
			})
		},
	}, &cobra.Command{
		Use: "revoke", Short: "Revoke the admin token for good (refused while no user or service principal holds Owner at \"*\")",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeAdminToken(cmd.Context()); err != nil {
				return err
			}
			return render(cmd, map[string]bool{"revoked": true}, func(w io.Writer) {
				fmt.Fprintln(w, "admin token revoked; an Owner can issue a new one with tripcap admin-token rotate")
			})
		},
	})
	return cmd
}

// replaceConfigToken puts a rotated admin token in the client config when
// that held the token this command used, and returns the config's path
// ("" when it was left alone).
func replaceConfigToken(cmd *cobra.Command, server, secret string) (string, error) {
	used, _ := cmd.Flags().GetString("token")
	if used == "" {
		used = os.Getenv("TRIPCAP_TOKEN")
	}
	cfg, path, err := readClientConfig()
	if err != nil || cfg.Token == "" || (used != "" && used != cfg.Token) ||
		!strings.HasPrefix(cfg.Token, tripcap.SecretPrefixAdmin) || strings.TrimRight(cfg.Server, "/") != strings.TrimRight(server, "/") {
		return "", err
	}
	cfg.Token = secret
	if _, err := writeClientConfig(cfg); err != nil {
		return "", err
	}
	return path, nil
}
