package main

import (
	"testing"

	"github.com/tripcap/tripcap"
)

func TestRoleName(t *testing.T) {
	for in, want := range map[string]tripcap.RoleName{
		"reader": tripcap.RoleReader, "Network Contributor": tripcap.RoleNetworkContributor, "network-contributor": tripcap.RoleNetworkContributor,
		"MONITORING_CONTRIBUTOR": tripcap.RoleMonitoringContributor, "capture file reader": tripcap.RoleCaptureFileReader, "owner": tripcap.RoleOwner, "contributor": tripcap.RoleContributor,
		"root": "root", "": "",
	} {
		if got := roleName(in); got != want {
			t.Errorf("roleName(%q) = %q, want %q", in, got, want)
		}
	}
}
