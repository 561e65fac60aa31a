package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tripcap/tripcap/tlscert"
)

func newLoginCmd() *cobra.Command {
	var user, passwordFile string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in as a user: the token (valid 12 h) is kept in the client config",
		Long: "login asks for the user's password (without echo on a terminal; the first line of stdin otherwise,\n" +
			"or of --password-file), exchanges it for a token valid for 12 hours, and stores the server and the token\n" +
			"in the client config ($TRIPCAP_CONFIG, else ~/.config/tripcap/config.json), so that later commands use them.",
		Example: `  tripcap login --server https://tripcap.example:8080 --user alice
  tripcap login --user alice --password-file ~/.tripcap-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user: required")
			}
			c, cfg, err := connect(cmd, false)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd, passwordFile, fmt.Sprintf("Password for %s: ", user))
			if err != nil {
				return err
			}
			tok, err := c.Login(cmd.Context(), user, pw)
			if err != nil {
				return err
			}
			saved := clientConfig{Server: c.BaseURL(), Token: tok.Token}
			if caFile := caFileSetting(cmd); caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				if _, err := tlscert.PoolFromPEM(pem, caFile); err != nil {
					return err
				}
				saved.CA = string(pem)
			} else if strings.TrimRight(cfg.Server, "/") == strings.TrimRight(saved.Server, "/") {
				saved.CA = cfg.CA
			}
			path, err := writeClientConfig(saved)
			if err != nil {
				return err
			}
			tok.Token = "" // kept in the config, not printed
			out := struct {
				User      string    `json:"user"`
				Server    string    `json:"server"`
				TokenID   string    `json:"tokenId"`
				ExpiresAt time.Time `json:"expiresAt"`
				Config    string    `json:"config"`
			}{user, saved.Server, tok.ID, tok.ExpiresAt, path}
			return render(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "logged in to %s as %s until %s; the token is in %s\n", saved.Server, user, tok.ExpiresAt.Local().Format(time.DateTime), path)
			})
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user name (required)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from the first line of this file instead of a prompt")
	return cmd
}

// caFileSetting is --ca-file, else $TRIPCAP_CA_FILE.
func caFileSetting(cmd *cobra.Command) string {
	if v, _ := cmd.Flags().GetString("ca-file"); v != "" {
		return v
	}
	return os.Getenv("TRIPCAP_CA_FILE")
}

// readPassword reads a password from file, else from a prompt without
// echo when stdin is a terminal, else from stdin's first line. A password
// is never a flag's value: it would show in ps and shell history.
func readPassword(cmd *cobra.Command, file, prompt string) (string, error) {
	var src io.Reader
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--password-file: %w", err)
		}
		defer f.Close()
		src = f
	default:
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprint(cmd.ErrOrStderr(), prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(cmd.ErrOrStderr())
			if err != nil {
				return "", fmt.Errorf("read the password: %w", err)
			}
			return string(b), nil
		}
		src = in
	}
	line, err := bufio.NewReader(io.LimitReader(src, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password given (a prompt on a terminal, the first line of stdin, or --password-file)")
	}
	return pw, nil
}
