package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// Stored files on their own: they outlive their captures (deleted, or
// replaced by a responder) until deleted or past --file-retention.
func newFileCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "file", Short: "Stored capture files, also those of deleted and replaced captures"}
	cmd.AddCommand(newFileListCmd(), newFileShowCmd(), newFileDownloadCmd(), newFileDeleteCmd())
	return cmd
}

// parseFileTime reads a --since/--until value: an RFC 3339 time, or a
// duration before now (90m, 2h, P1D).
func parseFileTime(flag, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if d, err = tripcap.ParseISODuration(flag, v); err != nil {
			return "", fmt.Errorf("--%s: %q is neither an RFC 3339 time nor a duration (2h, P1D)", flag, v)
		}
	}
	if d < 0 {
		return "", fmt.Errorf("--%s: %q is negative", flag, v)
	}
	return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
}

// parseWindow reads --since and --until (see parseFileTime).
func parseWindow(since, until string) (string, string, error) {
	now := time.Now()
	s, err := parseFileTime("since", since, now)
	if err != nil {
		return "", "", err
	}
	u, err := parseFileTime("until", until, now)
	return s, u, err
}

func newFileListCmd() *cobra.Command {
	var q tchttp.FileQuery
	var since, until string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List stored files (by host, time, alert, capture name)",
		Long: "list shows the stored files of captures, those deleted or replaced included. --since and --until take an RFC 3339 time " +
			"or a duration before now (2h, P1D) and bound the files' creation time.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if q.Since, q.Until, err = parseWindow(since, until); err != nil {
				return err
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			files, err := c.ListFiles(cmd.Context(), q)
			if err != nil {
				return err
			}
			return render(cmd, files, func(w io.Writer) { printFileList(w, files) })
		},
	}
	cmd.Flags().StringVar(&q.Host, "host", "", "only this host's files (name or id)")
	cmd.Flags().StringVar(&since, "since", "", "files created at or after (RFC 3339, or a duration before now)")
	cmd.Flags().StringVar(&until, "until", "", "files created before (RFC 3339, or a duration before now)")
	cmd.Flags().StringVar(&q.Alert, "alert", "", "files of captures a responder made for this alert id")
	cmd.Flags().StringVar(&q.Capture, "capture", "", "files of captures of this name")
	cmd.Flags().BoolVar(&q.Deleted, "deleted", false, "also list files whose stored copy was deleted")
	return cmd
}

// printFileList prints files as a table. STORED says where the file is:
// yes, deleted (when), on host, or pending (not uploaded yet).
func printFileList(w io.Writer, files []*tripcap.StoredFile) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tCAPTURE\tNAME\tSIZE\tCREATED\tSTORED")
	for _, f := range files {
		capture := f.CaptureName
		if f.CaptureDeleted {
			capture += " (deleted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.ID, cmp.Or(f.HostName, f.HostID), capture, f.Name, f.Size,
			f.CreatedAt.Local().Format(time.DateTime), storedState(f))
	}
	tw.Flush()
}

func storedState(f *tripcap.StoredFile) string {
	switch {
	case f.DeletedAt != nil:
		return "deleted " + f.DeletedAt.Local().Format(time.DateTime)
	case f.Stored:
		return "yes"
	case f.StorageID == "":
		return "on host"
	}
	return "pending"
}

func newFileShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show ID", Short: "Show a stored file's record", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			f, err := c.GetFile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, f, func(w io.Writer) { printFileList(w, []*tripcap.StoredFile{f}) })
		},
	}
}

func newFileDownloadCmd() *cobra.Command {
	return newDownloadCmd("download ID -w FILE", "Download a stored file and verify its checksum",
		"download writes a stored file to -w FILE ('-' for standard output), resuming a partial FILE, and checks its SHA-256, as capture download does.",
		func(_ *cobra.Command, c *tchttp.Client, ref string) fetch {
			return func(ctx context.Context, offset int64) (*tchttp.Download, error) {
				return c.DownloadStoredFile(ctx, ref, offset)
			}
		})
}

func newFileDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use: "delete ID", Short: "Delete a stored file's copy in storage (its record stays, marked deleted)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client(cmd)
			if err != nil {
				return err
			}
			f, err := c.DeleteFile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(cmd, f, func(w io.Writer) { fmt.Fprintf(w, "file %s (%s of capture %s) deleted\n", f.ID, f.Name, f.CaptureName) })
		},
	}
}

// retentionValue is --file-retention: a Go duration (720h) or an ISO 8601
// one (P90D); 0 keeps files until a user deletes them.
type retentionValue struct{ d *time.Duration }

func (r retentionValue) String() string {
	if r.d == nil {
		return "0"
	}
	return r.d.String()
}

func (r retentionValue) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		if d, err = tripcap.ParseISODuration("file-retention", v); err != nil {
			return fmt.Errorf("%q is neither a duration (720h) nor an ISO 8601 one (P90D)", v)
		}
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", v)
	}
	*r.d = d
	return nil
}

func (r retentionValue) Type() string { return "duration" }
