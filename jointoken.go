package tripcap

import "strings"

// A join token, as `tripcap host join-token create` prints it, is
//
//	tc_join_<secret>.<fingerprint>
//
// where tc_join_<secret> is what the server hashes and stores (as before
// fingerprints), and <fingerprint> is the lowercase hex SHA-256 of the DER
// of the CA certificate the server presents (64 digits; kubeadm's
// --discovery-token-ca-cert-hash). An agent given one over https:// trusts
// the server whose chain holds that certificate, with no file to copy. A
// server without TLS issues tokens without the fingerprint part.

// JoinTokenString joins a join token's secret and its CA fingerprint ("" for none).
func JoinTokenString(secret, fingerprint string) string {
	if fingerprint == "" {
		return secret
	}
	return secret + "." + fingerprint
}

// ParseJoinToken splits a join token into the secret the server knows and
// the CA fingerprint, "" when the token carries none.
func ParseJoinToken(token string) (secret, fingerprint string, err error) {
	secret, fingerprint, dotted := strings.Cut(token, ".")
	if !strings.HasPrefix(secret, SecretPrefixJoin) || len(secret) == len(SecretPrefixJoin) {
		return "", "", Errorf(EINVALID, "joinToken: not a %s… token", SecretPrefixJoin)
	}
	if strings.ContainsAny(secret, " \t\r\n") {
		return "", "", Errorf(EINVALID, "joinToken: holds white space")
	}
	if dotted && !validFingerprint(fingerprint) {
		return "", "", Errorf(EINVALID, "joinToken: the part after the dot is not a CA fingerprint (64 lowercase hex digits of SHA-256)")
	}
	return secret, fingerprint, nil
}

func validFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
