package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/triage"
)

func newCaptureMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge FILE... -w OUT",
		Short: "Merge capture files into one pcapng, in timestamp order",
		Long: `Merge pcap and pcapng files (a ring's files, or several hosts' captures of one
incident) into one pcapng file in timestamp order, with one interface block per
source interface: a ring's files share theirs, other files keep their own, described
by their source. Section comments (with any alert time) and interface statistics are
carried over. A file cut short is merged up to where it ends, with a warning.`,
		Example: `  tripcap capture merge web.pcapng web_00001.pcapng -w web-all.pcapng
  tripcap capture merge client.cap server.cap -w both-ends.pcapng`,
		Args:        cobra.MinimumNArgs(1),
		Annotations: map[string]string{takesWords: "true"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return tripcap.Errorf(tripcap.EINVALID, "-w: required: the merged file to write")
			}
			if _, err := jsonOutput(cmd); err != nil {
				return err
			}
			for _, a := range args {
				if same, _ := sameFile(a, out); same {
					return tripcap.Errorf(tripcap.EINVALID, "-w: %s is also an input", out)
				}
			}
			// Written beside the target and renamed, so a failed merge
			// leaves no half file under the final name.
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
			if err != nil {
				return fmt.Errorf("creating the merged file: %w", err)
			}
			defer os.Remove(tmp.Name())
			res, err := triage.Merge(cmd.Context(), args, tmp)
			if cerr := tmp.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("writing the merged file: %w", cerr)
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("writing the merged file: %w", err)
			}
			for _, f := range res.Files {
				if f.Error != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", f.Error)
				}
			}
			type result struct {
				File       string                `json:"file"`
				Packets    uint64                `json:"packets"`
				Interfaces int                   `json:"interfaces"`
				Inputs     []tripcap.SummaryFile `json:"inputs"`
			}
			r := result{File: out, Packets: res.Packets, Interfaces: res.Interfaces, Inputs: res.Files}
			return render(cmd, r, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d packets from %d files, %d interfaces\n", out, res.Packets, len(args), res.Interfaces)
			})
		},
	}
	cmd.Flags().StringVarP(&out, "write", "w", "", "the merged pcapng file")
	return cmd
}

// sameFile reports whether a and b name the same existing file.
func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
