package blobtest

import (
	"fmt"
	"go/build"
	"net"
	"path/filepath"
	"testing"

	"github.com/tripcap/tripcap/internal/testenv"
)

// NewVersityGWIn starts versitygw inside a network namespace (ip netns exec)
// on host:7070, for end-to-end tests whose hosts must reach it at one address.
func NewVersityGWIn(t testing.TB, netns, host string) *VersityGW {
	t.Helper()
	bin := findBinary(t, "versitygw", "VERSITYGW", filepath.Join(build.Default.GOPATH, "bin", "versitygw"))
	ip := testenv.RequireBinary(t, "ip")
	g := &VersityGW{AccessKey: "tripcap" + randomString(4), SecretKey: randomString(20), Dir: t.TempDir(), Endpoint: net.JoinHostPort(host, "7070")}
	args := []string{"netns", "exec", netns, bin, "--access", g.AccessKey, "--secret", g.SecretKey, "--port", g.Endpoint, "--region", "us-east-1", "--quiet", "posix", g.Dir}
	g.Server = startServer(t, "versitygw", ip, args, g.Endpoint, "")
	return g
}

// NewAzuriteIn starts azurite-blob inside a network namespace on host:10000.
func NewAzuriteIn(t testing.TB, netns, host string) *Azurite {
	t.Helper()
	testenv.RequireBinary(t, "node")
	bin := findBinary(t, "azurite-blob", "AZURITE_BLOB", "")
	ip := testenv.RequireBinary(t, "ip")
	a := &Azurite{Account: devAccountName, Key: devAccountKey, Dir: t.TempDir()}
	addr := net.JoinHostPort(host, "10000")
	a.BlobEndpoint = "http://" + addr + "/" + a.Account
	a.ConnectionString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;", a.Account, a.Key, a.BlobEndpoint)
	args := []string{"netns", "exec", netns, bin, "--blobHost", host, "--blobPort", "10000", "--location", a.Dir, "--skipApiVersionCheck", "--loose", "--disableProductStyleUrl", "--silent"}
	a.Server = startServer(t, "azurite-blob", ip, args, addr, "Azurite Blob service successfully closed")
	return a
}
