package tripcap

// Sealer encrypts secrets kept at rest: signing secrets, webhook URLs'
// secrets, storage keys, SMTP passwords, token-signing keys.
//
// field names where the value is kept ("action_groups.signingSecret"); a
// sealed value opens only under the field it was sealed for, so one cannot
// be moved to another column (or row, when field names the row) unnoticed.
type Sealer interface {
	// Seal encrypts plaintext into text safe to store.
	Seal(field string, plaintext []byte) (string, error)
	// Open decrypts what Seal returned for the same field; an error when
	// it was tampered with, moved from another field, or sealed under a
	// key the sealer does not hold.
	Open(field, sealed string) ([]byte, error)
	// IsSealed reports whether v is in sealed form (under any key), so
	// values written before sealing began can be told apart and sealed.
	IsSealed(v string) bool
}
