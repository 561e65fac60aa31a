//go:build linux

package afpacket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// metadataCommandTimeout bounds each command the metadata collector runs,
// metadataTimeout the whole collection.
const (
	metadataCommandTimeout = 5 * time.Second
	metadataTimeout        = 15 * time.Second
)

// metadataOutputLimit bounds what is kept of each section.
const metadataOutputLimit = 4 << 20

// HostMetadata is the host's network state stored next to a capture when
// the session asks for includeMetadata.
type HostMetadata struct {
	CollectedAt time.Time         `json:"collectedAt"`
	Hostname    string            `json:"hostname"`
	Interfaces  []MetadataIface   `json:"interfaces"`
	Sections    []MetadataSection `json:"sections"`
}

// MetadataIface is an interface and its addresses, read from the kernel.
type MetadataIface struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	MTU       int      `json:"mtu"`
	MAC       string   `json:"mac,omitempty"`
	Flags     string   `json:"flags"`
	Addresses []string `json:"addresses,omitempty"`
}

// MetadataSection is the output of one fixed command or kernel file.
type MetadataSection struct {
	Name string `json:"name"`
	// Source is the command line run (fixed argv, never a shell) or the
	// kernel file read.
	Source    []string `json:"source"`
	Output    string   `json:"output,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// metadataSource is one thing the collector reads: a command or a file.
type metadataSource struct {
	name string
	argv []string // a command, run without a shell
	file string   // or a kernel file
}

// metadataSources are fixed: nothing in them comes from a user.
func metadataSources() []metadataSource {
	return []metadataSource{
		{name: "addresses", argv: []string{"ip", "-json", "address", "show"}},
		{name: "routes", argv: []string{"ip", "-json", "route", "show", "table", "all"}},
		{name: "routes6", argv: []string{"ip", "-6", "-json", "route", "show", "table", "all"}},
		{name: "rules", argv: []string{"ip", "-json", "rule", "show"}},
		{name: "neighbours", argv: []string{"ip", "-json", "neighbour", "show"}},
		{name: "links", argv: []string{"ip", "-json", "-statistics", "link", "show"}},
		{name: "iptables", argv: []string{"iptables-save", "-c"}},
		{name: "ip6tables", argv: []string{"ip6tables-save", "-c"}},
		{name: "nftables", argv: []string{"nft", "list", "ruleset"}},
		{name: "sockets", argv: []string{"ss", "-s"}},
		{name: "sockets-list", argv: []string{"ss", "-tuanpe"}},
		{name: "sockstat", file: "/proc/net/sockstat"},
		{name: "sockstat6", file: "/proc/net/sockstat6"},
		{name: "ipv4-routes-kernel", file: "/proc/net/route"},
		{name: "ipv6-routes-kernel", file: "/proc/net/ipv6_route"},
		{name: "arp-kernel", file: "/proc/net/arp"},
		{name: "netdev", file: "/proc/net/dev"},
		{name: "snmp", file: "/proc/net/snmp"},
	}
}

// collectMetadata gathers the host's network state. A missing tool or an
// unreadable file is recorded in its section, not returned as an error.
func collectMetadata(ctx context.Context) HostMetadata {
	md := HostMetadata{CollectedAt: time.Now().UTC()}
	md.Hostname, _ = os.Hostname()
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifc := range ifs {
			mi := MetadataIface{Name: ifc.Name, Index: ifc.Index, MTU: ifc.MTU, MAC: ifc.HardwareAddr.String(), Flags: ifc.Flags.String()}
			if addrs, err := ifc.Addrs(); err == nil {
				for _, a := range addrs {
					mi.Addresses = append(mi.Addresses, a.String())
				}
			}
			md.Interfaces = append(md.Interfaces, mi)
		}
	}
	for _, src := range metadataSources() {
		md.Sections = append(md.Sections, collectSection(ctx, src))
	}
	return md
}

func collectSection(ctx context.Context, src metadataSource) MetadataSection {
	sec := MetadataSection{Name: src.name}
	var out []byte
	var err error
	if src.file != "" {
		sec.Source = []string{src.file}
		out, err = os.ReadFile(src.file)
	} else {
		sec.Source = src.argv
		out, err = runFixed(ctx, src.argv)
	}
	if len(out) > metadataOutputLimit {
		out, sec.Truncated = out[:metadataOutputLimit], true
	}
	sec.Output = string(out)
	if err != nil {
		sec.Error = err.Error()
	}
	return sec
}

// metadataPath is where the collector looks for its tools: the system's
// directories, not whatever PATH the agent was started with.
const metadataPath = "/usr/sbin:/usr/bin:/sbin:/bin"

// runFixed runs argv directly (no shell), with a timeout and an empty stdin.
func runFixed(ctx context.Context, argv []string) ([]byte, error) {
	var bin string
	for _, dir := range strings.Split(metadataPath, ":") {
		if st, err := os.Stat(dir + "/" + argv[0]); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			bin = dir + "/" + argv[0]
			break
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("%s is not installed", argv[0])
	}
	ctx, cancel := context.WithTimeout(ctx, metadataCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = []string{"PATH=" + metadataPath, "LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && stderr.Len() > 0 {
			return out, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		return out, err
	}
	return out, nil
}

// metadataName is where a session's metadata goes: beside its first file.
func metadataName(first string) string {
	for i := len(first) - 1; i >= 0 && first[i] != '/'; i-- {
		if first[i] == '.' {
			return first[:i] + tripcap.MetadataFileSuffix
		}
	}
	return first + tripcap.MetadataFileSuffix
}

// encodeMetadata renders the metadata as indented JSON.
func encodeMetadata(md HostMetadata) ([]byte, error) {
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding host metadata: %w", err)
	}
	return append(b, '\n'), nil
}
