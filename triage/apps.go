package triage

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// dnsHeader is what triage reads of a DNS message: the id, whether it is a
// response, the response code and the first question's name (lowercased
// into name, a scratch buffer).
type dnsHeader struct {
	id       uint16
	response bool
	rcode    uint8
	name     []byte
}

// parseDNS reads a DNS message's header and first question name. It reports
// false for anything that is not a plausible DNS message.
func parseDNS(m []byte, h *dnsHeader) bool {
	if len(m) < 12 {
		return false
	}
	h.id = binary.BigEndian.Uint16(m)
	flags := binary.BigEndian.Uint16(m[2:])
	h.response = flags&0x8000 != 0
	h.rcode = uint8(flags & 0x0f)
	h.name = h.name[:0]
	if binary.BigEndian.Uint16(m[4:]) == 0 {
		return true
	}
	p := m[12:]
	for len(h.name) < 255 {
		if len(p) == 0 {
			return true // cut short: keep what was read
		}
		n := int(p[0])
		if n == 0 {
			break
		}
		if n&0xc0 != 0 || 1+n > len(p) {
			// A pointer in a question is unusual; stop at it.
			break
		}
		if len(h.name) > 0 {
			h.name = append(h.name, '.')
		}
		for _, c := range p[1 : 1+n] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h.name = append(h.name, c)
		}
		p = p[1+n:]
	}
	if len(h.name) == 0 {
		h.name = append(h.name, '.')
	}
	return true
}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

func rcodeName(rc uint8) string {
	if int(rc) < len(rcodeNames) {
		return rcodeNames[rc]
	}
	return "RCODE" + strconv.Itoa(int(rc))
}

// tlsInfo is what one TCP segment's TLS records tell.
type tlsInfo struct {
	clientHello bool
	sni         []byte
	serverHello bool
	version     uint16 // negotiated, from a ServerHello
	alerts      int
	alertLevel  uint8
	alertDesc   uint8
	alertClear  bool // the alert's level and description are readable
}

// parseTLS walks the TLS records that start in the segment p (no reassembly:
// a record starting in an earlier segment is not seen).
func parseTLS(p []byte, t *tlsInfo) {
	*t = tlsInfo{sni: t.sni[:0]}
	for len(p) >= 5 && isTLSRecord(p) {
		typ := p[0]
		n := int(binary.BigEndian.Uint16(p[3:]))
		rec := p[5:min(len(p), 5+n)]
		switch typ {
		case 21:
			t.alerts++
			if n == 2 && len(rec) == 2 {
				t.alertLevel, t.alertDesc, t.alertClear = rec[0], rec[1], true
			}
		case 22:
			if len(rec) >= 4 {
				switch rec[0] {
				case 1:
					t.clientHello = true
					parseHello(rec[4:], true, t)
				case 2:
					t.serverHello = true
					parseHello(rec[4:], false, t)
				}
			}
		}
		if 5+n > len(p) {
			return
		}
		p = p[5+n:]
	}
}

// parseHello reads a ClientHello's server name or a ServerHello's version.
func parseHello(b []byte, client bool, t *tlsInfo) {
	if len(b) < 35 {
		return
	}
	legacy := binary.BigEndian.Uint16(b)
	if !client {
		t.version = legacy
	}
	b = b[34:]
	sid := int(b[0])
	if len(b) < 1+sid {
		return
	}
	b = b[1+sid:]
	if client {
		if len(b) < 2 {
			return
		}
		cs := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+cs+1 {
			return
		}
		b = b[2+cs:]
		comp := int(b[0])
		if len(b) < 1+comp {
			return
		}
		b = b[1+comp:]
	} else {
		if len(b) < 3 {
			return
		}
		b = b[3:] // cipher suite, compression method
	}
	if len(b) < 2 {
		return
	}
	b = b[2:] // extensions length: the walk below stops at the data's end
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		ext := b[4:min(len(b), 4+n)]
		switch {
		case client && typ == 0 && len(ext) >= 5 && ext[2] == 0:
			l := int(binary.BigEndian.Uint16(ext[3:]))
			name := ext[5:min(len(ext), 5+l)]
			t.sni = append(t.sni[:0], name...)
		case !client && typ == 43 && len(ext) == 2:
			t.version = binary.BigEndian.Uint16(ext)
		}
		if 4+n > len(b) {
			return
		}
		b = b[4+n:]
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
	40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
	71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
	109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol",
}

func tlsAlertName(t *tlsInfo) string {
	if !t.alertClear {
		return "encrypted alert"
	}
	level := "warning"
	if t.alertLevel == 2 {
		level = "fatal"
	}
	name, ok := alertNames[t.alertDesc]
	if !ok {
		name = "alert " + strconv.Itoa(int(t.alertDesc))
	}
	return level + " " + name
}

// httpHost finds the Host header of a request in p (the segment's bytes).
func httpHost(p []byte) []byte {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(p)
	}
	h := p[:end]
	for {
		i := bytes.Index(h, []byte("\r\n"))
		if i < 0 {
			return nil
		}
		h = h[i+2:]
		if len(h) >= 5 && (h[0]|0x20) == 'h' && (h[1]|0x20) == 'o' && (h[2]|0x20) == 's' && (h[3]|0x20) == 't' && h[4] == ':' {
			v := h[5:]
			if j := bytes.Index(v, []byte("\r\n")); j >= 0 {
				v = v[:j]
			}
			return bytes.TrimSpace(v)
		}
	}
}

// httpStatus reads the status code of a response line ("HTTP/1.1 200 OK").
func httpStatus(p []byte) int {
	if len(p) < 12 || p[8] != ' ' {
		return 0
	}
	c := p[9:12]
	for _, d := range c {
		if d < '0' || d > '9' {
			return 0
		}
	}
	return int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
}
