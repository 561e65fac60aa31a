package agent

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tripcap/tripcap"
)

// Inventory reads the host's name, OS and interfaces.
func Inventory() tripcap.Inventory {
	inv := tripcap.Inventory{OS: runtime.GOOS, AgentVersion: tripcap.Version}
	inv.Hostname, _ = os.Hostname()
	if name := osRelease(); name != "" {
		inv.OS = name
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		inv.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		i := tripcap.Interface{Name: ifc.Name, Index: ifc.Index, MAC: ifc.HardwareAddr.String(), MTU: ifc.MTU,
			Up: ifc.Flags&net.FlagUp != 0, Loopback: ifc.Flags&net.FlagLoopback != 0}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			i.Addresses = append(i.Addresses, a.String())
		}
		inv.Interfaces = append(inv.Interfaces, i)
	}
	return inv
}

func osRelease() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// CanCapture reports whether this process holds CAP_NET_RAW, which AF_PACKET needs.
func CanCapture() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return os.Geteuid() == 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			for _, c := range strings.TrimSpace(v) {
				caps <<= 4
				switch {
				case c >= '0' && c <= '9':
					caps |= uint64(c - '0')
				case c >= 'a' && c <= 'f':
					caps |= uint64(c-'a') + 10
				}
			}
			const capNetRaw = 13
			return caps&(1<<capNetRaw) != 0
		}
	}
	return os.Geteuid() == 0
}

// preTriggerReporter is an engine with a pre-trigger buffer to report
// (afpacket.Engine).
type preTriggerReporter interface {
	PreTriggerRing() tripcap.PreTriggerRing
}

// inventory is the host's inventory with the engine's pre-trigger buffer.
func (a *Agent) inventory() tripcap.Inventory {
	inv := Inventory()
	if r, ok := a.cfg.Engine.(preTriggerReporter); ok {
		inv.PreTrigger = r.PreTriggerRing()
	}
	return inv
}
