package triage

import "time"

// tcpDir is one direction's sequence state, as Wireshark's TCP analysis
// keeps it, so the counts match tcp.analysis.* (see docs/triage.md).
type tcpDir struct {
	nextseq     uint32
	hasNext     bool
	nextseqTime int64
	lastack     uint32
	hasAck      bool
	lastackTime int64
	window      uint32 // scaled
	hasWindow   bool
	dupacks     uint32
	wscale      int8 // from this side's SYN: -1 none, -2 not seen
	synSeen     bool
	lastFlags   uint8 // analysis flags of this side's last segment
}

const (
	taKeepAlive = 1 << iota
	taZeroWindowProbe
	taDupAck
)

type tcpFlow struct {
	d [2]tcpDir // 0: from A, the first sender

	retrans, fastRetrans, dupAcks, zeroWindows, resets uint32

	mruSyn      int64 // the most recent SYN (without ACK)
	firstRTT    int64 // SYN to the first bare ACK, as tcp.analysis.initial_rtt
	synDir      int8  // the direction of the first SYN; -1: no SYN seen
	synTs       int64
	synAck      bool // the SYN was answered
	answered    bool // the SYN's receiver sent anything
	rstAnswer   bool // … and its answer was a reset, not a SYN/ACK
	established bool
}

type tcpTotals struct {
	resets uint64 // resets of flows the table could not hold
}

// seq comparisons modulo 2^32.
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }
func seqGE(a, b uint32) bool { return int32(a-b) >= 0 }

// tcpPacket runs the sequence analysis on one segment; it reports whether
// the segment resends data seen before (a retransmission that is not a fast
// one: a fast retransmission usually resends a segment the capture missed).
func (a *analyzer) tcpPacket(t *tcpFlow, fromA bool, ts int64, d *decoded) (resent bool) {
	dir := 1
	if fromA {
		dir = 0
	}
	fwd, rev := &t.d[dir], &t.d[1-dir]
	flags := d.flags
	seq, ack := d.seq, d.ack
	seglen := uint32(d.tcpLen)

	// Window scaling: a SYN's window is not scaled; later ones are, by
	// the sender's factor, when both SYNs carried the option.
	if flags&tcpSYN != 0 {
		fwd.synSeen = true
		fwd.wscale = d.wscale
		if flags&tcpACK == 0 {
			t.mruSyn = ts
			if t.synDir < 0 {
				t.synDir, t.synTs = int8(dir), ts
			}
		}
	}
	window := uint32(d.window)
	if flags&tcpSYN == 0 && fwd.synSeen && rev.synSeen && fwd.wscale >= 0 && rev.wscale >= 0 {
		window <<= uint(fwd.wscale)
	}

	// The first ACK without SYN after a SYN gives the initial RTT (even a
	// RST/ACK refusing the connection, as in Wireshark).
	if flags&(tcpSYN|tcpACK) == tcpACK && t.mruSyn != 0 && t.firstRTT == 0 {
		t.firstRTT = max(ts-t.mruSyn, 1)
		if t.synAck {
			t.established = true
		}
	}
	if t.synDir >= 0 && dir != int(t.synDir) && !t.answered {
		t.answered = true
		if flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK {
			t.synAck = true
		} else if flags&tcpRST != 0 {
			t.rstAnswer = true
		}
	}
	if flags&tcpRST != 0 {
		t.resets++
	}

	var ta uint8
	noSFR := flags&(tcpSYN|tcpFIN|tcpRST) == 0
	// Zero window probe.
	if seglen == 1 && fwd.hasNext && seq == fwd.nextseq && rev.hasWindow && rev.window == 0 {
		ta |= taZeroWindowProbe
		goto finishedFwd
	}
	if window == 0 && noSFR {
		t.zeroWindows++
	}
	if (seglen == 0 || seglen == 1) && fwd.hasNext && seq == fwd.nextseq-1 && noSFR {
		ta |= taKeepAlive
	}
	// Keep-alive ACK and zero window probe ACK are not duplicate ACKs.
	if seglen == 0 && window == fwd.window && fwd.hasNext && seq == fwd.nextseq && fwd.hasAck && ack == fwd.lastack && noSFR {
		if window != 0 && rev.lastFlags&taKeepAlive != 0 {
			goto finishedFwd
		}
		if window == 0 && rev.lastFlags&taZeroWindowProbe != 0 {
			goto finishedFwd
		}
		if window != 0 {
			fwd.dupacks++
			ta |= taDupAck
			t.dupAcks++
		}
	}
finishedFwd:
	if ta&taDupAck == 0 {
		fwd.dupacks = 0
	}

	if (seglen > 0 || flags&(tcpSYN|tcpFIN) != 0) && ta&taKeepAlive == 0 {
		notAdvanced := fwd.hasNext && seqLT(seq, fwd.nextseq)
		switch {
		case notAdvanced && rev.dupacks >= 2 && rev.hasAck && rev.lastack == seq && ts-rev.lastackTime < int64(20*time.Millisecond):
			t.fastRetrans++
			t.retrans++
		case notAdvanced && ts-fwd.nextseqTime < a.oooThreshold(t) && fwd.nextseq != seq+seglen:
			// out of order: not a retransmission
		case notAdvanced && rev.hasAck && rev.lastack != 0 && seqGE(rev.lastack, seq+seglen):
			// spurious retransmission: data the peer had acknowledged
			t.retrans++
			resent = true
		case notAdvanced:
			t.retrans++
			resent = true
		}
	}

	{
		next := seq + seglen
		if flags&(tcpSYN|tcpFIN) != 0 {
			next++
		}
		if (!fwd.hasNext || seqGT(next, fwd.nextseq)) && ta&taZeroWindowProbe == 0 {
			fwd.nextseq, fwd.hasNext, fwd.nextseqTime = next, true, ts
		}
	}
	fwd.window, fwd.hasWindow = window, true
	if flags&tcpACK != 0 {
		fwd.lastack, fwd.hasAck, fwd.lastackTime = ack, true, ts
	}
	fwd.lastFlags = ta
	return resent
}

// oooThreshold is how soon after the highest segment an earlier one counts
// as out of order rather than retransmitted: the initial RTT, else 3 ms.
func (a *analyzer) oooThreshold(t *tcpFlow) int64 {
	if t.firstRTT > 0 {
		return t.firstRTT
	}
	return int64(3 * time.Millisecond)
}
