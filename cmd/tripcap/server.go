package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/audit"
	"github.com/tripcap/tripcap/azblob"
	"github.com/tripcap/tripcap/console"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/remotewrite"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/s3"
	"github.com/tripcap/tripcap/seal"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/sqlstore"
	"github.com/tripcap/tripcap/tlscert"
)

// The server role: the control plane's flags, its resources and its command.

// serverOptions are the control plane's flags, shared by `server` and `up`.
type serverOptions struct {
	listen, data, db, adminTokenFile string
	masterKeyFile                    string
	publicURL, jwtAudience           string
	subscription, group, location    string
	maxCaptures                      int
	heartbeat                        time.Duration
	fileRetention                    time.Duration
	auditRetention                   time.Duration
	storage                          []string
	tls                              tlsOptions
	// limits are the API server's timeouts and per-address limits;
	// allowWebhookTargets the CIDRs webhooks may target though special.
	limits              tchttp.Limits
	allowWebhookTargets []string
	// keyRate and keyBurst bound the runs a function key starts (issue 12).
	keyRate, keyBurst int
	// tenantID and armAudiences shape the Azure AD-shaped token endpoints (issue 13).
	tenantID     string
	armAudiences []string
	// arm serves the Azure Resource Manager surface (issue 13).
	arm bool
	// metrics are the metric store's retention and the remote store's
	// flags (`server` only; `up` keeps the defaults).
	metrics metricsOptions
}

func (o *serverOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve the API on (HTTPS unless --insecure-plaintext)")
	f.StringVar(&o.data, "data", "./tripcap-data", "data directory (SQLite database, file storage, admin token)")
	f.StringVar(&o.publicURL, "public-url", "", "the server's URL as clients reach it (behind a load balancer), for links in notifications (default the --listen URL)")
	f.StringVar(&o.jwtAudience, "jwt-audience", "tripcap", "the audience (aud) of the JWTs /oauth2/token issues and the API accepts; their issuer is --public-url")
	f.StringVar(&o.db, "db", "", "database: sqlite:///path/tripcap.db (default inside --data) or postgres://…")
	f.StringVar(&o.adminTokenFile, "admin-token-file", "", "admin token file (default <data>/admin.token); replicas may share one")
	f.StringVar(&o.masterKeyFile, "master-key-file", "", "master key file sealing the database's secrets (default <data>/"+seal.FileName+", created 0600 on first start); "+seal.EnvVar+" overrides it; replicas share one key")
	f.StringVar(&o.subscription, "subscription", "", "subscription id in hosts' Azure resource ids")
	f.StringVar(&o.group, "resource-group", "", "default resource group of hosts (label azure.resourceGroup overrides)")
	f.StringVar(&o.location, "default-location", "", "location of hosts that enroll without one")
	f.IntVar(&o.keyRate, "function-key-rate", responder.DefaultKeyRate, "runs a second one function key may start on average (a responder's keys together: twice that); beyond it 429")
	f.IntVar(&o.keyBurst, "function-key-burst", responder.DefaultKeyBurst, "runs one function key may start at once (a responder's keys together: twice that)")
	f.IntVar(&o.maxCaptures, "max-captures", tripcap.DefaultParallelCapturesPerWatcher, "parallel capture limit of new network watchers")
	f.DurationVar(&o.heartbeat, "heartbeat", 10*time.Second, "agent heartbeat interval; hosts go Offline after three missed")
	f.Var(retentionValue{&o.fileRetention}, "file-retention", "delete stored capture files this long after they were created (720h, P90D); 0 keeps them until deleted (tripcap file delete)")
	o.auditRetention = audit.DefaultRetention
	f.Var(retentionValue{&o.auditRetention}, "audit-retention", "delete audit events this long after they were recorded (2160h, P90D); 0 keeps them forever")
	o.tls.addFlags(cmd)
	def := tchttp.DefaultLimits()
	f.DurationVar(&o.limits.ReadHeaderTimeout, "read-header-timeout", def.ReadHeaderTimeout, "API: time to read a request's headers (and a TLS handshake)")
	f.DurationVar(&o.limits.ReadTimeout, "read-timeout", def.ReadTimeout, "API: time to read a whole request; an upload gets it again each time bytes arrive")
	f.DurationVar(&o.limits.WriteTimeout, "write-timeout", def.WriteTimeout, "API: time to handle a request and write its answer; long polls wait on top, downloads get it again each time bytes leave")
	f.DurationVar(&o.limits.IdleTimeout, "idle-timeout", def.IdleTimeout, "API: how long an idle kept-alive connection stays open")
	f.IntVar(&o.limits.UnauthenticatedPerAddress, "max-unauthenticated-per-address", def.UnauthenticatedPerAddress, "API: connections not yet authenticated, and requests being authenticated, per client address (IPv6: per /64); 0 for no cap")
	f.IntVar(&o.limits.AuthFailures, "auth-failure-limit", def.AuthFailures, "API: failed authentications per address per --auth-failure-window before its requests are answered 429; 0 for no limit")
	f.IntVar(&o.limits.NameFailures, "auth-failure-name-limit", def.NameFailures, "API: failed logins per user name (and token requests per client id), from any address, per --auth-failure-window before that name's are answered 429; anyone can reach it to keep a name's logins refused, so keep it well above --auth-failure-limit; 0 for no limit")
	f.DurationVar(&o.limits.AuthFailureWindow, "auth-failure-window", def.AuthFailureWindow, "API: the window --auth-failure-limit counts in")
	f.StringArrayVar(&o.allowWebhookTargets, "allow-webhook-target", nil, "a CIDR webhooks may post to though loopback, link-local, multicast or this server's own (repeatable; e.g. 127.0.0.0/8 for a receiver on this host)")
	// The Azure AD-shaped token endpoints (issue 13).
	f.StringVar(&o.tenantID, "tenant-id", "", "the Azure AD tenant id (a GUID) of POST /{tenant}/oauth2/token and /{tenant}/oauth2/v2.0/token (default derived from --public-url, else the listen URL: pin it, or --public-url, so that it survives a change of address; replicas need the same)")
	f.StringSliceVar(&o.armAudiences, "arm-audience", identity.DefaultARMAudiences, "audiences (Azure Resource Manager's) the Azure AD-shaped endpoints issue tokens for and the server accepts beside --jwt-audience; a token for any other is refused (repeatable or comma-separated)")
	f.BoolVar(&o.arm, "arm", true, "serve the Azure Resource Manager-compatible API (/subscriptions/…) beside the native one (docs/azure.md)")
	f.StringArrayVar(&o.storage, "storage", nil, "storage account NAME=URL (file://DIR, s3://BUCKET/PREFIX?endpoint=…, azblob://ACCOUNT/CONTAINER?endpoint=…); the first is the default (default local=file://<data>/storage)")
}

// openStore opens the database a --db URL names.
func openStore(ctx context.Context, db string) (*sqlstore.Store, error) {
	switch {
	case strings.HasPrefix(db, "sqlite://"):
		return sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite://"))
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	}
	return nil, fmt.Errorf("--db: %q is not sqlite:///path or postgres://…", db)
}

// openStorageURL opens one storage account by URL; credentials come from the
// server's environment (AWS_*/MINIO_* for S3, AZURE_STORAGE_* for Azure).
func openStorageURL(ctx context.Context, u string) (tripcap.BlobStore, error) {
	switch {
	case strings.HasPrefix(u, "file://"):
		return filestore.Open(strings.TrimPrefix(u, "file://"))
	case strings.HasPrefix(u, "s3://"):
		return s3.Open(ctx, u)
	case strings.HasPrefix(u, "azblob://"):
		return azblob.Open(ctx, u)
	}
	return nil, tripcap.Errorf(tripcap.EINVALID, "url: %q is not file://DIR, s3://BUCKET/PREFIX?… or azblob://ACCOUNT/CONTAINER?…", u)
}

// openStorage opens the storage accounts --storage names.
func openStorage(ctx context.Context, specs []string, data string) (map[string]tripcap.BlobStore, string, error) {
	if len(specs) == 0 {
		specs = []string{"local=file://" + filepath.Join(data, "storage")}
	}
	out := map[string]tripcap.BlobStore{}
	var def string
	for _, spec := range specs {
		name, u, ok := strings.Cut(spec, "=")
		if !ok || name == "" {
			return nil, "", fmt.Errorf("--storage: %q is not NAME=URL", spec)
		}
		b, err := openStorageURL(ctx, u)
		if err != nil {
			return nil, "", fmt.Errorf("--storage %s: %w", name, err)
		}
		out[name] = b
		if def == "" {
			def = name
		}
	}
	return out, def, nil
}

// controlPlane owns every resource of a running server, as WTF Dial's Main
// does: openControlPlane opens them in order (closing what it opened when a
// later step fails), Run runs the services under one errgroup until ctx
// ends or one of them fails, and Close releases what is left, once.
type controlPlane struct {
	log     *slog.Logger
	store   tripcap.Store
	svc     *controlplane.Service
	monitor *controlplane.Monitor
	// remoteWrite ships stored points to the remote store (nil: none).
	remoteWrite *remotewrite.Writer
	responders  *responder.Responders
	audit       *audit.Recorder
	http        *tchttp.Server
	console     *console.Console
	listener    net.Listener
	adminToken  string
	url         string
	// tenantID is the Azure AD-shaped tenant an Azure client signs in to.
	tenantID string
	// tls is the serving certificate's source; nil for plain HTTP.
	tls tlscert.Source
	// plaintextBeyondLoopback makes Run warn every hour that the API
	// travels in clear.
	plaintextBeyondLoopback bool

	closeOnce sync.Once
	closeErr  error
}

// resolve makes --data absolute, creates it (the owner's alone: it holds
// the database and the master key) and fills the paths it is the default of.
func (o *serverOptions) resolve() error {
	if err := absPaths(map[string]*string{"--data": &o.data}); err != nil {
		return err
	}
	if err := os.MkdirAll(o.data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if o.db == "" {
		o.db = "sqlite://" + filepath.Join(o.data, "tripcap.db")
	}
	if o.adminTokenFile == "" {
		o.adminTokenFile = filepath.Join(o.data, "admin.token")
	}
	if o.masterKeyFile == "" {
		o.masterKeyFile = filepath.Join(o.data, seal.FileName)
	}
	return nil
}

// openSealedStore opens the database with the master key's sealer (the
// store refuses to write a secret without one), and seals what an earlier
// tripcap kept in clear.
func openSealedStore(ctx context.Context, o *serverOptions, log *slog.Logger) (*sqlstore.Store, error) {
	sealer, err := seal.Load(o.masterKeyFile, os.Getenv(seal.EnvVar), log)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, o.db)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	store.SetSealer(sealer)
	n, err := store.SealSecrets(ctx, false)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("%w (replicas must share one master key: the same --master-key-file or %s)", err, seal.EnvVar)
	}
	if n > 0 {
		log.Info("sealed the secrets the database held in clear", "component", "seal", "count", n)
	}
	return store, nil
}

// checkAzurePlace refuses a --subscription or --resource-group that would
// put hosts under malformed Azure ids (the checks enrollment applies to
// the labels that override them).
func (o *serverOptions) checkAzurePlace() error {
	if o.subscription != "" {
		if err := tripcap.ValidateSubscriptionID("--subscription", o.subscription); err != nil {
			return err
		}
	}
	if o.group != "" {
		if err := tripcap.ValidateResourceGroupName("--resource-group", o.group); err != nil {
			return err
		}
	}
	return nil
}

func openControlPlane(ctx context.Context, o *serverOptions, log *slog.Logger) (cp *controlPlane, err error) {
	if err := o.resolve(); err != nil {
		return nil, err
	}
	if err := o.checkAzurePlace(); err != nil {
		return nil, err
	}
	cp = &controlPlane{log: log}
	// opened, not cp: a `return nil, err` has set cp to nil by now.
	opened := cp
	defer func() {
		if err != nil {
			_ = opened.Close()
			cp = nil
		}
	}()
	// Through a variable of the concrete type: a failed open's nil
	// *sqlstore.Store in cp.store would be a non-nil interface Close calls.
	store, err := openSealedStore(ctx, o, log)
	if err != nil {
		return nil, err
	}
	cp.store = store
	remote, err := o.metrics.open(store, log)
	if err != nil {
		return nil, err
	}
	cp.remoteWrite = remote.writer
	blobs, def, err := openStorage(ctx, o.storage, o.data)
	if err != nil {
		return nil, err
	}
	if cp.tls, err = o.tls.open(o.listen, o.data, log); err != nil {
		return nil, err
	}
	cfg := controlplane.Config{
		SubscriptionID: o.subscription, ResourceGroup: o.group, DefaultLocation: o.location,
		MaxCapturesPerWatcher: o.maxCaptures, HeartbeatInterval: o.heartbeat, FileRetention: o.fileRetention, Storage: blobs, DefaultStorage: def, OpenStorage: openStorageURL,
	}
	if src := cp.tls; src != nil {
		cfg.CAFingerprint = func() string { return tlscert.Fingerprint(src.Anchor()) }
	}
	cp.svc = controlplane.New(cp.store, cfg, log)
	if cp.adminToken, err = cp.svc.EnsureAdmin(ctx, o.adminTokenFile); err != nil {
		return nil, err
	}
	if cp.listener, err = net.Listen("tcp", o.listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	cp.url = "https://" + cp.listener.Addr().String()
	if cp.tls == nil {
		cp.url = "http://" + cp.listener.Addr().String()
		cp.plaintextBeyondLoopback = !isLoopback(cp.listener.Addr().String())
	}
	linkURL := cp.url
	if o.publicURL != "" {
		if linkURL, err = checkPublicURL(o.publicURL); err != nil {
			return nil, err
		}
	}
	retention := o.auditRetention
	if retention == 0 {
		retention = -1 // the recorder's "forever"
	}
	cp.audit = audit.New(cp.store, log, audit.Config{Retention: retention})
	targets, err := webhookTargets(o.allowWebhookTargets, cp.listener.Addr().String(), linkURL)
	if err != nil {
		return nil, err
	}
	if cp.responders, err = newResponders(cp.svc, log, linkURL, cp.audit, targets, o.keyRate, o.keyBurst); err != nil {
		return nil, err
	}
	if cp.monitor, err = newMonitor(cp.store, log, cp.responders, filepath.Join(o.data, "metrics.snapshot"), targets, remote.configure); err != nil {
		return nil, err
	}
	ids, err := identity.New(cp.store, identity.Config{Issuer: linkURL, Audience: o.jwtAudience, TenantID: o.tenantID, ARMAudiences: o.armAudiences}, log)
	if err != nil {
		return nil, err
	}
	cp.svc.SetIdentities(ids)
	cp.tenantID = ids.TenantID()
	log.Info("Azure AD-shaped token endpoints at /TENANT/oauth2/token (v1) and /TENANT/oauth2/v2.0/token (v2.0)", "component", "identity", "tenantId", ids.TenantID(), "subscriptionId", cp.svc.Config().SubscriptionID, "audiences", ids.Audiences())
	httpOpts := []tchttp.Option{tchttp.WithMonitor(cp.monitor), tchttp.WithResponders(cp.responders), tchttp.WithIdentity(ids), tchttp.WithAudit(cp.audit), tchttp.WithLimits(o.limits)}
	if cp.tls != nil {
		httpOpts = append(httpOpts, tchttp.WithTLS(tlscert.ServerConfig(cp.tls)))
	}
	if o.arm {
		var armOpts []arm.Option
		if o.publicURL != "" {
			armOpts = append(armOpts, arm.WithBaseURL(linkURL))
		}
		httpOpts = append(httpOpts, tchttp.WithARM(arm.New(log, arm.Services{Control: cp.svc, Monitor: cp.monitor, Identity: ids, Responders: cp.responders}, armOpts...)))
	}
	cp.http = tchttp.NewServer(cp.svc, log, httpOpts...)
	cp.http.Registry().MustRegister(remote.collectors()...)
	// The web console, at "/" behind the API's limits and audit.
	consoleCfg := console.Config{Service: cp.svc, Monitor: cp.monitor, Responders: cp.responders, Identity: ids, Audit: cp.audit,
		Secure: strings.HasPrefix(linkURL, "https://")}
	if o.publicURL != "" {
		consoleCfg.PublicURL = linkURL
	}
	if cp.console, err = console.New(consoleCfg, log); err != nil {
		return nil, err
	}
	cp.http.MountConsole(func(g tchttp.ConsoleGate) http.Handler { return cp.console.Handler(g) })
	return cp, nil
}

// Run serves until ctx ends or a service fails; the first failure stops the
// others and is returned. Every service has stopped when Run returns, so
// Close can release the store under nobody.
func (cp *controlPlane) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return named("control plane", cp.svc.Run(ctx)) })
	g.Go(func() error { return named("monitor", cp.monitor.Run(ctx)) })
	if cp.remoteWrite != nil {
		g.Go(func() error { return named("remote write", cp.remoteWrite.Run(ctx)) })
	}
	g.Go(func() error { return named("responders", cp.responders.Run(ctx)) })
	g.Go(func() error { return named("audit retention", cp.audit.RunRetention(ctx)) })
	if cp.plaintextBeyondLoopback {
		g.Go(func() error { return warnPlaintext(ctx, cp.log, cp.listener.Addr().String()) })
	}
	g.Go(func() error {
		err := cp.http.Serve(ctx, cp.listener)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return named("API server", err)
	})
	return g.Wait()
}

// tlsLogAttrs says what the server presents: the CA agents pin and where it is.
func (cp *controlPlane) tlsLogAttrs() []any {
	switch src := cp.tls.(type) {
	case nil:
		return []any{"tls", false}
	case *tlscert.Authority:
		return []any{"tls", true, "caFingerprint", tlscert.Fingerprint(src.Anchor()), "caFile", filepath.Join(src.Dir(), tlscert.CACertFile)}
	default:
		return []any{"tls", true, "caFingerprint", tlscert.Fingerprint(src.Anchor())}
	}
}

// named says which service an error came from; nil stays nil.
func named(service string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", service, err)
}

// Close releases the listener and the store; safe to call more than once.
func (cp *controlPlane) Close() error {
	cp.closeOnce.Do(func() {
		var errs []error
		if cp.listener != nil {
			if err := cp.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("closing the listener: %w", err))
			}
		}
		if cp.audit != nil {
			// What is queued is stored before the database closes.
			_ = cp.audit.Close()
		}
		if cp.store != nil {
			if err := cp.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing the database: %w", err))
			}
		}
		cp.closeErr = errors.Join(errs...)
	})
	return cp.closeErr
}

func newServerCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (REST API, state, agents' coordination)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := newLogger(cmd)
			cp, err := openControlPlane(cmd.Context(), &o, log)
			if err != nil {
				return err
			}
			log.Info("tripcap server listening", append([]any{"url", cp.url, "publicURL", o.publicURL, "db", tripcap.RedactURL(o.db), "adminTokenFile", o.adminTokenFile}, cp.tlsLogAttrs()...)...)
			return errors.Join(cp.Run(cmd.Context()), cp.Close())
		},
	}
	o.addFlags(cmd)
	o.metrics.addFlags(cmd)
	addConfigFlag(cmd, defaultServerConfig)
	cmd.AddCommand(newRotateMasterKeyCmd())
	return cmd
}

// checkPublicURL returns --public-url as links are built on it: an absolute
// http(s) URL with a host, without a trailing slash.
func checkPublicURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--public-url: %q is not an http(s)://HOST[:PORT][/PATH] URL (no credentials, query or fragment)", v)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// webhookTargets is where webhooks may go: nowhere special but the allowed
// CIDRs, and never this server's listener or public URL unless allowed.
func webhookTargets(allow []string, listen, publicURL string) (actiongroup.Targets, error) {
	prefixes, err := actiongroup.ParseTargetPrefixes("--allow-webhook-target", allow)
	if err != nil {
		return actiongroup.Targets{}, err
	}
	t := actiongroup.Targets{Allow: prefixes, Own: []string{listen}}
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		t.Own = append(t.Own, net.JoinHostPort(u.Hostname(), port))
	}
	return t, nil
}
