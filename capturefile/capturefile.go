// Package capturefile is the file stage of tripcap's pipeline (metric →
// rule → alert → responder → capture → file → triage): it moves a
// capture's files from the agent's spool into the capture's storage account
// and back out to the user. The whole path is here:
//
//   - where a file goes: Key names it as Azure names capture blobs, and
//     Files reserves it on the capture record, so every attempt (and every
//     replica) writes the same object;
//   - the upload target (Files.UploadTarget): presigned URLs of a storage
//     account that takes direct uploads (tripcap.DirectUploads), else the
//     server's own upload endpoint;
//   - the upload, on the agent: Sender asks for the target and sends the
//     file through the server (Files.UploadFile) or straight to storage
//     (Uploader), journaling the target so a restart resumes;
//   - completion (Files.CompleteUpload): the backend commits the parts and
//     the stored bytes' SHA-256 must equal the agent's;
//   - the download (Files.OpenFile), and deleting a capture's files.
//
// Files runs in the server (controlplane.Service embeds it); Sender and
// Uploader run in the agent. Between them are the HTTP routes and client
// calls of package http (file_routes.go, file_client.go), which only
// translate. The protocol is described in docs/storage.md.
package capturefile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// UploadTargetTTL is how long an agent's presigned upload URLs stay valid.
const UploadTargetTTL = 15 * time.Minute

// Key is Azure's blob naming scheme for a capture's first file:
// subscriptions/<sub>/resourcegroups/<rg>/providers/microsoft.compute/virtualmachines/<vm>/YYYY/MM/DD/packetcapture_HH_MM_SS_mmm.cap
func Key(h *tripcap.Host, created time.Time, format string) string {
	t := created.UTC()
	ext := ".cap"
	if format == tripcap.FormatPcapng {
		ext = ".pcapng"
	}
	return strings.ToLower(fmt.Sprintf("subscriptions/%s/resourcegroups/%s/providers/microsoft.compute/virtualmachines/%s", h.SubscriptionID, h.ResourceGroup, h.Name)) +
		fmt.Sprintf("/%04d/%02d/%02d/packetcapture_%02d_%02d_%02d_%03d%s", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e6, ext)
}

// fileKey is the key of a capture's file number index: continuous captures
// number their later files …_mmm_1.cap, …_mmm_2.cap.
func fileKey(base string, index int) string {
	if index == 0 {
		return base
	}
	ext := path.Ext(base)
	return fmt.Sprintf("%s_%d%s", strings.TrimSuffix(base, ext), index, ext)
}

// Index finds a file by name in a capture's file list, or -1.
func Index(c *tripcap.PacketCapture, name string) int {
	for i, f := range c.Files {
		if f.Name == name || path.Base(f.Name) == name {
			return i
		}
	}
	return -1
}

// HashFile returns the hex SHA-256 and the size of the file at p.
func HashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
