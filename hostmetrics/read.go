package hostmetrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Reading is one read of the kernel's network counters.
type Reading struct {
	// Interfaces are /proc/net/dev's counters by interface name.
	Interfaces map[string]InterfaceCounters
	TCP        TCPCounters
	Flows      FlowCount
}

// InterfaceCounters are one interface's cumulative counters.
type InterfaceCounters struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// TCPCounters are the Tcp line of /proc/net/snmp, cumulative.
type TCPCounters struct {
	OutSegs, InSegs, RetransSegs, OutRsts, EstabResets uint64
}

// FlowCount is the number of current flows by direction.
type FlowCount struct {
	Inbound, Outbound int
}

// read reads every source once under root.
func read(root string) (Reading, error) {
	fsys, err := procfs.NewFS(root)
	if err != nil {
		return Reading{}, fmt.Errorf("opening proc root %s: %w", root, err)
	}
	dev, err := fsys.NetDev()
	if err != nil {
		return Reading{}, fmt.Errorf("reading %s: %w", filepath.Join(root, "net/dev"), err)
	}
	r := Reading{Interfaces: make(map[string]InterfaceCounters, len(dev))}
	for name, l := range dev {
		r.Interfaces[name] = InterfaceCounters{
			RxBytes: l.RxBytes, RxPackets: l.RxPackets, RxErrors: l.RxErrors, RxDropped: l.RxDropped,
			TxBytes: l.TxBytes, TxPackets: l.TxPackets, TxErrors: l.TxErrors, TxDropped: l.TxDropped,
		}
	}
	if r.TCP, err = readSnmp(filepath.Join(root, "net/snmp")); err != nil {
		return Reading{}, err
	}
	if r.Flows, err = countFlows(fsys); err != nil {
		return Reading{}, err
	}
	return r, nil
}

// readSnmp reads the Tcp counters of /proc/net/snmp: a header line of
// names and a line of values, both prefixed "Tcp:". (procfs parses this
// file only under /proc/<pid>, which a proc root given as a directory of
// net/ files does not have.)
func readSnmp(path string) (TCPCounters, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return TCPCounters{}, fmt.Errorf("reading %s: %w", path, err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Tcp:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if names == nil {
			names = fields
			continue
		}
		if len(fields) != len(names) {
			return TCPCounters{}, fmt.Errorf("%s: Tcp has %d names and %d values", path, len(names), len(fields))
		}
		var c TCPCounters
		for i, n := range names {
			var dst *uint64
			switch n {
			case "OutSegs":
				dst = &c.OutSegs
			case "InSegs":
				dst = &c.InSegs
			case "RetransSegs":
				dst = &c.RetransSegs
			case "OutRsts":
				dst = &c.OutRsts
			case "EstabResets":
				dst = &c.EstabResets
			default:
				continue
			}
			// MaxConn is -1; the counters we read are unsigned.
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return TCPCounters{}, fmt.Errorf("%s: Tcp %s: %w", path, n, err)
			}
			*dst = v
		}
		return c, nil
	}
	return TCPCounters{}, fmt.Errorf("%s: no Tcp counters", path)
}

// TCP states of /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpTimeWait = 0x06
	tcpClose    = 0x07
	tcpListen   = 0x0A
)

// countFlows counts current flows. A flow is a TCP connection that is
// neither listening, closed nor in TIME_WAIT (the flow is over; the kernel
// only holds its port), or a connected UDP socket (one with a remote
// address). A flow is inbound when its local port is one this host listens
// on with that protocol (a TCP socket in LISTEN; for UDP, an unconnected
// bound socket), else outbound. Flows whose remote address is loopback
// are not counted: they never leave the host. Unconnected UDP sockets that
// talk to many peers cannot be seen per peer and are not counted.
func countFlows(fsys procfs.FS) (FlowCount, error) {
	type sock struct {
		lport, rport uint64
		raddr        net.IP
		state        uint64
	}
	load := func(name string, get func() (procfs.NetIPSocket, error)) ([]sock, error) {
		lines, err := get()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // IPv6 disabled, say
		}
		if err != nil {
			return nil, fmt.Errorf("reading net/%s: %w", name, err)
		}
		out := make([]sock, len(lines))
		for i, l := range lines {
			out[i] = sock{l.LocalPort, l.RemPort, l.RemAddr, l.St}
		}
		return out, nil
	}
	var tcp, udp []sock
	for _, src := range []struct {
		name string
		get  func() (procfs.NetIPSocket, error)
		dst  *[]sock
	}{
		// procfs suggests netlink for TCP; the /proc tables are kept because
		// they are what a proc root serves (another namespace's
		// /proc/<tid>, fixtures), and they read the same as UDP's.
		{"tcp", func() (procfs.NetIPSocket, error) {
			s, err := fsys.NetTCP() //lint:ignore SA1019 the proc root is the configured source (see above)
			return procfs.NetIPSocket(s), err
		}, &tcp},
		{"tcp6", func() (procfs.NetIPSocket, error) {
			s, err := fsys.NetTCP6() //lint:ignore SA1019 the proc root is the configured source (see above)
			return procfs.NetIPSocket(s), err
		}, &tcp},
		{"udp", func() (procfs.NetIPSocket, error) { s, err := fsys.NetUDP(); return procfs.NetIPSocket(s), err }, &udp},
		{"udp6", func() (procfs.NetIPSocket, error) { s, err := fsys.NetUDP6(); return procfs.NetIPSocket(s), err }, &udp},
	} {
		s, err := load(src.name, src.get)
		if err != nil {
			return FlowCount{}, err
		}
		*src.dst = append(*src.dst, s...)
	}
	var fc FlowCount
	listening := map[uint64]bool{}
	for _, s := range tcp {
		if s.state == tcpListen {
			listening[s.lport] = true
		}
	}
	for _, s := range tcp {
		if s.state == tcpListen || s.state == tcpClose || s.state == tcpTimeWait || s.state == 0 || s.raddr.IsLoopback() {
			continue
		}
		if listening[s.lport] {
			fc.Inbound++
		} else {
			fc.Outbound++
		}
	}
	udpBound := map[uint64]bool{}
	for _, s := range udp {
		if s.rport == 0 {
			udpBound[s.lport] = true
		}
	}
	for _, s := range udp {
		if s.rport == 0 || s.raddr.IsLoopback() {
			continue
		}
		if udpBound[s.lport] {
			fc.Inbound++
		} else {
			fc.Outbound++
		}
	}
	return fc, nil
}
