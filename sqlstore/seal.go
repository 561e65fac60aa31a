package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tripcap/tripcap"
)

// Secret columns are sealed (tripcap.Sealer) as they are written and opened
// as they are read; the rest of each row stays in clear, so listings still
// filter and sort. A sealed value's field names its table, row and column
// ("action_groups.<id>.signingSecret"): it opens nowhere else.
//
// The secret columns: action groups' signing secrets and webhook URLs
// (the whole URL: its query may hold the receiver's key), responders' own
// webhook URLs, storage accounts' URLs (they may hold keys). Function keys
// and credentials are kept as hashes, so they need no sealing.

// SetSealer makes the store encrypt secret columns with x. Call it before
// use: the store refuses to write a secret without one.
func (s *Store) SetSealer(x tripcap.Sealer) { s.sealer = x }

// sealSecret encrypts a secret column's value ("" stays "").
func (s *Store) sealSecret(field, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	if s.sealer == nil {
		return "", fmt.Errorf("seal %s: the store has no sealer (Store.SetSealer), and secrets are not written in clear", field)
	}
	v, err := s.sealer.Seal(field, []byte(plain))
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", field, err)
	}
	return v, nil
}

// openSecret decrypts what sealSecret stored. A value in clear (written
// before sealing began) is returned as it is, until SealSecrets seals it.
func (s *Store) openSecret(field, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if s.sealer == nil {
		return "", fmt.Errorf("open %s: the store has no sealer (Store.SetSealer)", field)
	}
	if !s.sealer.IsSealed(sealed) {
		return sealed, nil
	}
	b, err := s.sealer.Open(field, sealed)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", field, err)
	}
	return string(b), nil
}

// secretField is one secret in a document: its field name and where it is.
type secretField struct {
	name string
	v    *string
}

// sealFields seals each field in place.
func (s *Store) sealFields(fs []secretField) error {
	for _, f := range fs {
		v, err := s.sealSecret(f.name, *f.v)
		if err != nil {
			return err
		}
		*f.v = v
	}
	return nil
}

// openFields opens each field in place.
func (s *Store) openFields(fs []secretField) error {
	for _, f := range fs {
		v, err := s.openSecret(f.name, *f.v)
		if err != nil {
			return err
		}
		*f.v = v
	}
	return nil
}

// webhookSecrets are the service URIs of rs, receivers of prefix.
func webhookSecrets(prefix string, rs []tripcap.WebhookReceiver) []secretField {
	out := make([]secretField, len(rs))
	for i := range rs {
		out[i] = secretField{prefix + ".serviceUri", &rs[i].ServiceURI}
	}
	return out
}

// groupSecrets are an action group's secret fields.
func groupSecrets(g *tripcap.ActionGroup) []secretField {
	p := "action_groups." + g.ID
	return append([]secretField{{p + ".signingSecret", &g.SigningSecret}}, webhookSecrets(p+".webhookReceivers", g.WebhookReceivers)...)
}

// responderSecrets are a responder's secret fields.
func responderSecrets(r *tripcap.Responder) []secretField {
	return webhookSecrets("responders."+r.ID+".notifyWebhookReceivers", r.NotifyWebhookReceivers)
}

// storageURLField is a storage account's URL's field name.
func storageURLField(name string) string { return "storage_accounts." + name + ".url" }

// sealedGroup is the document of g with its secrets sealed; g is unchanged.
func (s *Store) sealedGroup(g *tripcap.ActionGroup) (string, error) {
	toUTC(g)
	c := *g
	c.WebhookReceivers = slices.Clone(g.WebhookReceivers)
	if err := s.sealFields(groupSecrets(&c)); err != nil {
		return "", err
	}
	return encodeDoc("action group "+g.Name, &c)
}

// sealedResponder is the document of r with its secrets sealed; r is unchanged.
func (s *Store) sealedResponder(r *tripcap.Responder) (string, error) {
	toUTC(r)
	c := *r
	c.NotifyWebhookReceivers = slices.Clone(r.NotifyWebhookReceivers)
	if err := s.sealFields(responderSecrets(&c)); err != nil {
		return "", err
	}
	return encodeDoc("responder "+r.Name, &c)
}

// SealSecrets seals, in one transaction, every secret column value kept in
// clear (written before sealing began, or by a tripcap that did not seal),
// and with all set reseals every one under the sealer's sealing key (a
// master key rotation). It returns the number of values written. Every
// sealed value is opened on the way, so a sealer without the key the
// database was sealed with is found out (the error names the key).
func (s *Store) SealSecrets(ctx context.Context, all bool) (int, error) {
	if s.sealer == nil {
		return 0, fmt.Errorf("seal secrets: the store has no sealer (Store.SetSealer)")
	}
	var n int
	err := s.write(ctx, func(tx *Tx) error {
		n = 0
		for _, t := range []struct {
			table string
			doc   func(id string, doc []byte) ([]secretField, func() (string, error), error)
		}{
			{"action_groups", func(id string, doc []byte) ([]secretField, func() (string, error), error) {
				var g tripcap.ActionGroup
				if err := json.Unmarshal(doc, &g); err != nil {
					return nil, nil, fmt.Errorf("decode action group %s: %w", id, err)
				}
				g.ID = id
				return groupSecrets(&g), func() (string, error) { return encodeDoc("action group "+id, &g) }, nil
			}},
			{"responders", func(id string, doc []byte) ([]secretField, func() (string, error), error) {
				var r tripcap.Responder
				if err := json.Unmarshal(doc, &r); err != nil {
					return nil, nil, fmt.Errorf("decode responder %s: %w", id, err)
				}
				r.ID = id
				return responderSecrets(&r), func() (string, error) { return encodeDoc("responder "+id, &r) }, nil
			}},
		} {
			c, err := s.resealDocs(ctx, tx, t.table, all, t.doc)
			if err != nil {
				return err
			}
			n += c
		}
		for _, c := range []struct {
			table, key, col string
			field           func(string) string
		}{
			{"storage_accounts", "name", "url", storageURLField},
			{"principals", "id", "secret_hash", principalSecretField},
			{"signing_keys", "kid", "private_key", signingKeyField},
		} {
			m, err := s.resealColumn(ctx, tx, c.table, c.key, c.col, c.field, all)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seal secrets: %w", err)
	}
	return n, nil
}

// needsSeal reports whether a stored value is to be (re)sealed.
func (s *Store) needsSeal(v string, all bool) bool {
	return v != "" && (all || !s.sealer.IsSealed(v))
}

// resealDocs reseals the secrets of table's documents; fields decodes a
// row's document, returning its secret fields and how to encode it again.
func (s *Store) resealDocs(ctx context.Context, tx *Tx, table string, all bool,
	fields func(id string, doc []byte) ([]secretField, func() (string, error), error)) (int, error) {
	type row struct {
		id  string
		doc []byte
	}
	rows, err := tx.Query(ctx, `SELECT id, doc FROM `+table+` ORDER BY id`+s.d.Lock)
	list, err := collect(rows, err, func(r rowScanner) (row, error) {
		var v row
		return v, r.Scan(&v.id, &v.doc)
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	n := 0
	for _, r := range list {
		fs, encode, err := fields(r.id, r.doc)
		if err != nil {
			return 0, err
		}
		changed := 0
		for _, f := range fs {
			if s.needsSeal(*f.v, all) {
				changed++
			}
		}
		// Opened even when nothing is to be sealed: a server whose key is
		// not the one the database was sealed with fails here, at start,
		// rather than at its first delivery.
		if err := s.openFields(fs); err != nil {
			return 0, err
		}
		if changed == 0 {
			continue
		}
		if err := s.sealFields(fs); err != nil {
			return 0, err
		}
		doc, err := encode()
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET doc = ? WHERE id = ?`, doc, r.id); err != nil {
			return 0, fmt.Errorf("write %s %s: %w", table, r.id, err)
		}
		n += changed
	}
	return n, nil
}

// resealColumn reseals the secret column col of table, whose rows key
// names; field is the sealed field of a row's key. A table with one secret
// column a row (storage accounts' URLs, token-signing keys) is one call.
func (s *Store) resealColumn(ctx context.Context, tx *Tx, table, key, col string, field func(key string) string, all bool) (int, error) {
	type row struct{ key, v string }
	rows, err := tx.Query(ctx, `SELECT `+key+`, `+col+` FROM `+table+` ORDER BY `+key+s.d.Lock)
	list, err := collect(rows, err, func(r rowScanner) (row, error) {
		var v row
		return v, r.Scan(&v.key, &v.v)
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	n := 0
	for _, r := range list {
		f := field(r.key)
		plain, err := s.openSecret(f, r.v)
		if err != nil {
			return 0, err
		}
		if !s.needsSeal(r.v, all) {
			continue
		}
		sealed, err := s.sealSecret(f, plain)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET `+col+` = ? WHERE `+key+` = ?`, sealed, r.key); err != nil {
			return 0, fmt.Errorf("write %s %s: %w", table, r.key, err)
		}
		n++
	}
	return n, nil
}
