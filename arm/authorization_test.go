package arm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/arm"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/sqlite"
	"github.com/tripcap/tripcap/storetest"
)

type authzFixture struct {
	ts     *httptest.Server
	ids    *identity.Service
	store  *sqlite.Store
	admin  string // the bootstrap admin token
	owner  context.Context
	sp     *tripcap.PrincipalRecord
	reader *tripcap.PrincipalRecord
}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	store.SetSealer(storetest.NewSealer(t))
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := controlplane.New(store, controlplane.Config{}, log)
	go func() { _ = svc.Run(ctx) }()
	f := &authzFixture{store: store, owner: tripcap.NewContextWithPrincipal(ctx, &tripcap.Principal{Kind: tripcap.PrincipalSystem, Name: "test", Assignments: tripcap.OwnerEverywhere()})}
	if f.admin, err = svc.EnsureAdmin(ctx, filepath.Join(dir, "admin.token")); err != nil {
		t.Fatal(err)
	}
	f.ts = httptest.NewUnstartedServer(nil)
	f.ts.StartTLS()
	t.Cleanup(f.ts.Close)
	if f.ids, err = identity.New(store, identity.Config{Issuer: f.ts.URL, Password: identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}}, log); err != nil {
		t.Fatal(err)
	}
	svc.SetIdentities(f.ids)
	f.ts.Config.Handler = tchttp.NewServer(svc, log, tchttp.WithIdentity(f.ids), tchttp.WithARM(arm.New(log, arm.Services{Control: svc, Identity: f.ids})))
	if f.sp, err = f.ids.CreateServicePrincipal(f.owner, "automation"); err != nil {
		t.Fatal(err)
	}
	if f.reader, err = f.ids.CreateServicePrincipal(f.owner, "reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ids.AssignRole(f.owner, f.reader.ID, tripcap.RoleReader, tripcap.ScopeAll); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *authzFixture) clientOptions() *azarm.ClientOptions {
	return &azarm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Endpoint: f.ts.URL, Audience: "https://management.azure.com/"},
			}},
			Transport: f.ts.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableRPRegistration: true,
	}
}

// clients are the SDK's role clients with cred.
func (f *authzFixture) clients(t *testing.T, cred azcore.TokenCredential) (*armauthorization.RoleDefinitionsClient, *armauthorization.RoleAssignmentsClient) {
	t.Helper()
	defs, err := armauthorization.NewRoleDefinitionsClient(cred, f.clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	as, err := armauthorization.NewRoleAssignmentsClient(sub, cred, f.clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	return defs, as
}

func respondCode(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

// TestRoleDefinitionsSDK: armauthorization lists and gets tripcap's
// built-in roles under Azure's definition ids, filtered by name.
func TestRoleDefinitionsSDK(t *testing.T) {
	f := newAuthzFixture(t)
	defs, _ := f.clients(t, staticToken(f.admin))
	ctx := t.Context()
	scope := "/subscriptions/" + sub
	var names []string
	for pg := defs.NewListPager(scope, nil); pg.More(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			names = append(names, *d.Properties.RoleName)
			if *d.Properties.RoleType != "BuiltInRole" || *d.ID != scope+"/providers/Microsoft.Authorization/roleDefinitions/"+*d.Name {
				t.Errorf("definition %s: %s %s", *d.Properties.RoleName, *d.Properties.RoleType, *d.ID)
			}
		}
	}
	if len(names) != len(tripcap.RoleNames()) {
		t.Fatalf("roles %v", names)
	}
	filter := "roleName eq 'Contributor'"
	pg := defs.NewListPager(scope+"/resourceGroups/rg1", &armauthorization.RoleDefinitionsClientListOptions{Filter: &filter})
	page, err := pg.NextPage(ctx)
	if err != nil || len(page.Value) != 1 || *page.Value[0].Name != "b24988ac-6180-42a0-ab88-20f7382dd24c" {
		t.Fatalf("Contributor by name: %+v %v", page.Value, err)
	}
	perms := page.Value[0].Properties.Permissions[0].Actions
	for _, a := range perms {
		if *a == "tripcap/access/write" {
			t.Error("Contributor lists access/write")
		}
	}
	d, err := defs.Get(ctx, scope, "acdd72a7-3385-48ef-bd42-f606fba81ae7", nil)
	if err != nil || *d.Properties.RoleName != "Reader" {
		t.Fatalf("Reader by id: %+v %v", d, err)
	}
	_, err = defs.Get(ctx, scope, "00000000-0000-0000-0000-000000000001", nil)
	if st, code := respondCode(err); st != 404 || code != "RoleDefinitionDoesNotExist" {
		t.Fatalf("an unknown definition: %v", err)
	}
	bad := "roleName ne 'Reader'"
	_, err = defs.NewListPager(scope, &armauthorization.RoleDefinitionsClientListOptions{Filter: &bad}).NextPage(ctx)
	if st, code := respondCode(err); st != 400 || code != "InvalidFilter" {
		t.Fatalf("a filter not supported: %v", err)
	}
}

// TestRoleAssignmentsSDK: an Owner assigns a role at a resource group with
// the SDK (the name a GUID the client chose), gets, lists and deletes it;
// the assignment is tripcap's (the principal holds Reader at that ARM id);
// a Reader, signed in by azidentity, may list its own but not assign; bad
// input answers Azure's codes.
func TestRoleAssignmentsSDK(t *testing.T) {
	f := newAuthzFixture(t)
	_, as := f.clients(t, staticToken(f.admin))
	ctx := t.Context()
	rg := "/subscriptions/" + sub + "/resourceGroups/rg1"
	name := "5E7C9D1A-1B2C-4D3E-8F90-A1B2C3D4E5F6"
	readerDef := "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
	params := armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: &readerDef, PrincipalID: &f.sp.ID}}
	created, err := as.Create(ctx, rg, name, params, nil)
	if err != nil {
		t.Fatal(err)
	}
	lower := strings.ToLower(name)
	if *created.Name != lower || *created.ID != rg+"/providers/Microsoft.Authorization/roleAssignments/"+lower || *created.Properties.Scope != rg ||
		*created.Properties.PrincipalID != f.sp.ID || *created.Properties.PrincipalType != armauthorization.PrincipalTypeServicePrincipal {
		t.Fatalf("created %+v %+v", created.RoleAssignment, created.Properties)
	}
	got, err := f.ids.FindRoleAssignments(f.owner, f.sp.ID)
	if err != nil || len(got) != 1 || got[0].ID != lower || got[0].Role != tripcap.RoleReader || got[0].Scope != tripcap.Scope(rg) {
		t.Fatalf("tripcap's assignments: %+v %v", got, err)
	}
	// The same again is answered as it is; another role under the name is refused.
	if _, err := as.Create(ctx, rg, name, params, nil); err != nil {
		t.Fatalf("the same assignment again: %v", err)
	}
	ownerDef := "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	_, err = as.Create(ctx, rg, name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: &ownerDef, PrincipalID: &f.sp.ID}}, nil)
	if st, code := respondCode(err); st != 409 || code != "RoleAssignmentUpdateNotPermitted" {
		t.Fatalf("another role under the name: %v", err)
	}
	if _, err := as.Get(ctx, rg, name, nil); err != nil {
		t.Fatal(err)
	}
	_, err = as.Get(ctx, "/subscriptions/"+sub+"/resourceGroups/rg2", name, nil)
	if st, code := respondCode(err); st != 404 || code != "RoleAssignmentNotFound" {
		t.Fatalf("the name at another scope: %v", err)
	}

	// Listing: at the subscription (below it: found), at the group with
	// atScope() (found, and the Reader at "*" above as "/"), at another group (not).
	ids := func(pg interface {
		More() bool
	}, next func() ([]*armauthorization.RoleAssignment, error)) []string {
		var out []string
		for pg.More() {
			v, err := next()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range v {
				out = append(out, *a.Name+"@"+*a.Properties.Scope)
			}
		}
		return out
	}
	subPager := as.NewListForSubscriptionPager(nil)
	all := ids(subPager, func() ([]*armauthorization.RoleAssignment, error) {
		p, err := subPager.NextPage(ctx)
		return p.Value, err
	})
	atScope := "atScope()"
	rgPager := as.NewListForScopePager(rg, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: &atScope})
	atRG := ids(rgPager, func() ([]*armauthorization.RoleAssignment, error) {
		p, err := rgPager.NextPage(ctx)
		return p.Value, err
	})
	otherPager := as.NewListForResourceGroupPager("rg2", nil)
	other := ids(otherPager, func() ([]*armauthorization.RoleAssignment, error) {
		p, err := otherPager.NextPage(ctx)
		return p.Value, err
	})
	mine := lower + "@" + rg
	if !contains(all, mine) || !contains(atRG, mine) || contains(other, mine) || len(all) != 2 || !contains(atRG, "") {
		t.Fatalf("subscription %v, rg1 atScope %v, rg2 %v", all, atRG, other)
	}

	// A Reader signed in by azidentity (the Azure AD-shaped endpoint) may
	// not assign, and lists its own assignments with principalId eq.
	_, ras := f.clients(t, f.readerCredential(t))
	_, err = ras.Create(ctx, rg, "0f0e0d0c-0b0a-4908-8706-050403020100", params, nil)
	if st, code := respondCode(err); st != 403 || code != "AuthorizationFailed" {
		t.Fatalf("a Reader assigning: %v", err)
	}
	// The SDK sends the roleAssignments $filter unencoded (as Azure's
	// REST spec marks it), so a caller encodes its spaces.
	filter := "principalId%20eq%20'" + f.reader.ID + "'"
	readerPager := ras.NewListForSubscriptionPager(&armauthorization.RoleAssignmentsClientListForSubscriptionOptions{Filter: &filter})
	own := ids(readerPager, func() ([]*armauthorization.RoleAssignment, error) {
		p, err := readerPager.NextPage(ctx)
		return p.Value, err
	})
	if len(own) != 1 || !strings.HasSuffix(own[0], "@/") {
		t.Fatalf("the reader's own: %v", own)
	}

	// Bad input.
	for what, tc := range map[string]struct {
		name, def, principal string
		status               int
		code                 string
	}{
		"name not a GUID":   {"pc1", readerDef, f.sp.ID, 400, "InvalidRoleAssignmentId"},
		"unknown role":      {"1f0e0d0c-0b0a-4908-8706-050403020100", "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-0000-0000-000000000001", f.sp.ID, 400, "RoleDefinitionDoesNotExist"},
		"unknown principal": {"2f0e0d0c-0b0a-4908-8706-050403020100", readerDef, tripcap.NewID(), 400, "PrincipalNotFound"},
		"held already":      {"3f0e0d0c-0b0a-4908-8706-050403020100", readerDef, f.sp.ID, 409, "RoleAssignmentExists"},
	} {
		def, principal := tc.def, tc.principal
		_, err := as.Create(ctx, rg, tc.name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{RoleDefinitionID: &def, PrincipalID: &principal}}, nil)
		if st, code := respondCode(err); st != tc.status || code != tc.code {
			t.Errorf("%s: %v, want %d %s", what, err, tc.status, tc.code)
		}
	}

	// Delete: 200 with the assignment, then 204; tripcap's is gone.
	del, err := as.Delete(ctx, rg, name, nil)
	if err != nil || del.Name == nil || *del.Name != lower {
		t.Fatalf("delete: %+v %v", del, err)
	}
	if _, err := as.Delete(ctx, rg, name, nil); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if got, _ := f.ids.FindRoleAssignments(f.owner, f.sp.ID); len(got) != 0 {
		t.Fatalf("tripcap's assignments after delete: %+v", got)
	}
	_, err = as.Get(ctx, rg, name, nil)
	if st, code := respondCode(err); st != 404 || code != "RoleAssignmentNotFound" {
		t.Fatalf("get after delete: %v", err)
	}
	// No api-version the provider knows.
	req, _ := http.NewRequest("GET", f.ts.URL+rg+"/providers/Microsoft.Authorization/roleAssignments?api-version=2099-01-01", nil)
	req.Header.Set("Authorization", "Bearer "+f.admin)
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("an unknown api-version: %d", resp.StatusCode)
	}
}

// TestARMRefusesOtherAudience: a token this server signed for an audience
// it does not accept is refused on ARM as Azure refuses it (401
// InvalidAuthenticationTokenAudience, no challenge); the tenant's token for
// ARM is accepted.
func TestARMRefusesOtherAudience(t *testing.T) {
	f := newAuthzFixture(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	graph, err := identity.New(f.store, identity.Config{Issuer: f.ts.URL, Audience: "https://graph.microsoft.com/", Password: identity.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}}, log)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := graph.Token(t.Context(), identity.TokenRequest{GrantType: "client_credentials", ClientID: f.reader.ID, ClientSecret: f.reader.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	armTok, err := f.ids.AADToken(t.Context(), identity.AADTokenRequest{Tenant: f.ids.TenantID(), GrantType: "client_credentials", ClientID: f.reader.ID, ClientSecret: f.reader.ClientSecret, Resource: "https://management.core.windows.net/"})
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{foreign.AccessToken: 401, armTok.AccessToken: 200} {
		req, _ := http.NewRequest("GET", f.ts.URL+"/subscriptions/"+sub+"/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body arm.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%d %v, want %d", resp.StatusCode, resp.Header, want)
		}
		if want == 401 && (body.Error == nil || body.Error.Code != "InvalidAuthenticationTokenAudience" || !strings.Contains(body.Error.Message, "https://graph.microsoft.com/")) {
			t.Fatalf("body %+v", body.Error)
		}
	}
}

func contains(list []string, prefixOrItem string) bool {
	for _, s := range list {
		if s == prefixOrItem || prefixOrItem == "" && strings.HasSuffix(s, "@/") {
			return true
		}
	}
	return false
}

// TestParseFilter: the conditions Azure's clients send, joined by "and",
// and refusals of the rest.
func TestParseFilter(t *testing.T) {
	f, err := arm.ParseFilter("atScope() and assignedTo('a''b')")
	if err != nil || !f.AtScope || f.PrincipalID != "a'b" {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = arm.ParseFilter("roleName eq 'Network Contributor' and type eq 'BuiltInRole'")
	if err != nil || f.RoleName != "Network Contributor" || f.Type != "BuiltInRole" {
		t.Fatalf("%+v %v", f, err)
	}
	if f, err := arm.ParseFilter("principalId eq 'x and y'"); err != nil || f.PrincipalID != "x and y" {
		t.Fatalf("a quoted and: %+v %v", f, err)
	}
	for _, bad := range []string{"roleName ne 'x'", "principalId eq x", "principalId eq 'a' and principalId eq 'b'", "foo()", "roleName eq 'a'b'"} {
		if _, err := arm.ParseFilter(bad); err == nil || !strings.Contains(err.Error(), "InvalidFilter") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseFilter: any $filter parses or is a 400 InvalidFilter, never a
// panic; what parses has no condition but the known ones.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"atScope()", "assignedTo('x')", "roleName eq 'Reader' and type eq 'BuiltInRole'", "principalId eq ''''", " and ", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := arm.ParseFilter(s)
		if err != nil {
			var e *arm.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Code != "InvalidFilter" {
				t.Fatalf("%q: %v", s, err)
			}
		}
	})
}
