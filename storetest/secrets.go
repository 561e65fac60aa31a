package storetest

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/seal"
	"github.com/tripcap/tripcap/sqlstore"
)

// SecretStore is a store that seals its secret columns (sqlstore.Store).
type SecretStore interface {
	tripcap.Store
	SetSealer(x tripcap.Sealer)
	SealSecrets(ctx context.Context, all bool) (int, error)
}

// Raw reads and writes a store's database behind its back, as someone with
// a copy of the database (or write access to it) would.
type Raw struct {
	DB *sql.DB
	// Numbered placeholders ($1…) instead of '?'.
	Numbered bool
}

func (r Raw) q(query string) string {
	if r.Numbered {
		return sqlstore.Rebind(query)
	}
	return query
}

func (r Raw) text(t *testing.T, query string, args ...any) string {
	t.Helper()
	var v string
	if err := r.DB.QueryRowContext(t.Context(), r.q(query), args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func (r Raw) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := r.DB.ExecContext(t.Context(), r.q(query), args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// NewSealer is a sealer under a new random key, as a test rig's store needs.
func NewSealer(t testing.TB) *seal.Sealer {
	t.Helper()
	s, err := seal.New(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The secrets of the sealing tests, which must never be stored in clear.
const (
	secretCode    = "S3cretFunctionCode"
	secretKey     = "U2VjcmV0QXp1cmVLZXk="
	secretSigning = "5ecret5igning5ecret5igning5ecret"
	secretNotify  = "N0tifyC0de"
)

func secretFixtures(t *testing.T, s tripcap.Store) (*tripcap.ActionGroup, *tripcap.Responder, *tripcap.StorageAccount) {
	t.Helper()
	ctx := t.Context()
	g := fullGroup("sealed")
	g.SigningSecret = secretSigning
	g.WebhookReceivers = append(g.WebhookReceivers, tripcap.WebhookReceiver{Name: "fn2", ServiceURI: "https://fn2.example.invalid/api/alert?code=" + secretCode})
	must(t, s.CreateActionGroup(ctx, g))
	r := fullResponder("sealed")
	r.NotifyWebhookReceivers = []tripcap.WebhookReceiver{{Name: "hook", ServiceURI: "https://hook.example.invalid/x?token=" + secretNotify}}
	must(t, s.CreateResponder(ctx, r))
	a := &tripcap.StorageAccount{Name: "azure", URL: "azblob://acct/captures?key=" + secretKey}
	must(t, s.CreateStorageAccount(ctx, a))
	return g, r, a
}

// rawSecrets is every stored value that holds a secret, as stored.
func rawSecrets(t *testing.T, raw Raw, g *tripcap.ActionGroup, r *tripcap.Responder) string {
	t.Helper()
	return raw.text(t, `SELECT doc FROM action_groups WHERE id = ?`, g.ID) + "\n" +
		raw.text(t, `SELECT doc FROM responders WHERE id = ?`, r.ID) + "\n" +
		raw.text(t, `SELECT url FROM storage_accounts WHERE name = ?`, "azure")
}

func wantNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{secretCode, secretKey, secretSigning, secretNotify} {
		if strings.Contains(text, s) {
			t.Fatalf("%s holds the secret %q in clear:\n%s", what, s, text)
		}
	}
}

// wantSecretsRead checks the store gives the secrets back in clear.
func wantSecretsRead(t *testing.T, s tripcap.Store, g *tripcap.ActionGroup, r *tripcap.Responder, a *tripcap.StorageAccount) {
	t.Helper()
	ctx := t.Context()
	gotG, err := s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &g.ID})
	must(t, err)
	wantEqual(t, "action group", gotG, g)
	gotR, err := s.FindResponder(ctx, tripcap.ResponderFilter{ID: &r.ID})
	must(t, err)
	wantEqual(t, "responder", gotR, r)
	as, err := s.FindStorageAccounts(ctx)
	must(t, err)
	if len(as) != 1 || as[0].URL != a.URL {
		t.Fatalf("storage accounts: %+v, want %s", as, a.URL)
	}
}

// Secrets checks that a SecretStore seals its secret columns: nothing in
// clear in the database, read back whole, tampering and moving detected,
// clear values of an older database sealed by SealSecrets, every value
// resealed under a new key by a rotation, and no write without a sealer.
// open returns a fresh store with a sealer set, and the database behind it.
func Secrets(t *testing.T, open func(t *testing.T) (SecretStore, Raw)) {
	t.Run("AtRest", func(t *testing.T) {
		s, raw := open(t)
		g, r, a := secretFixtures(t, s)
		stored := rawSecrets(t, raw, g, r)
		wantNoSecret(t, "the database", stored)
		if n := strings.Count(stored, "tcs1:"); n != 5 {
			t.Fatalf("%d sealed values stored, want 5 (signing secret, 2 webhook URLs, notify URL, storage URL):\n%s", n, stored)
		}
		wantSecretsRead(t, s, g, r, a)
		// An update seals again.
		g.WebhookReceivers[0].ServiceURI = "https://fn.example.invalid/api/alert?code=" + secretCode + "2"
		must(t, s.UpdateActionGroup(t.Context(), g, g.Version))
		wantNoSecret(t, "the database after an update", rawSecrets(t, raw, g, r))
		wantSecretsRead(t, s, g, r, a)
	})
	t.Run("Tamper", func(t *testing.T) {
		s, raw := open(t)
		ctx := t.Context()
		g, _, _ := secretFixtures(t, s)
		doc := raw.text(t, `SELECT doc FROM action_groups WHERE id = ?`, g.ID)
		var m map[string]any
		must(t, json.Unmarshal([]byte(doc), &m))
		// Flip one bit of the ciphertext.
		sealed := m["signingSecret"].(string)
		i := strings.LastIndexByte(sealed, ':') + 1
		ct, err := base64.RawURLEncoding.DecodeString(sealed[i:])
		must(t, err)
		ct[len(ct)/2] ^= 1
		m["signingSecret"] = sealed[:i] + base64.RawURLEncoding.EncodeToString(ct)
		b, _ := json.Marshal(m)
		raw.exec(t, `UPDATE action_groups SET doc = ? WHERE id = ?`, string(b), g.ID)
		_, err = s.FindActionGroup(ctx, tripcap.ActionGroupFilter{ID: &g.ID})
		if err == nil || !strings.Contains(err.Error(), "signingSecret") || !strings.Contains(err.Error(), "altered") {
			t.Fatalf("reading a tampered signing secret: %v, want an error naming the field and saying it was altered", err)
		}
		// A sealed value moved to another row does not open either.
		must(t, s.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "other", URL: "file:///srv/other"}))
		moved := raw.text(t, `SELECT url FROM storage_accounts WHERE name = ?`, "azure")
		raw.exec(t, `UPDATE storage_accounts SET url = ? WHERE name = ?`, moved, "other")
		raw.exec(t, `DELETE FROM storage_accounts WHERE name = ?`, "azure")
		if _, err := s.FindStorageAccounts(ctx); err == nil || !strings.Contains(err.Error(), "storage_accounts.other.url") {
			t.Fatalf("reading a sealed URL moved to another account: %v, want an error naming its field", err)
		}
	})
	t.Run("NoSealer", func(t *testing.T) {
		s, _ := open(t)
		s.SetSealer(nil)
		err := s.CreateStorageAccount(t.Context(), &tripcap.StorageAccount{Name: "azure", URL: "azblob://acct/c?key=" + secretKey})
		if err == nil || !strings.Contains(err.Error(), "no sealer") {
			t.Fatalf("storing a secret with no sealer: %v, want it refused", err)
		}
		if err := s.CreateActionGroup(t.Context(), fullGroup("ops")); err == nil || !strings.Contains(err.Error(), "no sealer") {
			t.Fatalf("storing an action group with no sealer: %v, want it refused", err)
		}
		if _, err := s.SealSecrets(t.Context(), false); err == nil {
			t.Fatal("SealSecrets with no sealer: no error")
		}
	})
	t.Run("SealExistingClear", func(t *testing.T) {
		s, raw := open(t)
		ctx := t.Context()
		g, r, a := secretFixtures(t, s)
		// What a database written before sealing holds: every value in clear.
		clearGroup, err := json.Marshal(g)
		must(t, err)
		clearResponder, err := json.Marshal(r)
		must(t, err)
		raw.exec(t, `UPDATE action_groups SET doc = ? WHERE id = ?`, string(clearGroup), g.ID)
		raw.exec(t, `UPDATE responders SET doc = ? WHERE id = ?`, string(clearResponder), r.ID)
		raw.exec(t, `UPDATE storage_accounts SET url = ? WHERE name = ?`, a.URL, a.Name)
		if !strings.Contains(rawSecrets(t, raw, g, r), secretSigning) {
			t.Fatal("the clear fixture is not in clear")
		}
		wantSecretsRead(t, s, g, r, a)
		n, err := s.SealSecrets(ctx, false)
		must(t, err)
		if n != 5 {
			t.Fatalf("SealSecrets sealed %d values, want 5", n)
		}
		wantNoSecret(t, "the database after SealSecrets", rawSecrets(t, raw, g, r))
		wantSecretsRead(t, s, g, r, a)
		if n, err := s.SealSecrets(ctx, false); err != nil || n != 0 {
			t.Fatalf("SealSecrets again: %d, %v; want 0 (all sealed)", n, err)
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		s, raw := open(t)
		ctx := t.Context()
		oldKey, newKey := seal.NewKey(), seal.NewKey()
		old, err := seal.New(oldKey)
		must(t, err)
		s.SetSealer(old)
		g, r, a := secretFixtures(t, s)
		// A token-signing key is resealed too.
		now := time.Now().UTC().Truncate(time.Second)
		key := &tripcap.SigningKey{KID: tripcap.NewID(), Algorithm: "ES256", PrivateKey: "-----BEGIN PRIVATE KEY----- " + secretCode, CreatedAt: now, RetireAfter: now.Add(time.Hour)}
		must(t, s.CreateSigningKey(ctx, key))
		if priv := raw.text(t, `SELECT private_key FROM signing_keys WHERE kid = ?`, key.KID); !strings.HasPrefix(priv, "tcs1:"+seal.KeyID(oldKey)+":") {
			t.Fatalf("the signing key is stored as %q, not sealed", priv)
		}
		both, err := seal.New(newKey, oldKey)
		must(t, err)
		s.SetSealer(both)
		n, err := s.SealSecrets(ctx, true)
		must(t, err)
		if n != 6 {
			t.Fatalf("rotation resealed %d values, want 6 (5 and the signing key)", n)
		}
		if priv := raw.text(t, `SELECT private_key FROM signing_keys WHERE kid = ?`, key.KID); !strings.HasPrefix(priv, "tcs1:"+seal.KeyID(newKey)+":") {
			t.Fatalf("after rotation the signing key is stored as %q, not under the new key", priv)
		}
		stored := rawSecrets(t, raw, g, r)
		if strings.Contains(stored, "tcs1:"+seal.KeyID(oldKey)) || strings.Count(stored, "tcs1:"+seal.KeyID(newKey)) != 5 {
			t.Fatalf("after rotation the values are not all under the new key %s:\n%s", seal.KeyID(newKey), stored)
		}
		onlyNew, err := seal.New(newKey)
		must(t, err)
		s.SetSealer(onlyNew)
		wantSecretsRead(t, s, g, r, a)
		keys, err := s.FindSigningKeys(ctx, tripcap.SigningKeyFilter{KID: &key.KID})
		must(t, err)
		if len(keys) != 1 || keys[0].PrivateKey != key.PrivateKey {
			t.Fatalf("the signing key read after rotation: %+v", keys)
		}
		s.SetSealer(old)
		if _, err := s.FindStorageAccounts(ctx); err == nil || !strings.Contains(err.Error(), seal.KeyID(newKey)) {
			t.Fatalf("reading with the old key alone after rotation: %v, want an error naming the key it needs", err)
		}
		// A server started with the wrong key finds out at once: the
		// start's SealSecrets opens every value.
		if _, err := s.SealSecrets(ctx, false); err == nil || !strings.Contains(err.Error(), seal.KeyID(newKey)) {
			t.Fatalf("SealSecrets with the wrong key: %v, want an error naming the key it needs", err)
		}
	})
}
