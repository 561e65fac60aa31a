package http_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	tchttp "github.com/tripcap/tripcap/http"
)

// TestScaleSetCaptureNativeAPI: the native API captures on a scale set
// (its resource id as the target) as ARM does: one session per instance.
func TestScaleSetCaptureNativeAPI(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for _, name := range []string{"web-0", "web-1"} {
		jt, err := f.admin.CreateJoinToken(ctx, time.Hour, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.admin.Enroll(ctx, tripcap.EnrollRequest{JoinToken: jt.Token, Name: name, Labels: map[string]string{tripcap.LabelScaleSet: "web"}}); err != nil {
			t.Fatal(err)
		}
	}
	set := tripcap.VMSSResourceID(f.host.SubscriptionID, f.host.ResourceGroup, "web")
	c, err := f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "pc", Parameters: tripcap.PacketCaptureParameters{Target: set,
		Scope: &tripcap.CaptureScope{Include: []string{"web-1", "WEB-0"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Parameters.TargetType != tripcap.TargetAzureVMSS || len(c.Sessions) != 2 || c.Sessions[0].InstanceID != "web-0" || c.Sessions[1].InstanceID != "web-1" {
		t.Fatalf("created: type %s, sessions %+v", c.Parameters.TargetType, c.Sessions)
	}
	all, err := f.admin.ListCaptures(ctx, "", "")
	if err != nil || len(all) != 1 || all[0].ID != c.ID {
		t.Fatalf("list: %v, %v", all, err)
	}
	got, err := f.admin.GetCapture(ctx, "", "pc")
	if err != nil || got.Status != tripcap.StatusNotStarted || len(got.Sessions) != 2 {
		t.Fatalf("get: %+v, %v", got, err)
	}
	session, err := f.admin.GetCapture(ctx, "", c.Sessions[1].CaptureID)
	if err != nil || session.ScaleSetID != c.ID || session.Parameters.Target != tripcap.VMResourceID(f.host.SubscriptionID, f.host.ResourceGroup, "web-1") {
		t.Fatalf("session: %+v, %v", session, err)
	}
	_, err = f.admin.CreateCapture(ctx, tchttp.CreateCaptureBody{Name: "bad", Parameters: tripcap.PacketCaptureParameters{Target: set,
		Scope: &tripcap.CaptureScope{Include: []string{"web1"}}}})
	if tripcap.ErrorCode(err) != tripcap.EINVALID {
		t.Fatalf("web1 is no instance of web: %v", err)
	}
	// Its files are its sessions': the download says where they are.
	dl := f.request(t, "GET", "/api/v1/captures/pc/file", f.token, nil)
	if e := errorBody(t, dl); dl.StatusCode != 400 || !strings.Contains(e.Message, c.Sessions[0].CaptureID) {
		t.Fatalf("download of the scale-set capture: %s %+v", dl.Status, e)
	}
	resp := f.request(t, "DELETE", "/api/v1/captures/pc", f.token, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("delete: %s", resp.Status)
	}
	if _, err := f.admin.GetCapture(ctx, "", c.Sessions[0].CaptureID); tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		t.Fatalf("session after delete: %v", err)
	}
}
