// Package trafficgen sends bounded test traffic: an exact number of UDP
// datagrams or TCP writes of given sizes, each payload stamped with its
// sequence number so a capture can be checked for gaps and duplicates.
// Sockets belong to the network namespace of the thread that opens them:
// run Send inside netns.Namespace.Do to send from a test namespace.
package trafficgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Magic starts every payload, so a test can tell generated packets apart.
const Magic = 0x7c7c_61_70 // "||ap"

// HeaderLen is the stamp at the start of each payload: Magic, then the
// flow id and the sequence number.
const HeaderLen = 16

// MaxCount bounds any flow, whatever a test asks.
const MaxCount = 10_000_000

// Flow is traffic to send.
type Flow struct {
	// Network is "udp" or "tcp".
	Network string
	// Src is the local address and port (zero port: any); Dst the peer.
	Src, Dst netip.AddrPort
	// Count datagrams (UDP) or writes (TCP) of PayloadSize bytes each
	// (at least HeaderLen).
	Count       int
	PayloadSize int
	// Interval between packets; zero sends as fast as the socket allows.
	Interval time.Duration
	// ID is stamped into every payload.
	ID uint32
}

// Result says what was sent.
type Result struct {
	Sent  int
	Bytes int
	Start time.Time
	End   time.Time
}

// Send sends the flow and returns when all of it is sent, ctx ends, or a
// socket error occurs. For TCP it connects, writes with Nagle off, and
// closes; the peer must be listening (see Sink).
func Send(ctx context.Context, f Flow) (Result, error) {
	if f.Count < 0 || f.Count > MaxCount {
		return Result{}, fmt.Errorf("trafficgen: count %d is outside 0..%d", f.Count, MaxCount)
	}
	if f.PayloadSize < HeaderLen {
		f.PayloadSize = HeaderLen
	}
	d := net.Dialer{LocalAddr: localAddr(f.Network, f.Src)}
	conn, err := d.DialContext(ctx, f.Network, f.Dst.String())
	if err != nil {
		return Result{}, fmt.Errorf("trafficgen: dialing %s %s: %w", f.Network, f.Dst, err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return Result{}, fmt.Errorf("trafficgen: TCP_NODELAY: %w", err)
		}
	}
	res := Result{Start: time.Now()}
	payload := make([]byte, f.PayloadSize)
	binary.BigEndian.PutUint32(payload[0:], Magic)
	binary.BigEndian.PutUint32(payload[4:], f.ID)
	var tick *time.Ticker
	if f.Interval > 0 {
		tick = time.NewTicker(f.Interval)
		defer tick.Stop()
	}
	for i := range f.Count {
		if tick != nil {
			select {
			case <-ctx.Done():
				return finish(res), ctx.Err()
			case <-tick.C:
			}
		} else if i%1024 == 0 && ctx.Err() != nil {
			return finish(res), ctx.Err()
		}
		binary.BigEndian.PutUint64(payload[8:], uint64(i))
		n, err := conn.Write(payload)
		// A full device queue on a fast UDP flood: wait and retry, so
		// the count stays exact.
		for retry := 0; errors.Is(err, syscall.ENOBUFS) && retry < 1000; retry++ {
			time.Sleep(100 * time.Microsecond)
			n, err = conn.Write(payload)
		}
		if err != nil {
			return finish(res), fmt.Errorf("trafficgen: sending packet %d of %d: %w", i, f.Count, err)
		}
		res.Sent++
		res.Bytes += n
	}
	return finish(res), nil
}

func finish(r Result) Result {
	r.End = time.Now()
	return r
}

func localAddr(network string, src netip.AddrPort) net.Addr {
	if !src.IsValid() {
		return nil
	}
	if network == "tcp" {
		return net.TCPAddrFromAddrPort(src)
	}
	return net.UDPAddrFromAddrPort(src)
}

// Stamp reads the stamp of a generated payload: its flow id and sequence number.
func Stamp(payload []byte) (id uint32, seq uint64, ok bool) {
	if len(payload) < HeaderLen || binary.BigEndian.Uint32(payload) != Magic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(payload[4:]), binary.BigEndian.Uint64(payload[8:]), true
}

// Sink receives and discards traffic on addr, so UDP datagrams draw no ICMP
// port-unreachable and TCP connections are accepted. Close stops it.
type Sink struct {
	Addr  netip.AddrPort
	close func() error
}

// Close stops the sink.
func (s *Sink) Close() error { return s.close() }

// Listen opens a sink for network ("udp" or "tcp") at addr (port 0 picks one).
func Listen(network string, addr netip.AddrPort) (*Sink, error) {
	switch network {
	case "udp":
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, fmt.Errorf("trafficgen: listening on udp %s: %w", addr, err)
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		return &Sink{Addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), close: pc.Close}, nil
	case "tcp":
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		if err != nil {
			return nil, fmt.Errorf("trafficgen: listening on tcp %s: %w", addr, err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_, _ = io.Copy(io.Discard, c)
				}()
			}
		}()
		return &Sink{Addr: ln.Addr().(*net.TCPAddr).AddrPort(), close: ln.Close}, nil
	}
	return nil, fmt.Errorf("trafficgen: network %q is not udp or tcp", network)
}
