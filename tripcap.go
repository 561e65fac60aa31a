// Package tripcap holds the domain of tripcap: hosts, network watchers, packet
// captures, and the interfaces the pipeline stages implement. It depends on
// nothing but the standard library; every subpackage adapts one dependency or
// one stage (metric → rule → alert → responder → capture → file) to it.
package tripcap

// Version is the build's version, set with -ldflags "-X github.com/tripcap/tripcap.Version=…".
var Version = "0.1.0-dev"

// Commit and BuildDate name the build's source, set with -ldflags -X like
// Version; empty, the binary reports what Go stamped from the VCS.
var (
	Commit    = ""
	BuildDate = ""
)
