package sqlstore

// The JSON documents kept beside a row's queryable columns.

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tripcap/tripcap"
)

// captureDoc is the captures.doc column: every field of a PacketCapture
// that has no column of its own. It embeds the capture, so a field added to
// PacketCapture is stored without a change here, and shadows the fields kept
// in columns (id, name, watcher_id, host_id, version, status, desired,
// created_at, updated_at, deleted_at, scale_set_id) with never-set omitempty
// fields of the same JSON names, which encoding/json prefers to the embedded
// ones; a scale-set capture's sessions are read, never stored.
type captureDoc struct {
	*tripcap.PacketCapture
	ID         string     `json:"id,omitempty"`
	Name       string     `json:"name,omitempty"`
	WatcherID  string     `json:"watcherId,omitempty"`
	HostID     string     `json:"hostId,omitempty"`
	Version    int64      `json:"version,omitempty"`
	Desired    string     `json:"desiredState,omitempty"`
	Status     string     `json:"packetCaptureStatus,omitempty"`
	CreatedAt  *time.Time `json:"createdAt,omitempty"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
	DeletedAt  *time.Time `json:"deletedAt,omitempty"`
	ScaleSetID string     `json:"scaleSetCaptureId,omitempty"`
	Sessions   []struct{} `json:"sessions,omitempty"`
}

// EncodeCapture returns the doc column of c.
func EncodeCapture(c *tripcap.PacketCapture) ([]byte, error) {
	b, err := json.Marshal(captureDoc{PacketCapture: c})
	if err != nil {
		return nil, fmt.Errorf("encode capture %s: %w", c.ID, err)
	}
	return b, nil
}

// DecodeCapture fills the document fields of c, whose column fields are
// already set, from its doc column. The columns win over anything in doc.
func DecodeCapture(doc []byte, c *tripcap.PacketCapture) error {
	cols := *c
	if err := json.Unmarshal(doc, &captureDoc{PacketCapture: c}); err != nil {
		return fmt.Errorf("decode capture %s: %w", cols.ID, err)
	}
	c.ID, c.Name, c.WatcherID, c.HostID, c.Version = cols.ID, cols.Name, cols.WatcherID, cols.HostID, cols.Version
	c.ScaleSetID, c.Sessions = cols.ScaleSetID, nil
	c.Status, c.Desired = cols.Status, cols.Desired
	c.CreatedAt, c.UpdatedAt, c.DeletedAt = cols.CreatedAt, cols.UpdatedAt, cols.DeletedAt
	// Every time in the document, however deep, in UTC as the columns are.
	toUTC(c)
	return nil
}

// EncodeLabels returns the labels column of a host.
func EncodeLabels(labels map[string]string) ([]byte, error) {
	if labels == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return nil, fmt.Errorf("encode labels: %w", err)
	}
	return b, nil
}

// DecodeLabels reads the labels column of a host; no labels decode to nil.
func DecodeLabels(b []byte) (map[string]string, error) {
	var labels map[string]string
	if err := json.Unmarshal(b, &labels); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	if len(labels) == 0 {
		return nil, nil
	}
	return labels, nil
}

// EncodeInventory returns the inventory column of a host.
func EncodeInventory(inv tripcap.Inventory) ([]byte, error) {
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return b, nil
}

// DecodeInventory reads the inventory column of a host.
func DecodeInventory(b []byte) (tripcap.Inventory, error) {
	var inv tripcap.Inventory
	if err := json.Unmarshal(b, &inv); err != nil {
		return inv, fmt.Errorf("decode inventory: %w", err)
	}
	return inv, nil
}
