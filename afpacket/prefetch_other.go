//go:build linux && !amd64

package afpacket

// prefetchBytes is what one prefetch call asks for.
const prefetchBytes = 256

// prefetch does nothing here: only amd64 has an assembly version.
func prefetch(*byte) {}
