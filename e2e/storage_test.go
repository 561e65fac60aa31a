//go:build linux

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/internal/blobtest"
)

// storageLab is a lab whose server has three storage accounts: the file
// default, an S3 bucket on versitygw and an Azure Blob container on Azurite,
// both running in the control namespace at the lab's service address.
func storageLab(t *testing.T) (*lab, *blobtest.VersityGW, *blobtest.Azurite) {
	var gw *blobtest.VersityGW
	var az *blobtest.Azurite
	l := newLabWith(t, func(l *lab) {
		svc := l.net.ServiceAddr().String()
		gw = blobtest.NewVersityGWIn(t, l.ctl.Name, svc)
		az = blobtest.NewAzuriteIn(t, l.ctl.Name, svc)
		l.serverArgs = []string{
			"--storage", "local=file://" + filepath.Join(l.dir, "server", "storage"),
			"--storage", "s3=s3://captures/tripcap?endpoint=" + gw.Endpoint + "&insecure=true",
			"--storage", "blob=azblob://" + az.Account + "?endpoint=" + az.BlobEndpoint,
		}
		// The server's credentials; agents never see them.
		l.serverEnv = []string{"AWS_ACCESS_KEY_ID=" + gw.AccessKey, "AWS_SECRET_ACCESS_KEY=" + gw.SecretKey,
			"AZURE_STORAGE_CONNECTION_STRING=" + az.ConnectionString}
	})
	return l, gw, az
}

// TestStorageBackendsEndToEnd: one capture per backend on a test host, each
// also kept on the host; the stored object sits at Azure's path, is
// byte-identical to the host's copy, and downloads with a matching checksum.
func TestStorageBackendsEndToEnd(t *testing.T) {
	l, gw, az := storageLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	for _, b := range []string{"local", "s3", "blob"} {
		l.cli(nil, "capture", "create", "to-"+b, "--host", "h2", "--storage", b, "--file-path", "/var/captures/to-"+b+".cap",
			"--time-limit", "4s", "--filter", udpFilter("7001"))
	}
	for _, b := range []string{"local", "s3", "blob"} {
		l.eventually(b+" Running", 3*time.Second, func() bool { return l.capture("to-"+b).Status == tripcap.StatusRunning })
	}
	l.sendSized(h1, h2, 7001, 2000, 1000, 1)
	wantPath := map[string]string{
		"local": "file://" + filepath.Join(l.dir, "server", "storage") + "/subscriptions/",
		"s3":    "s3://captures/tripcap/subscriptions/",
		"blob":  az.BlobEndpoint + "/network-watcher-logs/subscriptions/",
	}
	for _, b := range []string{"local", "s3", "blob"} {
		name := "to-" + b
		l.eventually(name+" stored", 30*time.Second, func() bool {
			c := l.capture(name)
			return c.Status.Terminal() && len(c.Files) == 1 && c.Files[0].Stored
		})
		c := l.capture(name)
		if c.Status != tripcap.StatusStopped || len(c.Errors) > 0 {
			t.Errorf("%s: %s %v %s", name, c.Status, c.Errors, c.ErrorMessage)
		}
		if sp := c.Parameters.StorageLocation.StoragePath; !strings.HasPrefix(sp, wantPath[b]) || !strings.Contains(sp, "/providers/microsoft.compute/virtualmachines/h2/") {
			t.Errorf("%s: storagePath %s, want %s…", name, sp, wantPath[b])
		}
		hostCopy, err := os.ReadFile(filepath.Join(h2.capDir, name+".cap"))
		if err != nil {
			t.Fatalf("%s: the host's copy: %v", name, err)
		}
		downloaded, err := os.ReadFile(l.download(name)) // the CLI checks the SHA-256
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hostCopy, downloaded) || len(hostCopy) < 2000*1000 {
			t.Fatalf("%s: host copy (%d B) and download (%d B) differ", name, len(hostCopy), len(downloaded))
		}
		if n := packets(t, filepath.Join(h2.capDir, name+".cap")); n != 2000 {
			t.Errorf("%s: %d packets, want 2000", name, n)
		}
		if b == "s3" {
			inBucket, err := os.ReadFile(filepath.Join(gw.Dir, "captures", "tripcap", c.Files[0].Key))
			if err != nil || !bytes.Equal(inBucket, hostCopy) {
				t.Fatalf("the S3 object at %s: %v (%d B)", c.Files[0].Key, err, len(inBucket))
			}
		}
	}
}

// TestAgentKilledMidUpload: the agent dies after the first part of a
// three-part S3 upload; restarted, it resumes (the stored part is not sent
// again) and the object is complete.
func TestAgentKilledMidUpload(t *testing.T) {
	l, _, _ := storageLab(t)
	h1, h2 := l.addHost("h1"), l.addHost("h2")
	l.link(h1, h2)
	// A slow uplink, so the upload is still running when the agent dies.
	if _, err := h2.ns.Exec(t.Context(), "tc", "qdisc", "add", "dev", h2.ctlLink.B.Name, "root", "tbf", "rate", "20mbit", "burst", "64kb", "latency", "500ms"); err != nil {
		t.Fatal(err)
	}
	l.cli(nil, "capture", "create", "big", "--host", "h2", "--storage", "s3", "--time-limit", "120s", "--filter", udpFilter("7001"))
	l.eventually("Running", 3*time.Second, func() bool { return l.capture("big").Status == tripcap.StatusRunning })
	l.sendSized(h1, h2, 7001, 18000, 1200, 1) // ~22 MB: three 8 MiB parts
	l.cli(nil, "capture", "stop", "big")
	logPath := filepath.Join(l.dir, "agent-h2.log")
	l.eventually("the first part stored", 60*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte(`msg="upload progress"`)) && bytes.Contains(b, []byte("bytesStored=8388608"))
	})
	l.stopAgent(h2, syscall.SIGKILL)
	if _, err := h2.ns.Exec(t.Context(), "tc", "qdisc", "del", "dev", h2.ctlLink.B.Name, "root"); err != nil {
		t.Fatal(err)
	}
	l.startAgent(h2)
	l.eventually("stored after the restart", 60*time.Second, func() bool {
		c := l.capture("big")
		return len(c.Files) == 1 && c.Files[0].Stored
	})
	b, _ := os.ReadFile(logPath)
	if !bytes.Contains(b, []byte(`msg="resuming an interrupted upload"`)) {
		t.Fatal("the restarted agent did not resume the upload")
	}
	if n := packets(t, l.download("big")); n != 18000 {
		t.Fatalf("%d packets in the stored file, want 18000", n)
	}
}
