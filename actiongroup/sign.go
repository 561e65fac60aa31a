package actiongroup

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook deliveries are signed so a receiver can check tripcap sent them
// and that they are fresh:
//
//	X-Tripcap-Timestamp: <unix seconds when signed>
//	X-Tripcap-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	X-Tripcap-Delivery:  <id, the same on every retry of one delivery>
//
// The timestamp is inside the MAC, so an old body cannot be replayed with a
// new timestamp; a receiver refuses timestamps more than a few minutes from
// its clock and may remember delivery ids within that span to drop repeats.
const (
	HeaderSignature = "X-Tripcap-Signature"
	HeaderTimestamp = "X-Tripcap-Timestamp"
	HeaderDelivery  = "X-Tripcap-Delivery"
	// DefaultMaxSkew is how old (or how far ahead) Verify accepts a timestamp.
	DefaultMaxSkew = 5 * time.Minute
)

// NewSecret returns a random signing secret for a new action group.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Sign returns the X-Tripcap-Signature value for body signed at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp is outside the accepted window")
)

// Verify checks a delivery's signature and timestamp headers against the
// body, as a receiver written in Go would; maxSkew 0 means DefaultMaxSkew.
func Verify(secret, signature, timestamp string, body []byte, now time.Time, maxSkew time.Duration) error {
	if maxSkew == 0 {
		maxSkew = DefaultMaxSkew
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not unix seconds", HeaderTimestamp, timestamp)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > maxSkew || d < -maxSkew {
		return ErrStale
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(signature))) {
		return ErrBadSignature
	}
	return nil
}
