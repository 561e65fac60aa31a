package pcapfile

import (
	"encoding/binary"
	"fmt"
)

// AddInterface writes the description of one more interface, for a capture
// that picks up an interface appearing while it runs, and returns its
// number. The format allows an interface block anywhere in the section
// before the interface's first packet.
func (nw *NgWriter) AddInterface(ifc Interface) (int, error) {
	ifc.SnapLen = clampSnapLen(ifc.SnapLen)
	if err := nw.writeIDB(ifc); err != nil {
		return 0, err
	}
	nw.ifaces = append(nw.ifaces, ifc)
	nw.maxSnap = max(nw.maxSnap, ifc.SnapLen)
	return len(nw.ifaces) - 1, nil
}

// writeIDB appends an interface description block.
func (nw *NgWriter) writeIDB(ifc Interface) error {
	var opts []byte
	opts = appendStringOpt(opts, ifName, ifc.Name)
	opts = appendStringOpt(opts, ifDesc, ifc.Description)
	if ifc.Filter != "" {
		// The first byte says how the filter is given: 0 is a filter string.
		opts = appendOpt(opts, ifFilter, append([]byte{0}, ifc.Filter...))
	}
	opts = appendOpt(opts, ifTSResol, []byte{9}) // nanoseconds
	opts = endOpts(opts)
	body := make([]byte, 8, 8+len(opts))
	binary.LittleEndian.PutUint16(body[0:], uint16(ifc.LinkType))
	binary.LittleEndian.PutUint32(body[4:], ifc.SnapLen)
	return nw.writeBlock(blockIDB, append(body, opts...))
}

// WriteStats writes an interface statistics block for one interface now,
// with a comment: for an interface that went away while the capture went on,
// its end time (isb_endtime) and why are in the file where it ended. Close
// still writes every interface's final block.
func (nw *NgWriter) WriteStats(iface int, st InterfaceStats, comment string) error {
	if iface < 0 || iface >= len(nw.ifaces) {
		return fmt.Errorf("pcapng: interface %d is not in the file (%d interfaces)", iface, len(nw.ifaces))
	}
	return nw.writeBlock(blockISB, isbBody(iface, st, comment))
}
