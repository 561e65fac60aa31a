package storetest

import (
	"testing"
	"time"

	"github.com/tripcap/tripcap"
)

func testStorageAccounts(t *testing.T, s tripcap.Store) {
	ctx := t.Context()
	created := time.Date(2026, 11, 22, 6, 30, 0, 123456000, time.UTC)
	b := &tripcap.StorageAccount{Name: "b-s3", URL: "s3://bucket/prefix?endpoint=127.0.0.1:9000", CreatedAt: created}
	a := &tripcap.StorageAccount{Name: "a-blob", URL: "azblob://devstoreaccount1/network-watcher-logs"}
	for _, acc := range []*tripcap.StorageAccount{b, a} {
		if err := s.CreateStorageAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	if a.CreatedAt.IsZero() {
		t.Error("CreatedAt not filled")
	}
	err := s.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "b-s3", URL: "file:///x"})
	wantCode(t, err, tripcap.ECONFLICT)
	wantCode(t, s.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "bad name", URL: "file:///x"}), tripcap.EINVALID)
	wantCode(t, s.CreateStorageAccount(ctx, &tripcap.StorageAccount{Name: "nourl"}), tripcap.EINVALID)
	got, err := s.FindStorageAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a-blob" || got[1].Name != "b-s3" || got[1].URL != b.URL || !got[1].CreatedAt.Equal(created) {
		t.Fatalf("accounts %+v", got)
	}
	if err := s.DeleteStorageAccount(ctx, "a-blob"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteStorageAccount(ctx, "a-blob"), tripcap.ENOTFOUND)
	if got, _ := s.FindStorageAccounts(ctx); len(got) != 1 {
		t.Fatalf("after delete: %d accounts", len(got))
	}
}
