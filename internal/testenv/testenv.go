// Package testenv decides what a test does when a prerequisite is missing:
// on a laptop it skips, under CI=true it fails, so a green CI means the real
// thing ran.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test on a laptop and fails it under CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireRoot needs root (CAP_NET_RAW, CAP_NET_ADMIN for namespaces).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "root is needed")
	}
}

// RequireBinary returns the path of a program the test runs.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s is not installed (scripts/test installs it)", name)
	}
	return p
}

// Env returns the value of an environment variable the test needs.
func Env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Unavailable(t, "%s is not set (scripts/test sets it)", name)
	}
	return v
}
