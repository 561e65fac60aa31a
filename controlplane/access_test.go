package controlplane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap/internal/teststore"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/capturefile"
	"github.com/tripcap/tripcap/controlplane"
)

// The access tests give each service area to principals holding the
// built-in roles at scopes, over a fleet of four hosts:
//
//	a1  team=a  westeurope
//	a2  team=a  xloc
//	b1  team=b  westeurope
//	x1  team=b  xloc
//
// with three captures on each (created interleaved, so a host's captures
// are not neighbours in id order), "shared" on b1 and a2 (one name in two
// watchers), and one stored file on each host's first capture.
type accessFixture struct {
	*fixture
	hosts  map[string]*tripcap.Host
	agents map[string]context.Context
	// caps are each host's captures in creation order.
	caps  map[string][]*tripcap.PacketCapture
	files map[string]*tripcap.StoredFile
	who   map[string]context.Context
}

var fleet = []struct{ name, team, location string }{
	{"a1", "a", "westeurope"}, {"b1", "b", "westeurope"}, {"a2", "a", "xloc"}, {"x1", "b", "xloc"},
}

// identities are the principals of the access tests; "none" holds no role.
var identities = map[string][]tripcap.RoleAssignment{
	"readerAll":  {{Role: tripcap.RoleReader, Scope: tripcap.ScopeAll}},
	"readerA":    {{Role: tripcap.RoleReader, Scope: "label:team=a"}},
	"netA":       {{Role: tripcap.RoleNetworkContributor, Scope: "label:team=a"}},
	"monAll":     {{Role: tripcap.RoleMonitoringContributor, Scope: tripcap.ScopeAll}},
	"filesX":     {{Role: tripcap.RoleCaptureFileReader, Scope: "location:xloc"}},
	"none":       nil,
	"ownerTeamA": {{Role: tripcap.RoleOwner, Scope: "label:team=a"}},
}

func newAccessFixture(t *testing.T, store tripcap.Store) *accessFixture {
	t.Helper()
	f := &accessFixture{fixture: fixtureOn(t, store, controlplane.Config{}), hosts: map[string]*tripcap.Host{},
		agents: map[string]context.Context{}, caps: map[string][]*tripcap.PacketCapture{}, files: map[string]*tripcap.StoredFile{},
		who: map[string]context.Context{}}
	for _, h := range fleet {
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: h.name, Location: h.location, Labels: map[string]string{"team": h.team}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.Authenticate(context.Background(), resp.Credential)
		if err != nil {
			t.Fatal(err)
		}
		f.hosts[h.name], f.agents[h.name] = resp.Host, tripcap.NewContextWithPrincipal(f.admin, p)
	}
	for i := range 3 {
		for _, h := range fleet {
			c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: fmt.Sprintf("%s-%d", h.name, i), Parameters: tripcap.PacketCaptureParameters{Target: h.name}})
			if err != nil {
				t.Fatal(err)
			}
			f.caps[h.name] = append(f.caps[h.name], c)
		}
	}
	for _, h := range []string{"b1", "a2"} {
		if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "shared", Parameters: tripcap.PacketCaptureParameters{Target: h}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range fleet {
		data := []byte("packets of " + h.name)
		sum := sha256.Sum256(data)
		if _, err := f.svc.UploadFile(f.agents[h.name], f.caps[h.name][0].ID, "f.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		files, _, err := f.svc.FindFiles(f.admin, capturefile.FileQuery{Host: h.name})
		if err != nil || len(files) != 1 {
			t.Fatalf("files of %s: %v, %v", h.name, files, err)
		}
		f.files[h.name] = files[0]
	}
	for name, grants := range identities {
		f.who[name] = tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: name, Name: name, Kind: tripcap.PrincipalUser, Assignments: grants})
	}
	return f
}

// seen is what each identity may read of the fleet (nil: refused, EFORBIDDEN).
var seen = map[string][]string{
	"readerAll":  {"a1", "a2", "b1", "x1"},
	"readerA":    {"a1", "a2"},
	"netA":       {"a1", "a2"},
	"monAll":     {"a1", "a2", "b1", "x1"},
	"filesX":     {"a2", "x1"},
	"ownerTeamA": {"a1", "a2"},
	"none":       nil,
}

func wantRefused(t *testing.T, what string, err error, code string) {
	t.Helper()
	if tripcap.ErrorCode(err) != code {
		t.Errorf("%s: error %v (code %q), want %s", what, err, tripcap.ErrorCode(err), code)
	}
}

// pages collects a listing page by page, checking each page is full but
// the last, so that filtering never ends a listing early.
func pages[T any](t *testing.T, what string, limit int, page func(cursor string) ([]T, string, error)) ([]T, error) {
	t.Helper()
	var all []T
	cursor := ""
	for n := 0; ; n++ {
		got, next, err := page(cursor)
		if err != nil {
			return nil, err
		}
		if next != "" && len(got) != limit {
			t.Errorf("%s: page %d has %d rows and a next page; want full pages of %d", what, n, len(got), limit)
		}
		if next == "" && len(got) == 0 && n > 0 {
			t.Errorf("%s: page %d is empty: the previous page's cursor promised more", what, n)
		}
		all = append(all, got...)
		if next == "" {
			return all, nil
		}
		if n > 100 {
			t.Fatalf("%s: more than 100 pages", what)
		}
		cursor = next
	}
}

func TestAccessHosts(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		for name, want := range seen {
			t.Run(name, func(t *testing.T) {
				ctx := f.who[name]
				hosts, err := pages(t, "hosts", 1, func(cursor string) ([]*tripcap.Host, string, error) {
					return f.svc.FindHosts(ctx, tripcap.HostFilter{Cursor: cursor, Limit: 1})
				})
				if want == nil {
					wantRefused(t, "FindHosts", err, tripcap.EFORBIDDEN)
					_, err = f.svc.FindHost(ctx, "a1")
					wantRefused(t, "FindHost a1", err, tripcap.EFORBIDDEN)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, h := range hosts {
					names = append(names, h.Name)
				}
				slices.Sort(names)
				if !slices.Equal(names, want) {
					t.Errorf("FindHosts = %v, want %v", names, want)
				}
				for _, h := range fleet {
					got, err := f.svc.FindHost(ctx, h.name)
					if slices.Contains(want, h.name) {
						if err != nil || got.ID != f.hosts[h.name].ID {
							t.Errorf("FindHost %s = %v, %v", h.name, got, err)
						}
						continue
					}
					// Out of scope reads as unknown: the same answer as a host that does not exist.
					_, unknown := f.svc.FindHost(ctx, "nosuchhost")
					wantRefused(t, "FindHost "+h.name, err, tripcap.ENOTFOUND)
					if strings.ReplaceAll(tripcap.ErrorMessage(err), h.name, "X") != strings.ReplaceAll(tripcap.ErrorMessage(unknown), "nosuchhost", "X") {
						t.Errorf("FindHost %s: %q differs from an unknown host's %q", h.name, tripcap.ErrorMessage(err), tripcap.ErrorMessage(unknown))
					}
				}
			})
		}
		// Watchers: those of the locations of hosts in scope.
		for name, want := range map[string][]string{"readerAll": {"westeurope", "xloc"}, "readerA": {"westeurope", "xloc"}, "filesX": {"xloc"}} {
			ws, err := f.svc.FindWatchers(f.who[name])
			if err != nil {
				t.Fatal(err)
			}
			var locs []string
			for _, w := range ws {
				locs = append(locs, w.Location)
			}
			slices.Sort(locs)
			if !slices.Equal(locs, want) {
				t.Errorf("%s: FindWatchers locations %v, want %v", name, locs, want)
			}
		}
		_, err := f.svc.FindWatchers(f.who["none"])
		wantRefused(t, "none: FindWatchers", err, tripcap.EFORBIDDEN)

		// Writes on hosts and watchers, and join tokens: hosts/write, which
		// only Owner has; a host out of an owner's scope is not found.
		for _, name := range []string{"readerAll", "netA", "monAll", "filesX", "none"} {
			ctx := f.who[name]
			wantRefused(t, name+": DeleteHost", f.svc.DeleteHost(ctx, "a1"), tripcap.EFORBIDDEN)
			_, err := f.svc.SetWatcherLimit(ctx, "NetworkWatcher_westeurope", 5)
			wantRefused(t, name+": SetWatcherLimit", err, tripcap.EFORBIDDEN)
			_, err = f.svc.CreateJoinToken(ctx, time.Hour, 1)
			wantRefused(t, name+": CreateJoinToken", err, tripcap.EFORBIDDEN)
			_, err = f.svc.FindJoinTokens(ctx)
			wantRefused(t, name+": FindJoinTokens", err, tripcap.EFORBIDDEN)
			wantRefused(t, name+": DeleteJoinToken", f.svc.DeleteJoinToken(ctx, tripcap.NewID()), tripcap.EFORBIDDEN)
		}
		owner := f.who["ownerTeamA"]
		wantRefused(t, "ownerTeamA: DeleteHost b1", f.svc.DeleteHost(owner, "b1"), tripcap.ENOTFOUND)
		// Join tokens and watchers are not tied to a host: they need the role at "*".
		_, err = f.svc.CreateJoinToken(owner, time.Hour, 1)
		wantRefused(t, "ownerTeamA: CreateJoinToken", err, tripcap.EFORBIDDEN)
		if err := f.svc.DeleteHost(owner, "a1"); err != nil {
			t.Fatalf("ownerTeamA: DeleteHost a1: %v", err)
		}
		if _, err := f.svc.FindHost(f.admin, "a1"); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
			t.Fatalf("a1 after its delete: %v", err)
		}
	})
}

func captureNames(cs []*tripcap.PacketCapture) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func TestAccessCaptureReads(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		all, _, err := f.svc.FindCaptures(f.admin, "", "", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range seen {
			t.Run(name, func(t *testing.T) {
				ctx := f.who[name]
				got, err := pages(t, "captures", 2, func(cursor string) ([]*tripcap.PacketCapture, string, error) {
					return f.svc.FindCaptures(ctx, "", "", cursor, 2)
				})
				if want == nil {
					wantRefused(t, "FindCaptures", err, tripcap.EFORBIDDEN)
					_, err = f.svc.FindCapture(ctx, "", f.caps["a1"][0].ID)
					wantRefused(t, "FindCapture", err, tripcap.EFORBIDDEN)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				// Exactly the captures of the hosts in scope, in id order.
				var wantCaps []*tripcap.PacketCapture
				for _, c := range all {
					if slices.ContainsFunc(want, func(h string) bool { return f.hosts[h].ID == c.HostID }) {
						wantCaps = append(wantCaps, c)
					}
				}
				if !slices.Equal(captureNames(got), captureNames(wantCaps)) {
					t.Errorf("FindCaptures pages = %v, want %v", captureNames(got), captureNames(wantCaps))
				}
				// A watcher's listing is filtered the same way.
				inWest, err := pages(t, "westeurope captures", 1, func(cursor string) ([]*tripcap.PacketCapture, string, error) {
					return f.svc.FindCaptures(ctx, "NetworkWatcher_westeurope", "", cursor, 1)
				})
				var wantWest []string
				for _, c := range wantCaps {
					if c.WatcherID == f.caps["a1"][0].WatcherID {
						wantWest = append(wantWest, c.Name)
					}
				}
				switch {
				case wantWest == nil:
					wantRefused(t, "FindCaptures of westeurope", err, tripcap.ENOTFOUND)
				case err != nil:
					t.Fatal(err)
				case !slices.Equal(captureNames(inWest), wantWest):
					t.Errorf("westeurope listing %v, want %v", captureNames(inWest), wantWest)
				}
				for _, h := range fleet {
					c := f.caps[h.name][1]
					byID, errID := f.svc.FindCapture(ctx, "", c.ID)
					byName, errName := f.svc.FindCapture(ctx, "", c.Name)
					status, errStatus := f.svc.QueryStatus(ctx, "", c.ID)
					_, _, errList := f.svc.FindCaptures(ctx, "", h.name, "", 10)
					if slices.Contains(want, h.name) {
						if errID != nil || errName != nil || errStatus != nil || errList != nil || byID.ID != c.ID || byName.ID != c.ID || status.ID != c.ID {
							t.Errorf("captures of %s: %v %v %v %v", h.name, errID, errName, errStatus, errList)
						}
						continue
					}
					wantRefused(t, "FindCapture by id on "+h.name, errID, tripcap.ENOTFOUND)
					wantRefused(t, "FindCapture by name on "+h.name, errName, tripcap.ENOTFOUND)
					wantRefused(t, "QueryStatus on "+h.name, errStatus, tripcap.ENOTFOUND)
					wantRefused(t, "FindCaptures of host "+h.name, errList, tripcap.ENOTFOUND)
				}
			})
		}
		// A name shared with a capture out of scope is not ambiguous: the other
		// capture does not exist for the caller.
		c, err := f.svc.FindCapture(f.who["readerA"], "", "shared")
		if err != nil || c.HostID != f.hosts["a2"].ID {
			t.Errorf("readerA: FindCapture shared = %v, %v; want a2's", c, err)
		}
		_, err = f.svc.FindCapture(f.who["readerAll"], "", "shared")
		wantRefused(t, "readerAll: FindCapture shared", err, tripcap.ECONFLICT)

		// A watcher of no host in scope answers as an unknown one does.
		filesX := f.who["filesX"]
		_, _, errOut := f.svc.FindCaptures(filesX, "NetworkWatcher_westeurope", "", "", 10)
		_, _, errUnknown := f.svc.FindCaptures(filesX, "NetworkWatcher_nowhere", "", "", 10)
		wantRefused(t, "filesX: captures of westeurope", errOut, tripcap.ENOTFOUND)
		if strings.ReplaceAll(tripcap.ErrorMessage(errOut), "westeurope", "X") != strings.ReplaceAll(tripcap.ErrorMessage(errUnknown), "nowhere", "X") {
			t.Errorf("filesX: a watcher out of scope answers %q, an unknown one %q", tripcap.ErrorMessage(errOut), tripcap.ErrorMessage(errUnknown))
		}
		_, errOut = f.svc.FindCapture(filesX, "NetworkWatcher_westeurope", "b1-0")
		_, errUnknown = f.svc.FindCapture(filesX, "NetworkWatcher_nowhere", "b1-0")
		if tripcap.ErrorCode(errOut) != tripcap.ENOTFOUND || tripcap.ErrorMessage(errOut) != tripcap.ErrorMessage(errUnknown) {
			t.Errorf("filesX: a capture in a watcher out of scope: %v; in an unknown watcher: %v", errOut, errUnknown)
		}
	})
}

func TestAccessCaptureWrites(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		netA := f.who["netA"]
		params := func(h string) tripcap.PacketCaptureParameters { return tripcap.PacketCaptureParameters{Target: h} }

		c, err := f.svc.CreateCapture(netA, controlplane.CreateCaptureRequest{Name: "mine", Parameters: params("a1")})
		if err != nil {
			t.Fatalf("netA: CreateCapture on a1: %v", err)
		}
		// A host out of scope is as unknown as one that does not exist.
		_, err = f.svc.CreateCapture(netA, controlplane.CreateCaptureRequest{Name: "theirs", Parameters: params("b1")})
		wantCode(t, err, tripcap.EINVALID, `target: no host "b1"`)
		for _, name := range []string{"readerAll", "readerA", "monAll", "filesX", "none"} {
			_, err := f.svc.CreateCapture(f.who[name], controlplane.CreateCaptureRequest{Name: "x", Parameters: params("a1")})
			wantRefused(t, name+": CreateCapture", err, tripcap.EFORBIDDEN)
			_, err = f.svc.StopCapture(f.who[name], "", c.ID, "")
			wantRefused(t, name+": StopCapture", err, tripcap.EFORBIDDEN)
			wantRefused(t, name+": DeleteCapture", f.svc.DeleteCapture(f.who[name], "", c.ID, "", false), tripcap.EFORBIDDEN)
		}

		if _, err := f.svc.StopCapture(netA, "", c.ID, ""); err != nil {
			t.Fatalf("netA: StopCapture a1: %v", err)
		}
		b1 := f.caps["b1"][0]
		_, err = f.svc.StopCapture(netA, "", b1.ID, "")
		wantRefused(t, "netA: StopCapture b1", err, tripcap.ENOTFOUND)
		wantRefused(t, "netA: DeleteCapture b1", f.svc.DeleteCapture(netA, "", b1.ID, "", false), tripcap.ENOTFOUND)

		// deleteFile=true needs files/delete too, checked before the capture goes.
		a1 := f.caps["a1"][0]
		wantRefused(t, "netA: DeleteCapture deleteFile", f.svc.DeleteCapture(netA, "", a1.ID, "", true), tripcap.EFORBIDDEN)
		if got, err := f.svc.FindCapture(f.admin, "", a1.ID); err != nil || got.Desired == tripcap.DesiredDeleted {
			t.Fatalf("a refused delete deleted the capture: %v, %v", got, err)
		}
		if err := f.svc.DeleteCapture(netA, "", a1.ID, "", false); err != nil {
			t.Fatalf("netA: DeleteCapture a1: %v", err)
		}

		// An Owner at team=a deletes files with a capture; not on b1.
		owner := f.who["ownerTeamA"]
		if err := f.svc.DeleteCapture(owner, "", f.caps["a2"][0].ID, "", true); err != nil {
			t.Fatalf("ownerTeamA: DeleteCapture a2 deleteFile: %v", err)
		}
		if sf, err := f.svc.File(f.admin, f.files["a2"].ID); err != nil || sf.Stored || sf.DeletedAt == nil {
			t.Fatalf("a2's file after its capture's delete with deleteFile: %+v, %v", sf, err)
		}
		wantRefused(t, "ownerTeamA: DeleteCapture b1", f.svc.DeleteCapture(owner, "", b1.ID, "", true), tripcap.ENOTFOUND)
	})
}

func TestAccessFiles(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		for name, want := range seen {
			t.Run(name, func(t *testing.T) {
				ctx := f.who[name]
				files, err := pages(t, "files", 1, func(cursor string) ([]*tripcap.StoredFile, string, error) {
					return f.svc.FindFiles(ctx, capturefile.FileQuery{Cursor: cursor, Limit: 1})
				})
				if want == nil {
					wantRefused(t, "FindFiles", err, tripcap.EFORBIDDEN)
					_, err = f.svc.File(ctx, f.files["a1"].ID)
					wantRefused(t, "File", err, tripcap.EFORBIDDEN)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var hosts []string
				for _, sf := range files {
					hosts = append(hosts, sf.HostName)
				}
				slices.Sort(hosts)
				if !slices.Equal(hosts, want) {
					t.Errorf("FindFiles hosts = %v, want %v", hosts, want)
				}
				for _, h := range fleet {
					_, errRec := f.svc.File(ctx, f.files[h.name].ID)
					_, _, errHost := f.svc.FindFiles(ctx, capturefile.FileQuery{Host: h.name})
					if slices.Contains(want, h.name) {
						if errRec != nil || errHost != nil {
							t.Errorf("file of %s: %v, %v", h.name, errRec, errHost)
						}
					} else {
						wantRefused(t, "File of "+h.name, errRec, tripcap.ENOTFOUND)
						wantRefused(t, "FindFiles of host "+h.name, errHost, tripcap.ENOTFOUND)
					}
				}
			})
		}

		// Packets need files/read at the file's host: a Capture File Reader at
		// xloc downloads x1's and a2's, not a1's (out of scope: not found);
		// readers download nothing (they see the file exists: forbidden).
		filesX := f.who["filesX"]
		for _, h := range fleet {
			rc, _, errStored := f.svc.OpenStoredFile(filesX, f.files[h.name].ID)
			if rc != nil {
				rc.Close()
			}
			rc2, _, errCapture := f.svc.OpenFile(filesX, "", f.caps[h.name][0].ID, "")
			if rc2 != nil {
				b, _ := io.ReadAll(rc2)
				rc2.Close()
				if string(b) != "packets of "+h.name {
					t.Errorf("filesX: OpenFile %s read %q", h.name, b)
				}
			}
			if slices.Contains(seen["filesX"], h.name) {
				if errStored != nil || errCapture != nil {
					t.Errorf("filesX: download of %s: %v, %v", h.name, errStored, errCapture)
				}
				continue
			}
			wantRefused(t, "filesX: OpenStoredFile "+h.name, errStored, tripcap.ENOTFOUND)
			wantRefused(t, "filesX: OpenFile "+h.name, errCapture, tripcap.ENOTFOUND)
		}
		for _, name := range []string{"readerAll", "readerA", "netA", "monAll", "none"} {
			_, _, err := f.svc.OpenStoredFile(f.who[name], f.files["a1"].ID)
			wantRefused(t, name+": OpenStoredFile", err, tripcap.EFORBIDDEN)
			_, _, err = f.svc.OpenFile(f.who[name], "", f.caps["a1"][0].ID, "")
			wantRefused(t, name+": OpenFile", err, tripcap.EFORBIDDEN)
			_, err = f.svc.DeleteFile(f.who[name], f.files["a1"].ID)
			wantRefused(t, name+": DeleteFile", err, tripcap.EFORBIDDEN)
		}
		_, err := f.svc.DeleteFile(filesX, f.files["x1"].ID)
		wantRefused(t, "filesX: DeleteFile", err, tripcap.EFORBIDDEN)

		// A deleted capture's files stay reachable by its id, for those who
		// may read them at its host only.
		for _, h := range []string{"x1", "a1"} {
			if err := f.svc.DeleteCapture(f.admin, "", f.caps[h][0].ID, "", false); err != nil {
				t.Fatal(err)
			}
		}
		if rc, _, err := f.svc.OpenFile(filesX, "", f.caps["x1"][0].ID, ""); err != nil {
			t.Errorf("filesX: OpenFile of deleted capture on x1: %v", err)
		} else {
			rc.Close()
		}
		_, _, err = f.svc.OpenFile(filesX, "", f.caps["a1"][0].ID, "")
		wantRefused(t, "filesX: OpenFile of deleted capture on a1", err, tripcap.ENOTFOUND)

		// Owner at team=a deletes a1's file, not x1's.
		owner := f.who["ownerTeamA"]
		if _, err := f.svc.DeleteFile(owner, f.files["a1"].ID); err != nil {
			t.Errorf("ownerTeamA: DeleteFile a1: %v", err)
		}
		_, err = f.svc.DeleteFile(owner, f.files["x1"].ID)
		wantRefused(t, "ownerTeamA: DeleteFile x1", err, tripcap.ENOTFOUND)

		// Files of a host since deleted: scope can no longer be told, so only
		// a grant at "*" covers them.
		if err := f.svc.DeleteHost(f.admin, "x1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.File(f.who["readerAll"], f.files["x1"].ID); err != nil {
			t.Errorf("readerAll: file of deleted host: %v", err)
		}
		_, err = f.svc.File(filesX, f.files["x1"].ID)
		wantRefused(t, "filesX: file of deleted host", err, tripcap.ENOTFOUND)
	})
}

func TestAccessStorage(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		if _, err := f.svc.FindStorageAccounts(f.who["readerAll"]); err != nil {
			t.Errorf("readerAll: FindStorageAccounts: %v", err)
		}
		// Storage accounts are not tied to a host: reading them needs a
		// scope covering the server's resource group, where they are.
		for _, name := range []string{"readerA", "netA", "filesX", "none", "ownerTeamA"} {
			_, err := f.svc.FindStorageAccounts(f.who[name])
			wantRefused(t, name+": FindStorageAccounts", err, tripcap.EFORBIDDEN)
		}
		cfg := f.svc.Config()
		for _, scope := range []string{"/subscriptions/" + cfg.SubscriptionID, "/subscriptions/" + strings.ToUpper(cfg.SubscriptionID) + "/resourceGroups/" + cfg.ResourceGroup} {
			reader := tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: "r", Kind: tripcap.PrincipalUser,
				Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.Scope(scope)}}})
			if _, err := f.svc.FindStorageAccounts(reader); err != nil {
				t.Errorf("reader at %s: FindStorageAccounts: %v", scope, err)
			}
		}
		other := tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: "o", Kind: tripcap.PrincipalUser,
			Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: tripcap.Scope("/subscriptions/" + cfg.SubscriptionID + "/resourceGroups/other")}}})
		_, err := f.svc.FindStorageAccounts(other)
		wantRefused(t, "reader of another group: FindStorageAccounts", err, tripcap.EFORBIDDEN)
		for _, name := range []string{"readerAll", "readerA", "netA", "monAll", "filesX", "none", "ownerTeamA"} {
			_, err := f.svc.AddStorageAccount(f.who[name], "more", "file://"+t.TempDir())
			wantRefused(t, name+": AddStorageAccount", err, tripcap.EFORBIDDEN)
			wantRefused(t, name+": DeleteStorageAccount", f.svc.DeleteStorageAccount(f.who[name], "more"), tripcap.EFORBIDDEN)
		}
	})
}

// TestAccessPagesPastOutOfScopeRows: 250 captures of b1, then a1's, then
// more of b1: a team=a reader's pages skip the store's pages of b1 without
// ending early, and its cursor resumes past them.
func TestAccessPagesPastOutOfScopeRows(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := newAccessFixture(t, store)
		create := func(host string, n int) {
			for range n {
				if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "c-" + tripcap.NewID(), Parameters: tripcap.PacketCaptureParameters{Target: host}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		create("b1", 250)
		create("a1", 3)
		create("b1", 250)
		create("a2", 1)
		got, err := pages(t, "captures", 4, func(cursor string) ([]*tripcap.PacketCapture, string, error) {
			return f.svc.FindCaptures(f.who["readerA"], "", "", cursor, 4)
		})
		if err != nil {
			t.Fatal(err)
		}
		// The fixture's six of team a (three each), "shared" on a2, and these four.
		if len(got) != 11 {
			t.Fatalf("readerA listed %d captures, want 11: %v", len(got), captureNames(got))
		}
		for i, c := range got {
			if c.HostID != f.hosts["a1"].ID && c.HostID != f.hosts["a2"].ID {
				t.Errorf("readerA listed %s of another host", c.Name)
			}
			if i > 0 && got[i-1].ID >= c.ID {
				t.Errorf("listing out of id order at %d", i)
			}
		}
	})
}
