package tripcap

import (
	"context"
	"fmt"
	"time"
)

// Azure's capture target types.
const (
	TargetAzureVM   = "AzureVM"
	TargetAzureVMSS = "AzureVMSS"
)

// A scale set (Azure's virtualMachineScaleSets) is the hosts that carry
// LabelScaleSet with its name in its subscription and resource group; an
// instance's id is its host's name. A capture whose target is a scale set
// is one capture without a host (the one users name, list, stop and
// delete) and one session per selected instance: an ordinary capture of
// that host whose ScaleSetID is the scale-set capture's id.

// VMSSResourceID builds an Azure virtual machine scale set resource id.
func VMSSResourceID(subscription, group, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s", subscription, group, name)
}

// ParseVMSSResourceID splits an Azure scale set resource id, case-insensitively.
func ParseVMSSResourceID(id string) (subscription, group, name string, ok bool) {
	return ParseResourceID(id, "Microsoft.Compute", "virtualMachineScaleSets")
}

// ScaleSetOf returns the resource id of the scale set h is an instance of,
// "" when it is in none.
func (h *Host) ScaleSetOf() string {
	if n := h.Labels[LabelScaleSet]; n != "" {
		return VMSSResourceID(h.SubscriptionID, h.ResourceGroup, n)
	}
	return ""
}

// ScaleSet is a scale set as the hosts make it: those labelled
// LabelScaleSet=Name in SubscriptionID and ResourceGroup.
type ScaleSet struct {
	Name           string `json:"name"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	// Location is its instances' location (the first's, by name, should
	// they differ: a capture then needs a scope within one location).
	Location string `json:"location"`
	// Instances are its hosts, ordered by name.
	Instances []*Host `json:"instances"`
}

// ResourceID is the scale set's Azure resource id.
func (ss *ScaleSet) ResourceID() string {
	return VMSSResourceID(ss.SubscriptionID, ss.ResourceGroup, ss.Name)
}

// IsScaleSet reports whether c is a scale-set capture: the one without a
// host whose sessions run on the instances.
func (c *PacketCapture) IsScaleSet() bool {
	return c.HostID == "" && c.ScaleSetID == "" && c.Parameters.TargetType == TargetAzureVMSS
}

// ScaleSetSession is one instance's part of a scale-set capture, as the
// scale-set capture shows it.
type ScaleSetSession struct {
	// InstanceID is the instance's id in the scale set: its host's name.
	InstanceID string `json:"instanceId"`
	// CaptureID is the session's own capture id (its files, its download).
	CaptureID         string              `json:"captureId"`
	HostID            string              `json:"hostId"`
	Status            PacketCaptureStatus `json:"packetCaptureStatus"`
	StopReason        string              `json:"stopReason,omitempty"`
	Errors            []string            `json:"packetCaptureError,omitempty"`
	ErrorMessage      string              `json:"errorMessage,omitempty"`
	StoragePath       string              `json:"storagePath,omitempty"`
	CaptureStartTime  *time.Time          `json:"captureStartTime,omitempty"`
	CaptureStopTime   *time.Time          `json:"captureStopTime,omitempty"`
	Stats             CaptureStats        `json:"statistics"`
	ProvisioningState ProvisioningState   `json:"provisioningState"`
}

// ScaleSetCaptureStore stores scale-set captures.
type ScaleSetCaptureStore interface {
	// CreateScaleSetCapture inserts the scale-set capture set (IsScaleSet)
	// and its sessions (ScaleSetID = set.ID, same name and watcher), each
	// with Version 1, and bumps every session's host's revision, in one
	// transaction: all or none. ECONFLICT when a live capture of set's name
	// exists in the watcher; ELIMIT when the sessions would take the
	// watcher past MaxCaptures active captures (the scale-set capture
	// itself does not count: it runs nowhere).
	CreateScaleSetCapture(ctx context.Context, set *PacketCapture, sessions []*PacketCapture) error
}
