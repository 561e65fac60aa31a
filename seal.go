package tripcap

// Sealer encrypts secrets kept at rest: signing secrets, webhook URLs'
// secrets, storage keys, SMTP passwords, token-signing keys.
type Sealer interface {
	// Seal encrypts plaintext into text safe to store.
	Seal(plaintext []byte) (string, error)
	// Open decrypts what Seal returned; an error when it was tampered with
	// or sealed under a key the sealer does not hold.
	Open(sealed string) ([]byte, error)
}
