package arm_test

import (
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tripcap/tripcap"
)

// TestRoleAssignmentsNativeUnderGUID: an assignment made natively (its id
// no GUID) lists under a GUID name that GET and DELETE take back, as
// Remove-AzRoleAssignment needs; its tripcap id in the path works too. A
// Reader lists its own assignments without a filter, sees no one else's
// and may not delete them.
func TestRoleAssignmentsNativeUnderGUID(t *testing.T) {
	f := newAuthzFixture(t)
	_, as := f.clients(t, staticToken(f.admin))
	ctx := t.Context()
	scope := "/subscriptions/" + sub
	native, err := f.ids.AssignRole(f.owner, f.sp.ID, tripcap.RoleNetworkContributor, tripcap.Scope(scope))
	if err != nil {
		t.Fatal(err)
	}
	if tripcap.IsGUID(native.ID) {
		t.Fatalf("a native assignment's id %s is a GUID: the test proves nothing", native.ID)
	}
	pager := as.NewListForSubscriptionPager(nil)
	var name string
	for pager.More() {
		pg, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range pg.Value {
			if *a.Properties.PrincipalID == f.sp.ID {
				name = *a.Name
				if *a.ID != scope+"/providers/Microsoft.Authorization/roleAssignments/"+name {
					t.Errorf("id %s, name %s", *a.ID, name)
				}
			}
		}
	}
	if !tripcap.IsGUID(name) {
		t.Fatalf("the native assignment lists as %q, not under a GUID", name)
	}
	got, err := as.Get(ctx, scope, name, nil)
	if err != nil || *got.Name != name || *got.Properties.PrincipalID != f.sp.ID {
		t.Fatalf("get by its GUID: %+v %v", got, err)
	}
	byID, err := as.Get(ctx, scope, native.ID, nil)
	if err != nil || *byID.Name != name {
		t.Fatalf("get by its tripcap id: %+v %v", byID, err)
	}
	_, err = as.Get(ctx, scope, "not-a-guid-nor-an-id", nil)
	if st, code := respondCode(err); st != 400 || code != "InvalidRoleAssignmentId" {
		t.Fatalf("get by a name neither: %v", err)
	}

	_, ras := f.clients(t, f.readerCredential(t))
	rp := ras.NewListForSubscriptionPager(nil)
	var seen []string
	for rp.More() {
		pg, err := rp.NextPage(ctx)
		if err != nil {
			t.Fatalf("a Reader listing without a filter: %v", err)
		}
		for _, a := range pg.Value {
			seen = append(seen, *a.Properties.PrincipalID)
		}
	}
	if len(seen) != 1 || seen[0] != f.reader.ID {
		t.Fatalf("a Reader lists %v, want its own assignment only", seen)
	}
	if _, err := ras.Get(ctx, scope, name, nil); func() bool { st, _ := respondCode(err); return st != 404 }() {
		t.Fatalf("a Reader getting another's assignment: %v", err)
	}
	if _, err := ras.Delete(ctx, scope, name, nil); func() bool { st, code := respondCode(err); return st != 403 || code != "AuthorizationFailed" }() {
		t.Fatalf("a Reader deleting another's assignment: %v", err)
	}

	del, err := as.Delete(ctx, scope, name, nil)
	if err != nil || *del.Name != name {
		t.Fatalf("delete by its GUID: %+v %v", del, err)
	}
	left, err := f.ids.FindRoleAssignments(f.owner, f.sp.ID)
	if err != nil || len(left) != 0 {
		t.Fatalf("after delete: %+v %v", left, err)
	}
	if strings.ToLower(name) != name {
		t.Fatalf("name %s not in lower case", name)
	}
}

// readerCredential is the Reader's, signed in by azidentity through the
// Azure AD-shaped token endpoint.
func (f *authzFixture) readerCredential(t *testing.T) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(f.ids.TenantID(), f.reader.ClientID, f.reader.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.ts.URL}, Transport: f.ts.Client()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
