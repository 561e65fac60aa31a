package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap/seal"
)

// `tripcap server rotate-master-key`: a new master key, every secret in
// the database resealed under it, the old key dropped (seal.Rotate says
// in which order, and why a cut at any step loses nothing).

func newRotateMasterKeyCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "rotate-master-key",
		Short: "Replace the master key sealing the database's secrets, resealing every one",
		Long: "Generate a new master key, reseal every secret in the database under it in one transaction, and\n" +
			"drop the old key from the key file (<data>/" + seal.FileName + " or --master-key-file). Stop the servers\n" +
			"(every replica) first and start them after: they hold the key in memory. Interrupted, it loses\n" +
			"nothing: run it again. With " + seal.EnvVar + " set (NEW,OLD), it reseals under NEW; then set the\n" +
			"variable to NEW alone. It takes the server's flags and config file.",
		Example: "  tripcap server rotate-master-key --data /var/lib/tripcap\n  tripcap server rotate-master-key --config /etc/tripcap/server.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rotateMasterKey(cmd.Context(), &o, os.Getenv(seal.EnvVar), newLogger(cmd), cmd.OutOrStdout())
		},
	}
	o.addFlags(cmd)
	addConfigFlag(cmd, defaultServerConfig)
	return cmd
}

// rotateMasterKey rotates the master key of the server o configures; env
// is seal.EnvVar's value.
func rotateMasterKey(ctx context.Context, o *serverOptions, env string, log *slog.Logger, out io.Writer) error {
	if err := o.resolve(); err != nil {
		return err
	}
	store, err := openStore(ctx, o.db)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	var n int
	reseal := func(s *seal.Sealer) error {
		store.SetSealer(s)
		n, err = store.SealSecrets(ctx, true)
		return err
	}
	log = log.With("component", "seal")
	if env != "" {
		id, err := seal.RotateEnv(env, reseal)
		if err != nil {
			return err
		}
		log.Info("master key rotated: every secret resealed", "variable", seal.EnvVar, "keyId", id, "resealed", n)
		fmt.Fprintf(out, "Resealed %d secrets under master key %s. Set %s to that key alone, and start the servers.\n", n, id, seal.EnvVar)
		return nil
	}
	id, err := seal.Rotate(o.masterKeyFile, reseal)
	if err != nil {
		return err
	}
	log.Info("master key rotated: every secret resealed, the old key dropped", "file", o.masterKeyFile, "keyId", id, "resealed", n)
	fmt.Fprintf(out, "Resealed %d secrets under the new master key %s, kept alone in %s. Back it up apart from the database, and start the servers.\n", n, id, o.masterKeyFile)
	return nil
}
