package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Storage accounts that capture files go to"}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "add NAME URL",
			Short: "Add a storage account: file://DIR, s3://BUCKET/PREFIX?endpoint=…&region=…, azblob://ACCOUNT/CONTAINER?endpoint=…",
			Long: `add checks the account (it opens it, so wrong credentials fail now) and records it for every server replica.
Credentials are the server's: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or MINIO_*) for S3,
AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY for Azure Blob. Agents never get them: they upload
with short-lived presigned URLs.`,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				a, err := c.AddStorageAccount(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				return render(cmd, a, func(w io.Writer) { fmt.Fprintf(w, "storage account %s added: %s\n", a.Name, a.URL) })
			},
		},
		&cobra.Command{
			Use: "list", Short: "List storage accounts", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				as, err := c.ListStorageAccounts(cmd.Context())
				if err != nil {
					return err
				}
				return render(cmd, as, func(w io.Writer) {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tURL\tADDED")
					for _, a := range as {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.URL, a.CreatedAt.Local().Format(time.DateTime))
					}
					tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use: "delete NAME", Short: "Forget an added storage account (its files stay)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := client(cmd)
				if err != nil {
					return err
				}
				if err := c.DeleteStorageAccount(cmd.Context(), args[0]); err != nil {
					return err
				}
				return render(cmd, map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "storage account %s deleted\n", args[0]) })
			},
		},
	)
	return cmd
}
