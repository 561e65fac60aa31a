package identity

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	p := PasswordParams{MemoryKiB: 64, Time: 1, Threads: 2}
	h, err := hashPassword("correct horse battery", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=2$") {
		t.Fatalf("hash %q does not carry its parameters", h)
	}
	if h2, _ := hashPassword("correct horse battery", p); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := verifyPassword(pw, h)
		if err != nil || ok != want {
			t.Errorf("verify %q: %v, %v; want %v", pw, ok, err, want)
		}
	}
	// A hash made with other parameters still verifies: they are read from it.
	old, _ := hashPassword("correct horse battery", PasswordParams{MemoryKiB: 32, Time: 2, Threads: 1})
	if ok, err := verifyPassword("correct horse battery", old); !ok || err != nil {
		t.Fatalf("older parameters: %v %v", ok, err)
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := verifyPassword("x", bad); err == nil {
			t.Errorf("%q accepted as a hash", bad)
		}
	}
	if err := checkPassword("elevenchars"); err == nil {
		t.Fatal("an 11-character password accepted")
	}
	if err := checkPassword("twelve chars"); err != nil {
		t.Fatal(err)
	}
	if err := checkPassword("ééééééééééé"); err == nil {
		t.Fatal("11 characters in 22 bytes accepted")
	}
}

// FuzzPasswordHash: no stored hash, however tampered, panics the parser
// or makes a login allocate past the bounds.
func FuzzPasswordHash(f *testing.F) {
	h, _ := hashPassword("correct horse battery", PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1})
	f.Add(h)
	f.Add("$argon2id$v=19$m=262144,t=16,p=255$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, encoded string) {
		p, salt, key, err := parsePasswordHash(encoded)
		if err != nil {
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.Time > maxTime || p.Threads < 1 || len(salt) < 8 || len(key) < 16 {
			t.Fatalf("%q parsed out of bounds: %+v", encoded, p)
		}
	})
}
