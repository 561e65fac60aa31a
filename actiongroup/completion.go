package actiongroup

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// A completed capture is an event of its own, not an alert firing: a
// responder tells it in tripcap's schema (SchemaCaptureCompleted), or, to a
// receiver that asked for Azure's common alert schema, in that schema marked
// so that no consumer of it takes it for a firing (NewCompletionCommonAlert).
// It is never sent in the AzureMonitorMetricAlert schema: that is what the
// seed's function starts captures on.

// SchemaCaptureCompleted is the schema id of a capture completion notice.
const SchemaCaptureCompleted = "tripcap.captureCompleted/1"

// Upload results (CompletedUpload.Result).
const (
	// UploadStored: every file reached the storage account.
	UploadStored = "Stored"
	// UploadStorageFailed: storage refused a file for good (Message says why).
	UploadStorageFailed = "StorageFailed"
	// UploadKeptOnHost: the capture has no storage account; its file stays
	// on the host (CompletedFile.LocalPath).
	UploadKeptOnHost = "KeptOnHost"
	// UploadNoFile: the capture ended without writing a file.
	UploadNoFile = "NoFile"
	// UploadPending: files were not stored when the notice had to go (the
	// wait for them timed out).
	UploadPending = "Pending"
)

// CaptureCompleted is a capture completion notice.
type CaptureCompleted struct {
	SchemaID string               `json:"schemaId"`
	Data     CaptureCompletedData `json:"data"`
}

// CaptureCompletedData is the notice's content.
type CaptureCompletedData struct {
	// EventID is the capture's id: one notice per capture, the same id if
	// it is ever sent twice (a server stopped mid-send).
	EventID string `json:"eventId"`
	// Time is when the notice was made (RFC 3339).
	Time      string           `json:"time"`
	Responder CompletedRef     `json:"responder"`
	RunID     string           `json:"runId"`
	Alert     CompletedAlert   `json:"alert"`
	Host      CompletedHost    `json:"host"`
	Capture   CompletedCapture `json:"capture"`
	Stats     CompletedStats   `json:"statistics"`
	Upload    CompletedUpload  `json:"upload"`
	Files     []CompletedFile  `json:"files"`
	// StoragePath is where the (first) file is ("" when kept on the host);
	// DownloadURL serves it through the server ("" when nothing is stored,
	// or the server has no public URL).
	StoragePath string `json:"storagePath"`
	DownloadURL string `json:"downloadUrl"`
	// Summary is the first lines of what the file holds (triage): what
	// changed at the alert, the trouble signs; none when it was not read.
	Summary []string `json:"summary,omitempty"`
}

// CompletedRef names a resource.
type CompletedRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CompletedAlert is the alert that started the capture, as the responder
// received it.
type CompletedAlert struct {
	// ID is the sender's id of the alert (the common schema's alertId, a
	// tripcap alert's id, an Alertmanager or Grafana fingerprint); "" when
	// the payload has none (the 2017 seed's custom JSON).
	ID        string `json:"id"`
	Condition string `json:"condition"`
	Rule      string `json:"rule,omitempty"`
	Summary   string `json:"summary,omitempty"`
	// FiredDateTime is when the sender says it fired ("" when it does not say).
	FiredDateTime string `json:"firedDateTime,omitempty"`
}

// CompletedHost is the capture's host.
type CompletedHost struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	ResourceID     string `json:"resourceId"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	Location       string `json:"location"`
}

// CompletedCapture is the capture as it ended.
type CompletedCapture struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Status       string   `json:"status"`
	StopReason   string   `json:"stopReason"`
	Errors       []string `json:"errors"`
	ErrorMessage string   `json:"errorMessage,omitempty"`
	StartTime    string   `json:"startTime,omitempty"`
	StopTime     string   `json:"stopTime,omitempty"`
}

// CompletedStats is the capture's health: what it holds, and what it lost.
type CompletedStats struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	KernelDrops uint64 `json:"kernelDrops"`
	// SnapLength is bytesToCapturePerPacket (0: whole packets);
	// TruncatedPackets how many packets were longer and are cut to it
	// (null when the host's agent does not count them).
	SnapLength       int64   `json:"snapLength"`
	TruncatedPackets *uint64 `json:"truncatedPackets"`
	// InterfacesEnded are the interfaces that went away while the capture
	// ran; it went on with the others.
	InterfacesEnded []InterfaceEnded `json:"interfacesEnded"`
}

// InterfaceEnded is one interface a capture lost.
type InterfaceEnded struct {
	Name   string `json:"name"`
	At     string `json:"at"`
	Reason string `json:"reason,omitempty"`
}

// CompletedUpload is what became of the files.
type CompletedUpload struct {
	// Result is UploadStored, UploadStorageFailed, UploadKeptOnHost,
	// UploadNoFile or UploadPending.
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}

// CompletedFile is one file of the capture.
type CompletedFile struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256,omitempty"`
	Stored      bool   `json:"stored"`
	StoragePath string `json:"storagePath,omitempty"`
	LocalPath   string `json:"localPath,omitempty"`
}

// Properties flattens the notice into string properties, Azure's
// customProperties: what receivers of the common schema read (and an
// email lists). The keys in CompletionProperties are always present.
func (c *CaptureCompleted) Properties() map[string]string {
	d := c.Data
	truncated := ""
	if d.Stats.TruncatedPackets != nil {
		truncated = strconv.FormatUint(*d.Stats.TruncatedPackets, 10)
	}
	ended := make([]string, len(d.Stats.InterfacesEnded))
	for i, e := range d.Stats.InterfacesEnded {
		ended[i] = e.Name
	}
	p := map[string]string{
		"notice":           SchemaCaptureCompleted,
		"responder":        d.Responder.Name,
		"runId":            d.RunID,
		"captureId":        d.Capture.ID,
		"captureName":      d.Capture.Name,
		"host":             d.Host.Name,
		"status":           d.Capture.Status,
		"stopReason":       d.Capture.StopReason,
		"packets":          strconv.FormatUint(d.Stats.Packets, 10),
		"bytes":            strconv.FormatUint(d.Stats.Bytes, 10),
		"kernelDrops":      strconv.FormatUint(d.Stats.KernelDrops, 10),
		"snapLength":       strconv.FormatInt(d.Stats.SnapLength, 10),
		"truncatedPackets": truncated,
		"interfacesEnded":  strings.Join(ended, ","),
		"upload":           d.Upload.Result,
		"uploadMessage":    d.Upload.Message,
		"storagePath":      d.StoragePath,
		"downloadUrl":      d.DownloadURL,
		"errors":           strings.Join(d.Capture.Errors, ","),
		"errorMessage":     d.Capture.ErrorMessage,
		"alertId":          d.Alert.ID,
		"alertSummary":     d.Alert.Summary,
		"alertCondition":   d.Alert.Condition,
		"summary":          strings.Join(d.Summary, "\n"),
	}
	for _, f := range d.Files {
		if f.LocalPath != "" {
			p["localPath"] = f.LocalPath
			break
		}
	}
	for k, v := range p {
		if v == "" && !isCompletionProperty(k) {
			delete(p, k)
		}
	}
	return p
}

// CompletionProperties are the properties every notice carries, empty when
// there is nothing to say, so a receiver can read them without checking.
var CompletionProperties = []string{"notice", "captureName", "captureId", "host", "status", "stopReason", "packets", "kernelDrops",
	"snapLength", "truncatedPackets", "interfacesEnded", "upload", "storagePath", "downloadUrl", "errors"}

func isCompletionProperty(k string) bool { return slices.Contains(CompletionProperties, k) }

// Description is the notice in one line.
func (c *CaptureCompleted) Description() string {
	d := c.Data
	s := fmt.Sprintf("packet capture %s on %s completed: %s", d.Capture.Name, d.Host.Name, d.Capture.Status)
	if d.Capture.StopReason != "" {
		s += " (" + d.Capture.StopReason + ")"
	}
	s += fmt.Sprintf(", %d packets, %d kernel drops", d.Stats.Packets, d.Stats.KernelDrops)
	if t := d.Stats.TruncatedPackets; t != nil && *t > 0 {
		s += fmt.Sprintf(", %d truncated to %d bytes", *t, d.Stats.SnapLength)
	}
	if n := len(d.Stats.InterfacesEnded); n > 0 {
		s += fmt.Sprintf(", %d interfaces ended", n)
	}
	s += ", upload " + d.Upload.Result
	return s
}

// CompletionCommonAlert is a completion notice in the common alert schema.
// Its alertContext is the notice itself (alertContext varies by
// monitoringService, and consumers that read it branch on that).
type CompletionCommonAlert struct {
	SchemaID string                    `json:"schemaId"`
	Data     CompletionCommonAlertData `json:"data"`
}

// CompletionCommonAlertData holds the three sections.
type CompletionCommonAlertData struct {
	Essentials       Essentials        `json:"essentials"`
	AlertContext     *CaptureCompleted `json:"alertContext"`
	CustomProperties map[string]string `json:"customProperties"`
}

// MonitoringServiceTripcap is the common schema's monitoringService of a
// completion notice: no Azure service's, so no consumer parses its
// alertContext as a metric, log or activity log alert's.
const MonitoringServiceTripcap = "tripcap"

// NewCompletionCommonAlert builds the common schema form of a notice,
// marked so that no consumer of the schema takes it for an alert firing:
//   - monitorCondition is Resolved, resolvedDateTime the capture's end:
//     pagers open incidents on Fired only, and a Resolved for an alert id
//     they never saw closes nothing;
//   - alertId is the capture's own (…/alerts/<capture id>), never the
//     triggering alert's, so that Resolved cannot close the real incident;
//   - signalType is "Activity Log" (an operation on a resource that
//     completed, not a measured signal: nothing reads metric values from
//     it), monitoringService MonitoringServiceTripcap, severity Sev4.
func NewCompletionCommonAlert(c *CaptureCompleted) CompletionCommonAlert {
	d := c.Data
	fired, resolved := d.Capture.StartTime, d.Capture.StopTime
	if fired == "" {
		fired = d.Time
	}
	if resolved == "" {
		resolved = d.Time
	}
	targets := []string{}
	if d.Host.ResourceID != "" {
		targets = append(targets, strings.ToLower(d.Host.ResourceID))
	}
	return CompletionCommonAlert{SchemaID: SchemaCommon, Data: CompletionCommonAlertData{
		Essentials: Essentials{
			AlertID:   "/subscriptions/" + d.Host.SubscriptionID + "/providers/Microsoft.AlertsManagement/alerts/" + d.EventID,
			AlertRule: "responder " + d.Responder.Name, Severity: tripcap.SeverityName(4),
			SignalType: "Activity Log", MonitorCondition: string(tripcap.ConditionResolved), MonitoringService: MonitoringServiceTripcap,
			AlertTargetIDs: targets, ConfigurationItems: []string{d.Host.Name},
			OriginAlertID: "tripcap.captureCompleted_" + d.EventID, FiredDateTime: fired, ResolvedDateTime: resolved,
			Description: c.Description(), EssentialsVersion: "1.0", AlertContextVersion: "1.0",
		},
		AlertContext:     c,
		CustomProperties: c.Properties(),
	}}
}

// completionPayload is the JSON of a notice in the receiver's schema.
func completionPayload(m Message, common bool) ([]byte, error) {
	if common {
		return json.Marshal(NewCompletionCommonAlert(m.Completion))
	}
	return json.Marshal(m.Completion)
}

// NotifyCompletion tells every receiver of g that takes completion
// notices (webhooks and email; a responder receiver does not: a completed
// capture is no alert to act on) and returns every attempt made. A
// disabled group tells no one.
func (n *Notifier) NotifyCompletion(ctx context.Context, g *tripcap.ActionGroup, c *CaptureCompleted) []tripcap.Delivery {
	if !g.IsEnabled() {
		return nil
	}
	var rs []Receiver
	for _, r := range n.Receivers(g) {
		if TakesCompletions(r) {
			rs = append(rs, r)
		}
	}
	return n.deliverAll(ctx, rs, Message{Group: g, Completion: c})
}

// TakesCompletions says whether a receiver is told of completed captures.
func TakesCompletions(r tripcap.ReceiverConfig) bool {
	return r.ReceiverKind() == tripcap.ReceiverWebhook || r.ReceiverKind() == tripcap.ReceiverEmail
}
