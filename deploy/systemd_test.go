package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var units = []string{"tripcap-server.service", "tripcap-agent.service"}

// requireTool finds a program the test needs: missing, the test skips on
// a laptop and fails under CI=true (scripts/install-deps installs it).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package systemd; scripts/install-deps installs it): %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// systemRoot makes a root directory for systemd-analyze: this system's
// units (the targets ours depend on), ours installed under /etc, and the
// release binary where ExecStart= expects it, so verify checks the units as
// they would load on a host, without touching the host.
func systemRoot(t *testing.T, unitText map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/local/bin", "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd")).CombinedOutput(); err != nil {
		t.Fatalf("copying the system's units: %v\n%s", err, out)
	}
	// A link, not a symlink: systemd resolves an absolute symlink inside --root.
	if out, err := exec.Command("cp", "-l", releaseBinary(t), filepath.Join(root, "usr/local/bin/tripcap")).CombinedOutput(); err != nil {
		if out, err := exec.Command("cp", releaseBinary(t), filepath.Join(root, "usr/local/bin/tripcap")).CombinedOutput(); err != nil {
			t.Fatalf("installing the binary: %v\n%s", err, out)
		}
		_ = out
	}
	for name, text := range unitText {
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readUnits(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		m[u] = string(b)
	}
	return m
}

// verify runs systemd-analyze verify; any complaint (it warns about an
// unknown key and still exits 0) is a failure.
func verify(t *testing.T, root string, names ...string) string {
	t.Helper()
	cmd := exec.Command(requireTool(t, "systemd-analyze"), append([]string{"verify", "--root=" + root}, names...)...)
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		out = []byte(err.Error())
	}
	return strings.TrimSpace(string(out))
}

// TestSystemdUnitsVerify: systemd-analyze verify accepts both units with
// nothing to say, and does say something of a unit with a mistake, so its
// silence means something. Their exposure (systemd-analyze security) is
// logged, and held below where it is now.
func TestSystemdUnitsVerify(t *testing.T) {
	text := readUnits(t)
	root := systemRoot(t, text)
	if out := verify(t, root, units...); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	broken := systemRoot(t, map[string]string{"tripcap-agent.service": strings.NewReplacer("NoNewPrivileges=yes", "NoNewPrivilege=yes",
		"/usr/local/bin/tripcap agent", "/usr/local/bin/tripcap-missing agent").Replace(text["tripcap-agent.service"])})
	if out := verify(t, broken, "tripcap-agent.service"); !strings.Contains(out, "Unknown key 'NoNewPrivilege'") || !strings.Contains(out, "tripcap-missing is not executable") {
		t.Fatalf("systemd-analyze verify of a broken unit said %q", out)
	}
	exposure := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for unit, most := range map[string]float64{"tripcap-server.service": 2.0, "tripcap-agent.service": 3.0} {
		out, err := exec.Command(requireTool(t, "systemd-analyze"), "security", "--offline=yes", "--root="+root, unit).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		level, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("systemd-analyze security %s: exposure %.1f (0 is best, 10 worst)", unit, level)
		if level > most {
			t.Errorf("%s: exposure %.1f, more than %.1f", unit, level, most)
		}
	}
}

// directives returns a unit's [Service] settings, each key's values in order.
func directives(text string) map[string][]string {
	m := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			m[k] = append(m[k], v)
		}
	}
	return m
}

// TestSystemdUnitsLeastPrivilege: the agent gets exactly the capabilities
// capture needs, the server none; both run unprivileged, read-only on the
// system, with their config file.
func TestSystemdUnitsLeastPrivilege(t *testing.T) {
	text := readUnits(t)
	server, agent := directives(text["tripcap-server.service"]), directives(text["tripcap-agent.service"])
	for unit, d := range map[string]map[string][]string{"server": server, "agent": agent} {
		for k, want := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
			"User": "tripcap", "SystemCallFilter": "@system-service", "RestrictSUIDSGID": "yes", "PrivateDevices": "yes"} {
			if !slices.Contains(d[k], want) {
				t.Errorf("%s: %s=%v, want %s", unit, k, d[k], want)
			}
		}
		if exec := d["ExecStart"]; len(exec) != 1 || !strings.Contains(exec[0], "/usr/local/bin/tripcap "+unit+" --config /etc/tripcap/"+unit+".yaml") {
			t.Errorf("%s: ExecStart=%v", unit, exec)
		}
	}
	for k, want := range map[string]string{"CapabilityBoundingSet": "", "AmbientCapabilities": ""} {
		if !slices.Equal(server[k], []string{want}) {
			t.Errorf("server: %s=%v, want empty", k, server[k])
		}
	}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		if !slices.Equal(agent[k], []string{"CAP_NET_RAW CAP_NET_ADMIN"}) {
			t.Errorf("agent: %s=%v, want CAP_NET_RAW CAP_NET_ADMIN only", k, agent[k])
		}
	}
	if got := agent["RestrictAddressFamilies"]; !slices.Equal(got, []string{"AF_PACKET AF_NETLINK AF_INET AF_INET6 AF_UNIX"}) {
		t.Errorf("agent: RestrictAddressFamilies=%v", got)
	}
	if got := server["RestrictAddressFamilies"]; !slices.Equal(got, []string{"AF_INET AF_INET6 AF_UNIX"}) {
		t.Errorf("server: RestrictAddressFamilies=%v", got)
	}
	if !slices.Contains(agent["ReadWritePaths"], "/var/captures") || !slices.Contains(agent["StateDirectory"], "tripcap") {
		t.Errorf("agent: the capture and state directories are not writable: %v %v", agent["ReadWritePaths"], agent["StateDirectory"])
	}
}

// TestSystemdUserAndDirectories: the sysusers and tmpfiles snippets the
// units rely on create the tripcap user and the capture directory, applied
// to a scratch root by systemd's own tools.
func TestSystemdUserAndDirectories(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	if out, err := exec.Command(requireTool(t, "systemd-sysusers"), "--root="+root, abs("systemd/tripcap.sysusers.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "tripcap:x:") || !strings.Contains(string(passwd), ":/usr/sbin/nologin") {
		t.Fatalf("passwd: %s", passwd)
	}
	if out, err := exec.Command(requireTool(t, "systemd-tmpfiles"), "--root="+root, "--create", abs("systemd/tripcap.tmpfiles.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(root, "var/captures"))
	if err != nil || st.Mode().Perm() != 0o750 {
		t.Fatalf("/var/captures: %v %v", st, err)
	}
}
