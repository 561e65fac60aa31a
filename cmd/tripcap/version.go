package main

import (
	"fmt"
	"runtime/debug"

	"github.com/tripcap/tripcap"
)

// versionText is what --version prints: the version, and the commit and
// commit date the binary was built from (Go stamps them from the VCS into
// every build of a checkout), so a bug report names the exact build.
func versionText() string {
	commit, date, modified := "unknown", "unknown", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				date = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	if tripcap.Commit != "" {
		commit = tripcap.Commit
	}
	if tripcap.BuildDate != "" {
		date = tripcap.BuildDate
	}
	return fmt.Sprintf("%s (commit %s, built from %s)", tripcap.Version, commit, date)
}
