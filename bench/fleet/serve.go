package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/actiongroup"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/filestore"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/postgres"
	"github.com/tripcap/tripcap/responder"
	"github.com/tripcap/tripcap/seal"
	"github.com/tripcap/tripcap/sqlite"
)

// The profiling server: with -server inproc the bench runs the control plane
// in a child process of its own executable (-serve), assembled as
// cmd/tripcap's startControlPlane does, plus net/http/pprof on another port
// with block and mutex profiling on. It exists to see where requests wait
// (the writer connection, the reader pool, locks), which a CPU profile of
// the real binary cannot show; figures for the record come from the real
// `tripcap server`.

// serveConfig is the profiling server's flags.
type serveConfig struct {
	listen, pprofListen, data, db, tokenFile string
	heartbeat                                time.Duration
}

func (c serveConfig) args() []string {
	return []string{"-serve", "-serve-listen", c.listen, "-serve-pprof", c.pprofListen, "-serve-data", c.data,
		"-serve-db", c.db, "-serve-token-file", c.tokenFile, "-heartbeat", c.heartbeat.String()}
}

// runServe serves until ctx ends.
func runServe(ctx context.Context, c serveConfig, log *slog.Logger) error {
	var store tripcap.Store
	var err error
	switch {
	case strings.HasPrefix(c.db, "sqlite://"):
		store, err = sqlite.Open(ctx, strings.TrimPrefix(c.db, "sqlite://"))
	case strings.HasPrefix(c.db, "postgres://"), strings.HasPrefix(c.db, "postgresql://"):
		store, err = postgres.Open(ctx, c.db)
	default:
		err = fmt.Errorf("-serve-db: %q is not sqlite:// or postgres://", c.db)
	}
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	// Action groups hold signing secrets, which the store seals.
	sealer, err := seal.Load(filepath.Join(c.data, "master.key"), "", log)
	if err != nil {
		return err
	}
	ss, ok := store.(interface{ SetSealer(tripcap.Sealer) })
	if !ok {
		return fmt.Errorf("the %T store takes no sealer", store)
	}
	ss.SetSealer(sealer)
	blobs, err := filestore.Open(filepath.Join(c.data, "storage"))
	if err != nil {
		return err
	}
	svc := controlplane.New(store, controlplane.Config{HeartbeatInterval: c.heartbeat,
		Storage: map[string]tripcap.BlobStore{"local": blobs}, DefaultStorage: "local"}, log)
	if _, err := svc.EnsureAdmin(ctx, c.tokenFile); err != nil {
		return err
	}
	// The monitor and the responders, as the server has them: -metrics
	// ships points, evaluates rules and captures on breaches.
	notifier, err := actiongroup.New(actiongroup.Config{Logger: log})
	if err != nil {
		return err
	}
	rsp, err := responder.New(svc.ResponderDeps(), log, responder.Config{PublicURL: "http://" + c.listen, Notifier: notifier})
	if err != nil {
		return err
	}
	mon, err := controlplane.NewMonitor(store, log, controlplane.MonitorConfig{Responder: rsp})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}

	// Sample every blocking event over 10 µs and one mutex contention in 10:
	// enough to see queues, cheap enough not to create them.
	runtime.SetBlockProfileRate(10_000)
	runtime.SetMutexProfileFraction(10)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	pl, err := net.Listen("tcp", c.pprofListen)
	if err != nil {
		return err
	}
	ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ps.Serve(pl) }()
	defer ps.Close()

	errc := make(chan error, 4)
	go func() { errc <- svc.Run(ctx) }()
	go func() { errc <- mon.Run(ctx) }()
	go func() { errc <- rsp.Run(ctx) }()
	go func() {
		errc <- tchttp.NewServer(svc, log, tchttp.WithMonitor(mon), tchttp.WithResponders(rsp)).Serve(ctx, l)
	}()
	err = <-errc
	for range 3 {
		if err2 := <-errc; err == nil {
			err = err2
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// fetchProfiles saves the profiling server's pprof profiles of the coming d
// into dir: CPU, block and mutex over d, a 5 s execution trace, and the
// goroutines and the live heap at the end.
func fetchProfiles(ctx context.Context, pprofURL, dir, tag string, d time.Duration) error {
	get := func(path, file string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", pprofURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.ReadFrom(resp.Body)
		return err
	}
	secs := int(d.Seconds())
	// All at once, over the window: the block and mutex profiles as deltas.
	jobs := [][2]string{
		{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "server-cpu-" + tag + ".pprof"},
		{fmt.Sprintf("/debug/pprof/block?seconds=%d", secs), "server-block-" + tag + ".pprof"},
		{fmt.Sprintf("/debug/pprof/mutex?seconds=%d", secs), "server-mutex-" + tag + ".pprof"},
		{"/debug/pprof/trace?seconds=5", "server-trace-" + tag + ".out"},
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = get(j[0], j[1], d+time.Minute) }()
	}
	wg.Wait()
	errs = append(errs, get("/debug/pprof/goroutine", "server-goroutine-"+tag+".pprof", time.Minute),
		get("/debug/pprof/heap?gc=1", "server-heap-"+tag+".pprof", time.Minute))
	return errors.Join(errs...)
}
