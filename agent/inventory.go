package agent

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

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

// inventory is the host's inventory (read) with the engine's pre-trigger buffer.
func (a *Agent) inventory(read func() tripcap.Inventory) tripcap.Inventory {
	inv := read()
	if r, ok := a.cfg.Engine.(preTriggerReporter); ok {
		inv.PreTrigger = r.PreTriggerRing()
	}
	return inv
}

// readInventory is Config.Inventory, else the kernel's (Inventory).
func (a *Agent) readInventory() func() tripcap.Inventory {
	if a.cfg.Inventory != nil {
		return a.cfg.Inventory
	}
	return Inventory
}

const (
	// inventoryRefresh is how often a watched inventory is read again all
	// the same: the hostname and the OS change without netlink saying so.
	inventoryRefresh = 5 * time.Minute
	// inventorySettle is how long after the first change the kernel
	// reports the inventory is read: bringing an interface up takes a
	// burst of messages (link, addresses), which one heartbeat reports.
	inventorySettle = 2 * time.Second
)

// inventoryCache reads the inventory for the heartbeats: at each one, or,
// while watch says when interfaces change, only after a change and every
// inventoryRefresh. Reading the kernel's takes a netlink dump of the links
// and one of the addresses per interface, every heartbeat of every agent.
type inventoryCache struct {
	read  func() tripcap.Inventory
	watch *interfaceWatch // nil: nothing tells changes
	inv   *tripcap.Inventory
	at    time.Time
}

// get returns the inventory, reading it when it may have changed.
func (c *inventoryCache) get() tripcap.Inventory {
	if c.inv == nil || c.watch == nil || !c.watch.ok.Load() || time.Since(c.at) >= inventoryRefresh {
		inv := c.read()
		c.inv, c.at = &inv, time.Now()
	}
	return *c.inv
}

// changed is signalled when the interfaces changed (nil: never); the next
// get reads them again.
func (c *inventoryCache) changed() <-chan struct{} {
	if c.watch == nil {
		return nil
	}
	return c.watch.changed
}

// invalidate makes the next get read the inventory.
func (c *inventoryCache) invalidate() { c.inv = nil }

// interfaceWatch says when the host's links or addresses changed.
type interfaceWatch struct {
	// changed is signalled (coalesced) at each change.
	changed chan struct{}
	// ok is false once the watch failed: changes go unnoticed.
	ok atomic.Bool
}

func (w *interfaceWatch) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}
