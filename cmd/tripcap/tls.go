package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/tlscert"
)

// Transport security of the server and of the CLI: which certificate the
// server presents, and which CA the CLI trusts.

// plaintextWarnEvery is how often a server serving plain HTTP beyond
// loopback says so again.
const plaintextWarnEvery = time.Hour

// tlsOptions are the server's TLS flags.
type tlsOptions struct {
	cert, key         string
	sans              []string
	insecurePlaintext bool
}

func (o *tlsOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.cert, "tls-cert", "", "serving certificate file (PEM, leaf then chain), reloaded when it changes (default: a certificate from the CA in <data>/tls)")
	f.StringVar(&o.key, "tls-key", "", "private key file of --tls-cert (PEM), reloaded when it changes")
	f.StringArrayVar(&o.sans, "tls-san", nil, "extra host name or IP address for the created serving certificate (repeatable)")
	f.BoolVar(&o.insecurePlaintext, "insecure-plaintext", false, "serve plain HTTP (h2c) instead of HTTPS: join tokens, credentials and captures travel in clear; logged as a warning beyond loopback")
}

// open returns the server's certificate source, nil for plain HTTP.
func (o *tlsOptions) open(listen, data string, log *slog.Logger) (tlscert.Source, error) {
	if o.insecurePlaintext {
		if o.cert != "" || o.key != "" {
			return nil, errors.New("--insecure-plaintext: cannot be given with --tls-cert/--tls-key")
		}
		return nil, nil
	}
	if (o.cert == "") != (o.key == "") {
		return nil, errors.New("--tls-cert and --tls-key: give both or neither")
	}
	if o.cert != "" {
		src, err := tlscert.OpenFiles(o.cert, o.key, log)
		if err != nil {
			return nil, err // not a nil *FileSource in a non-nil Source
		}
		return src, nil
	}
	sans := append([]string{}, o.sans...)
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.IsUnspecified() {
			sans = append(sans, host)
		}
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		sans = append(sans, h)
	}
	a, err := tlscert.OpenAuthority(filepath.Join(data, "tls"), sans, nil)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// isLoopback reports whether a listen address serves this host alone.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// warnPlaintext says, at start and every plaintextWarnEvery until ctx
// ends, that the API travels in clear beyond this host.
func warnPlaintext(ctx context.Context, log *slog.Logger, listen string) error {
	t := time.NewTicker(plaintextWarnEvery)
	defer t.Stop()
	for {
		log.Warn("INSECURE: serving plain HTTP beyond loopback (--insecure-plaintext): join tokens, agent credentials, admin tokens and capture files can be read and changed on the network; serve HTTPS (the default) instead", "listen", listen)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// clientTLS is the CLI's trust for server: --ca-file (or $TRIPCAP_CA_FILE),
// else the client config's CA when server is the config's, else the
// system roots.
func clientTLS(cmd *cobra.Command, server string, cfg clientConfig) ([]tchttp.ClientOption, error) {
	if caFile := caFileSetting(cmd); caFile != "" {
		pool, err := tlscert.LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		return []tchttp.ClientOption{tchttp.WithTLSConfig(tlscert.ClientConfig(pool))}, nil
	}
	if cfg.CA != "" && strings.TrimRight(cfg.Server, "/") == strings.TrimRight(server, "/") {
		pool, err := tlscert.PoolFromPEM([]byte(cfg.CA), "client config ca")
		if err != nil {
			return nil, err
		}
		return []tchttp.ClientOption{tchttp.WithTLSConfig(tlscert.ClientConfig(pool))}, nil
	}
	return nil, nil
}
