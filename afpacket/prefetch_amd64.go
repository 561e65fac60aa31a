//go:build linux

package afpacket

// prefetchBytes is what one prefetch call asks for.
const prefetchBytes = 256

// prefetch asks for the prefetchBytes bytes from p to be brought into the
// cache (PREFETCHT0). It never faults, whatever p.
//
//go:noescape
func prefetch(p *byte)
