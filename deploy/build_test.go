package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// repoRoot is the repository, one level up from this package.
const repoRoot = ".."

var release struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// releaseBinary builds tripcap once per test run with scripts/build, as a
// release is built, and returns its path.
func releaseBinary(t *testing.T) string {
	t.Helper()
	release.once.Do(func() {
		if release.dir, release.err = os.MkdirTemp("", "tripcap-release-"); release.err != nil {
			return
		}
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "build"), release.dir)
		release.out, release.err = cmd.CombinedOutput()
		release.bin = filepath.Join(release.dir, "tripcap")
	})
	if release.err != nil {
		t.Fatalf("scripts/build: %v\n%s", release.err, release.out)
	}
	return release.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if release.dir != "" {
		os.RemoveAll(release.dir)
	}
	os.Exit(code)
}

// requireStatic fails unless the ELF file at path is statically linked:
// no program interpreter and no shared library needed, which is what a
// FROM scratch image and any Linux host need of it.
func requireStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (program header %s)", path, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %v", path, libs)
	}
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestBuildScript: scripts/build makes a static binary whose --version
// names the commit it was built from and that commit's date.
func TestBuildScript(t *testing.T) {
	bin := releaseBinary(t)
	requireStatic(t, bin)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("tripcap --version: %v\n%s", err, out)
	}
	commit := git(t, "rev-parse", "HEAD")
	date := git(t, "log", "-1", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "--format=%cd", "HEAD")
	if !strings.HasPrefix(string(out), "tripcap ") || !strings.Contains(string(out), "commit "+commit) || !strings.Contains(string(out), "built from "+date) {
		t.Fatalf("tripcap --version = %q; want commit %s and date %s", out, commit, date)
	}
}

// TestBuildScriptOutsideCheckout: where there is no git (a container
// build's copy of the tree), the stamp comes from TRIPCAP_COMMIT and
// SOURCE_DATE_EPOCH, and TRIPCAP_VERSION sets the version.
func TestBuildScriptOutsideCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tripcap again")
	}
	releaseBinary(t) // the cache is warm after it
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot, "scripts", "build"), out)
	cmd.Env = append(os.Environ(), "TRIPCAP_COMMIT=0123456789abcdef0123456789abcdef01234567", "SOURCE_DATE_EPOCH=1767225600", "TRIPCAP_VERSION=v1.2.3",
		"GIT_DIR="+t.TempDir()) // no repository there: git fails, as without a checkout
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build: %v\n%s", err, b)
	}
	v, err := exec.Command(filepath.Join(out, "tripcap"), "--version").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if want := "tripcap 1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, built from 2026-01-01T00:00:00Z)\n"; string(v) != want {
		t.Fatalf("tripcap --version = %q, want %q", v, want)
	}
}
