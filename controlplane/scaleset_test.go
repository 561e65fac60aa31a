package controlplane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/internal/teststore"
)

// scaleSetFleet enrolls the hosts of the scale-set tests: web-0..2 in
// scale set web of scaleSetSub/rg1, db-0 in db there, web-9 in a scale set web of
// another resource group, and solo in none.
func scaleSetFleet(t *testing.T, f *fixture) (agents map[string]context.Context, hosts map[string]*tripcap.Host) {
	t.Helper()
	agents, hosts = map[string]context.Context{}, map[string]*tripcap.Host{}
	for _, h := range []struct{ name, set, rg, team string }{
		{"web-0", "web", "rg1", "a"}, {"web-1", "web", "rg1", "a"}, {"web-2", "web", "rg1", "b"},
		{"db-0", "db", "rg1", "a"}, {"web-9", "web", "rg2", "a"}, {"solo", "", "rg1", "a"},
	} {
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{tripcap.LabelSubscription: scaleSetSub, tripcap.LabelResourceGroup: h.rg, "team": h.team}
		if h.set != "" {
			labels[tripcap.LabelScaleSet] = h.set
		}
		resp, err := f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: h.name, Location: "westeurope", Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.Authenticate(context.Background(), resp.Credential)
		if err != nil {
			t.Fatal(err)
		}
		agents[h.name], hosts[h.name] = tripcap.NewContextWithPrincipal(f.admin, p), resp.Host
	}
	return agents, hosts
}

// scaleSetSub is the hosts' subscription (a GUID, as enrollment demands).
const scaleSetSub = "5e7c9d1a-1b2c-4d3e-8f90-a1b2c3d4e5f6"

var webSet = tripcap.VMSSResourceID(scaleSetSub, "rg1", "web")

// assigned returns the ids of the captures an agent is told to run.
func assigned(t *testing.T, f *fixture, agent context.Context) []string {
	t.Helper()
	a, err := f.svc.Assignments(agent, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range a.Assignments {
		if x.Desired == tripcap.DesiredRunning {
			ids = append(ids, x.ID)
		}
	}
	return ids
}

func instances(c *tripcap.PacketCapture) string {
	var ids []string
	for _, s := range c.Sessions {
		ids = append(ids, s.InstanceID+"="+string(s.Status))
	}
	return strings.Join(ids, " ")
}

func TestScaleSets(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		scaleSetFleet(t, f)
		sets, err := f.svc.FindScaleSets(f.admin, strings.ToUpper(scaleSetSub), "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ss := range sets {
			var names []string
			for _, h := range ss.Instances {
				names = append(names, h.Name)
			}
			got = append(got, ss.ResourceGroup+"/"+ss.Name+":"+strings.Join(names, ",")+"@"+ss.Location)
		}
		want := []string{"rg1/db:db-0@westeurope", "rg1/web:web-0,web-1,web-2@westeurope", "rg2/web:web-9@westeurope"}
		if !slices.Equal(got, want) {
			t.Fatalf("scale sets: %v, want %v", got, want)
		}
		ss, err := f.svc.FindScaleSet(f.admin, scaleSetSub, "RG1", "WEB")
		if err != nil || len(ss.Instances) != 3 || ss.ResourceID() != webSet {
			t.Fatalf("scale set by name, in another case: %+v, %v", ss, err)
		}
		// A scale set's name is a resource name.
		jt, err := f.svc.CreateJoinToken(f.admin, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Enroll(context.Background(), tripcap.EnrollRequest{JoinToken: jt.Token, Name: "odd", Labels: map[string]string{tripcap.LabelScaleSet: "a/b"}})
		wantCode(t, err, tripcap.EINVALID, "labels.azure.scaleSet")
		_, err = f.svc.FindScaleSet(f.admin, scaleSetSub, "rg1", "nope")
		wantCode(t, err, tripcap.ENOTFOUND, "azure.scaleSet=nope")
		// A reader of team a sees the instances it may read, and only those.
		teamA := tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: "ra", Kind: tripcap.PrincipalUser,
			Assignments: []tripcap.RoleAssignment{{Role: tripcap.RoleReader, Scope: "label:team=a"}}})
		ss, err = f.svc.FindScaleSet(teamA, scaleSetSub, "rg1", "web")
		if err != nil || len(ss.Instances) != 2 {
			t.Fatalf("scale set as team a's reader: %+v, %v", ss, err)
		}
	})
}

// TestScaleSetCaptureLifecycle: a capture of a scale set is one session
// per selected instance; its status is theirs, and stopping and deleting
// it reach each one.
func TestScaleSetCaptureLifecycle(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		agents, hosts := scaleSetFleet(t, f)
		c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{
			Target: strings.ToLower(webSet), Scope: &tripcap.CaptureScope{Exclude: []string{"WEB-2"}}, TimeLimitInSeconds: 30}})
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsScaleSet() || c.Parameters.TargetType != tripcap.TargetAzureVMSS || c.Status != tripcap.StatusNotStarted {
			t.Fatalf("created: %+v", c)
		}
		if got := instances(c); got != "web-0=NotStarted web-1=NotStarted" {
			t.Fatalf("sessions: %s", got)
		}
		folder := "subscriptions/" + scaleSetSub + "/resourcegroups/rg1/providers/microsoft.compute/virtualmachinescalesets/web/"
		if !strings.HasSuffix(strings.TrimSuffix(c.Parameters.StorageLocation.StoragePath, "/"), strings.TrimSuffix(folder, "/")) {
			t.Fatalf("storagePath %q: want the scale set's folder %s", c.Parameters.StorageLocation.StoragePath, folder)
		}
		for _, s := range c.Sessions {
			if !strings.Contains(s.StoragePath, folder+"virtualmachines/"+s.InstanceID+"/") || !strings.HasSuffix(s.StoragePath, ".cap") {
				t.Fatalf("session %s storagePath %q: want a .cap under %svirtualmachines/%s/", s.InstanceID, s.StoragePath, folder, s.InstanceID)
			}
		}
		session := map[string]string{}
		for _, s := range c.Sessions {
			session[s.InstanceID] = s.CaptureID
		}
		for name, want := range map[string][]string{"web-0": {session["web-0"]}, "web-1": {session["web-1"]}, "web-2": nil, "web-9": nil} {
			if got := assigned(t, f, agents[name]); !slices.Equal(got, want) {
				t.Fatalf("%s runs %v, want %v", name, got, want)
			}
		}
		sess, err := f.svc.FindCapture(f.admin, "", session["web-0"])
		if err != nil || sess.ScaleSetID != c.ID || sess.HostID != hosts["web-0"].ID || sess.Parameters.Target != hosts["web-0"].ResourceID() || sess.Parameters.Scope != nil {
			t.Fatalf("session by id: %+v, %v", sess, err)
		}

		// Listed: the scale-set capture, not its sessions; a host's
		// listing has its session.
		all, _, err := f.svc.FindCaptures(f.admin, "", "", "", 0)
		if err != nil || len(all) != 1 || all[0].ID != c.ID || len(all[0].Sessions) != 2 {
			t.Fatalf("listing: %d captures, %v", len(all), err)
		}
		mine, _, err := f.svc.FindCaptures(f.admin, "", "web-1", "", 0)
		if err != nil || len(mine) != 1 || mine[0].ID != session["web-1"] {
			t.Fatalf("web-1's captures: %v, %v", mine, err)
		}
		// The name is the scale-set capture's in its watcher.
		_, err = f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: "solo"}})
		wantCode(t, err, tripcap.ECONFLICT, "pc")

		// Running while any runs; counters add up.
		start := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := f.svc.Report(agents["web-0"], []tripcap.SessionReport{{CaptureID: session["web-0"], Status: tripcap.StatusRunning, StartTime: &start,
			Stats: tripcap.CaptureStats{Packets: 5, Bytes: 500}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Report(agents["web-1"], []tripcap.SessionReport{{CaptureID: session["web-1"], Status: tripcap.StatusRunning, StartTime: new(start.Add(time.Second)),
			Stats: tripcap.CaptureStats{Packets: 2, Bytes: 200}}}); err != nil {
			t.Fatal(err)
		}
		st, err := f.svc.QueryStatus(f.admin, "NetworkWatcher_westeurope", "pc")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != tripcap.StatusRunning || st.Stats.Packets != 7 || st.Stats.Bytes != 700 || st.CaptureStartTime == nil || !st.CaptureStartTime.Equal(start) {
			t.Fatalf("status while running: %s, %+v, start %v", st.Status, st.Stats, st.CaptureStartTime)
		}

		if running, _, err := f.svc.ListCaptures(f.admin, controlplane.CaptureQuery{ActiveOnly: true, NewestFirst: true, Limit: 10}); err != nil || len(running) != 1 || running[0].ID != c.ID {
			t.Fatalf("running: %v, %v; want the scale-set capture", running, err)
		}

		// Stop reaches each session; the scale-set capture is Stopped once
		// all are.
		stopped, err := f.svc.StopCapture(f.admin, "", "pc", c.ETag())
		if err != nil {
			t.Fatal(err)
		}
		if stopped.Status != tripcap.StatusRunning {
			t.Fatalf("right after stop: %s, want Running until the agents report", stopped.Status)
		}
		for _, name := range []string{"web-0", "web-1"} {
			if got := assigned(t, f, agents[name]); len(got) != 0 {
				t.Fatalf("%s still told to run %v after stop", name, got)
			}
			if _, err := f.svc.Report(agents[name], []tripcap.SessionReport{{CaptureID: session[name], Status: tripcap.StatusStopped, StopReason: tripcap.StopManuallyStopped,
				StopTime: new(time.Now().UTC())}}); err != nil {
				t.Fatal(err)
			}
		}
		st, err = f.svc.FindCapture(f.admin, "", "pc")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != tripcap.StatusStopped || st.StopReason != tripcap.StopManuallyStopped || st.CaptureStopTime == nil || instances(st) != "web-0=Stopped web-1=Stopped" {
			t.Fatalf("after the sessions stopped: %s %q %v [%s]", st.Status, st.StopReason, st.CaptureStopTime, instances(st))
		}
		// Not among the captures running (the console's overview) once its
		// sessions have ended.
		if running, _, err := f.svc.ListCaptures(f.admin, controlplane.CaptureQuery{ActiveOnly: true, NewestFirst: true, Limit: 10}); err != nil || len(running) != 0 {
			t.Fatalf("running after the sessions stopped: %d captures, %v", len(running), err)
		}

		// Delete takes the sessions with it, and frees the name.
		if err := f.svc.DeleteCapture(f.admin, "", "pc", "", false); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.FindCapture(f.admin, "", "pc")
		wantCode(t, err, tripcap.ENOTFOUND, "pc")
		_, err = f.svc.FindCapture(f.admin, "", session["web-1"])
		wantCode(t, err, tripcap.ENOTFOUND, session["web-1"])
		if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{
			Target: webSet, TargetType: tripcap.TargetAzureVMSS, Scope: &tripcap.CaptureScope{Include: []string{"web-2"}}}}); err != nil {
			t.Fatal(err)
		}
		if got := assigned(t, f, agents["web-2"]); len(got) != 1 {
			t.Fatalf("web-2 runs %v, want its session", got)
		}
		// Deleting one that never started ends its sessions at once.
		if err := f.svc.DeleteCapture(f.admin, "", "pc", "", false); err != nil {
			t.Fatal(err)
		}
		if got := assigned(t, f, agents["web-2"]); len(got) != 0 {
			t.Fatalf("web-2 still runs %v", got)
		}
	})
}

// TestScaleSetCaptureErrors: each error names the field and the reason.
func TestScaleSetCaptureErrors(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		_, hosts := scaleSetFleet(t, f)
		create := func(p tripcap.PacketCaptureParameters) error {
			_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: p})
			return err
		}
		for _, tc := range []struct {
			name string
			p    tripcap.PacketCaptureParameters
			code string
			msg  string
		}{
			{"unknown instance", tripcap.PacketCaptureParameters{Target: webSet, Scope: &tripcap.CaptureScope{Include: []string{"web-0", "web-7"}}}, tripcap.EINVALID, `scope.include[1]: "web-7" is not an instance of scale set web (instances: web-0, web-1, web-2)`},
			{"instance of another set", tripcap.PacketCaptureParameters{Target: webSet, Scope: &tripcap.CaptureScope{Exclude: []string{"web-9"}}}, tripcap.EINVALID, `scope.exclude[0]`},
			{"nothing left", tripcap.PacketCaptureParameters{Target: webSet, Scope: &tripcap.CaptureScope{Include: []string{"web-1"}, Exclude: []string{hosts["web-1"].ResourceID()}}}, tripcap.EINVALID, "scope: selects no instance"},
			{"no such set", tripcap.PacketCaptureParameters{Target: tripcap.VMSSResourceID(scaleSetSub, "rg1", "nope")}, tripcap.EINVALID, "target: no scale set"},
			{"VM type, set id", tripcap.PacketCaptureParameters{Target: webSet, TargetType: tripcap.TargetAzureVM}, tripcap.EINVALID, "targetType"},
			{"set type, VM id", tripcap.PacketCaptureParameters{Target: hosts["web-0"].ResourceID(), TargetType: tripcap.TargetAzureVMSS}, tripcap.EINVALID, "target"},
			{"scope on a VM", tripcap.PacketCaptureParameters{Target: "solo", Scope: &tripcap.CaptureScope{Include: []string{"solo"}}}, tripcap.EINVALID, "scope: selects instances of a scale set"},
			{"wrong watcher", tripcap.PacketCaptureParameters{Target: webSet}, "", ""},
		} {
			if tc.code == "" {
				continue
			}
			err := create(tc.p)
			if tripcap.ErrorCode(err) != tc.code || !strings.Contains(tripcap.ErrorMessage(err), tc.msg) {
				t.Errorf("%s: %v, want %s mentioning %q", tc.name, err, tc.code, tc.msg)
			}
		}
		_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Watcher: "NetworkWatcher_eastus", Parameters: tripcap.PacketCaptureParameters{Target: webSet}})
		wantCode(t, err, tripcap.EINVALID, "watched by NetworkWatcher_westeurope")

		// An instance whose agent is away is named.
		if _, err := store.MarkHostsOffline(t.Context(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		err = create(tripcap.PacketCaptureParameters{Target: webSet})
		wantCode(t, err, tripcap.EUNAVAILABLE, "instances web-0, web-1, web-2 of scale set web are Offline")
		// Nothing was created by any of these.
		all, _, err := f.svc.FindCaptures(f.admin, "", "", "", 0)
		if err != nil || len(all) != 0 {
			t.Fatalf("after refusals: %d captures, %v", len(all), err)
		}
	})
}

// TestScaleSetCaptureLimit: the sessions count against the watcher's
// limit, all or none.
func TestScaleSetCaptureLimit(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{MaxCapturesPerWatcher: 2})
		scaleSetFleet(t, f)
		_, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: webSet}})
		wantCode(t, err, tripcap.ELIMIT, "NetworkWatcher_westeurope")
		if _, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: webSet,
			Scope: &tripcap.CaptureScope{Exclude: []string{"web-2"}}}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestScaleSetCaptureAccess: a scale-set capture is authorized at each of
// its instances, as a capture of each alone would be.
func TestScaleSetCaptureAccess(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		agents, _ := scaleSetFleet(t, f)
		as := func(role tripcap.RoleName, scope tripcap.Scope) context.Context {
			return tripcap.NewContextWithPrincipal(context.Background(), &tripcap.Principal{ID: string(role) + string(scope), Kind: tripcap.PrincipalUser,
				Assignments: []tripcap.RoleAssignment{{Role: role, Scope: scope}}})
		}
		netA := as(tripcap.RoleNetworkContributor, "label:team=a")
		readerAll := as(tripcap.RoleReader, tripcap.ScopeAll)

		// The admin's capture of the whole set has an instance of team b:
		// team a's contributor does not see it, a reader cannot stop it.
		all, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "all", Parameters: tripcap.PacketCaptureParameters{Target: webSet}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.FindCapture(netA, "", "all")
		wantCode(t, err, tripcap.ENOTFOUND, "all")
		_, err = f.svc.StopCapture(netA, "", all.ID, "")
		wantCode(t, err, tripcap.ENOTFOUND, all.ID)
		if caps, _, err := f.svc.FindCaptures(netA, "", "", "", 0); err != nil || len(caps) != 0 {
			t.Fatalf("team a lists %d captures, %v", len(caps), err)
		}
		if _, err := f.svc.FindCapture(readerAll, "", "all"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.StopCapture(readerAll, "", "all", "")
		wantCode(t, err, tripcap.EFORBIDDEN, "")

		// Team a's contributor captures the instances it may: web-0 and web-1.
		mine, err := f.svc.CreateCapture(netA, controlplane.CreateCaptureRequest{Name: "mine", Parameters: tripcap.PacketCaptureParameters{Target: webSet}})
		if err != nil {
			t.Fatal(err)
		}
		if got := instances(mine); got != "web-0=NotStarted web-1=NotStarted" {
			t.Fatalf("team a's capture: %s", got)
		}
		_, err = f.svc.CreateCapture(netA, controlplane.CreateCaptureRequest{Name: "b", Parameters: tripcap.PacketCaptureParameters{Target: webSet,
			Scope: &tripcap.CaptureScope{Include: []string{"web-2"}}}})
		wantCode(t, err, tripcap.EINVALID, `"web-2" is not an instance`)
		if caps, _, err := f.svc.FindCaptures(netA, "", "", "", 0); err != nil || len(caps) != 1 || caps[0].Name != "mine" {
			t.Fatalf("team a lists %v, %v", caps, err)
		}
		if err := f.svc.DeleteCapture(netA, "", "mine", "", false); err != nil {
			t.Fatal(err)
		}
		if got := assigned(t, f, agents["web-0"]); len(got) != 1 {
			t.Fatalf("web-0 runs %v, want the admin's session only", got)
		}
	})
}

// TestScaleSetCaptureDeleteFiles: deleting a scale-set capture with its
// files deletes every session's stored files.
func TestScaleSetCaptureDeleteFiles(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		agents, _ := scaleSetFleet(t, f)
		c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: webSet,
			Scope: &tripcap.CaptureScope{Include: []string{"web-0", "web-1"}}}})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, s := range c.Sessions {
			data := []byte("packets of " + s.InstanceID)
			sum := sha256.Sum256(data)
			if _, err := f.svc.UploadFile(agents[s.InstanceID], s.CaptureID, "f.cap", hex.EncodeToString(sum[:]), bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			m, err := f.svc.FindCapture(f.admin, "", s.CaptureID)
			if err != nil || len(m.Files) != 1 || !m.Files[0].Stored {
				t.Fatalf("%s's file: %+v, %v", s.InstanceID, m, err)
			}
			keys = append(keys, m.Files[0].Key)
		}
		if err := f.svc.DeleteCapture(f.admin, "", "pc", "", true); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, _, err := f.blobs.Open(t.Context(), k); err == nil {
				t.Fatalf("%s is still stored", k)
			}
		}
	})
}

// TestScaleSetCaptureValidateOnly: checking a scale-set capture (what the
// console's form does as it is typed) stores nothing, as for a VM.
func TestScaleSetCaptureValidateOnly(t *testing.T) {
	teststore.Each(t, func(t *testing.T, store tripcap.Store) {
		f := fixtureOn(t, store, controlplane.Config{})
		scaleSetFleet(t, f)
		c, err := f.svc.CreateCapture(f.admin, controlplane.CreateCaptureRequest{Name: "pc", ValidateOnly: true, Parameters: tripcap.PacketCaptureParameters{
			Target: webSet, TimeLimitInSeconds: 30}})
		if err != nil || c != nil {
			t.Fatalf("validating: %+v, %v", c, err)
		}
		if got, _, err := f.svc.FindCaptures(f.admin, "", "", "", 0); err != nil || len(got) != 0 {
			t.Fatalf("validating stored %d captures (%v)", len(got), err)
		}
	})
}
