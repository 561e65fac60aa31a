package triage

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/pcapfile"
)

// MergeResult says what a merge wrote.
type MergeResult struct {
	Packets    uint64
	Interfaces int
	// Files says how each input was read; an input cut short is merged up
	// to where it ends (EndsAt, Error).
	Files []tripcap.SummaryFile
}

// Merge writes the packets of the files, in timestamp order, to w as one
// pcapng file with one interface block per source interface: the files of
// one ring share theirs, the captures of different hosts keep their own
// (named by their source in the interface description). The section
// comment lists the sources' comments, so an alert time recorded in one
// stays readable, and the statistics blocks carry the sources' counters.
func Merge(ctx context.Context, paths []string, w io.Writer) (MergeResult, error) {
	src, err := Open(paths)
	if err != nil {
		return MergeResult{}, err
	}
	defer src.Close()
	ifaces := src.Interfaces()
	if len(ifaces) == 0 {
		return MergeResult{}, tripcap.Errorf(tripcap.EINVALID, "the files declare no interface")
	}
	out := make([]pcapfile.Interface, len(ifaces))
	for i, ifc := range ifaces {
		desc := ifc.Description
		if desc == "" {
			desc = ifc.Source
		}
		out[i] = pcapfile.Interface{Name: ifc.Name, Description: desc, Filter: ifc.Filter, LinkType: pcapfile.LinkType(ifc.LinkType), SnapLen: ifc.SnapLen}
	}
	comment := "tripcap capture merge"
	if cs := src.Comments(); len(cs) > 0 {
		comment += " of: " + strings.Join(cs, " | ")
	}
	nw, err := pcapfile.NewNgWriter(w, pcapfile.Section{Comment: comment, Application: "tripcap " + tripcap.Version}, out, 0)
	if err != nil {
		return MergeResult{}, fmt.Errorf("writing the merged file: %w", err)
	}
	first := make([]int64, len(ifaces))
	last := make([]int64, len(ifaces))
	delivered := make([]uint64, len(ifaces))
	var res MergeResult
	var p Packet
	for n := 0; ; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return res, fmt.Errorf("merging: %w", ctx.Err())
		}
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("merging: %w", err)
		}
		if p.Interface >= len(out) {
			return res, tripcap.Errorf(tripcap.EINVALID, "a file declares interface %q after its first packet, which a merge cannot take", src.Interfaces()[p.Interface].Name)
		}
		if err := nw.WritePacket(p.Interface, p.Timestamp, p.OrigLen, p.Data); err != nil {
			return res, fmt.Errorf("writing the merged file: %w", err)
		}
		i := p.Interface
		if delivered[i] == 0 {
			first[i] = p.Timestamp
		}
		last[i] = p.Timestamp
		delivered[i]++
		res.Packets++
	}
	stats := make([]pcapfile.InterfaceStats, len(ifaces))
	for i, ifc := range src.Interfaces()[:len(out)] {
		st := pcapfile.InterfaceStats{Delivered: delivered[i], CountersUnknown: !ifc.HasStats}
		if ifc.HasStats {
			st.Received, st.Dropped = ifc.Received, ifc.Drops
		}
		start := first[i]
		if ifc.Start != 0 {
			start = ifc.Start
		}
		if start != 0 {
			st.Start = time.Unix(0, start)
		}
		if last[i] != 0 {
			st.End = time.Unix(0, last[i])
		} else {
			st.End = st.Start
		}
		if st.Start.IsZero() {
			// An interface without packets: no times to tell.
			st.Start, st.End = time.Unix(0, 0), time.Unix(0, 0)
		}
		stats[i] = st
	}
	if err := nw.Close(stats); err != nil {
		return res, fmt.Errorf("writing the merged file: %w", err)
	}
	res.Interfaces = len(out)
	res.Files = src.Files
	return res, nil
}
