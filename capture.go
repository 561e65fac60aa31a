package tripcap

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// PacketCaptureStatus is the state of a capture session on its host, with Azure's values.
type PacketCaptureStatus string

const (
	StatusNotStarted PacketCaptureStatus = "NotStarted"
	StatusRunning    PacketCaptureStatus = "Running"
	StatusStopped    PacketCaptureStatus = "Stopped"
	StatusError      PacketCaptureStatus = "Error"
	StatusUnknown    PacketCaptureStatus = "Unknown"
)

// Terminal reports whether a session in this status will not run again.
func (s PacketCaptureStatus) Terminal() bool { return s == StatusStopped || s == StatusError }

// Stop reasons. Azure documents TimeExceeded; the others name the remaining ways a session ends.
const (
	StopTimeExceeded       = "TimeExceeded"
	StopTotalBytesExceeded = "TotalBytesExceeded"
	StopManuallyStopped    = "ManuallyStopped"
	StopSessionDeleted     = "SessionDeleted"
	StopAgentStopped       = "AgentStopped"
	StopCaptureFailed      = "CaptureFailed"
	StopLocalFileFailed    = "LocalFileFailed"
)

// Capture errors, Azure's packetCaptureError values.
const (
	CaptureErrInternal      = "InternalError"
	CaptureErrAgentStopped  = "AgentStopped"
	CaptureErrCaptureFailed = "CaptureFailed"
	CaptureErrLocalFile     = "LocalFileFailed"
	CaptureErrStorageFailed = "StorageFailed"
)

// ProvisioningState is the ARM provisioning state of a capture resource.
type ProvisioningState string

const (
	ProvisioningSucceeded ProvisioningState = "Succeeded"
	ProvisioningUpdating  ProvisioningState = "Updating"
	ProvisioningDeleting  ProvisioningState = "Deleting"
	ProvisioningFailed    ProvisioningState = "Failed"
)

// DesiredState is what the control plane wants the agent to do with a session.
// The agent reconciles toward it after any disconnect.
type DesiredState string

const (
	DesiredRunning DesiredState = "Running"
	DesiredStopped DesiredState = "Stopped"
	DesiredDeleted DesiredState = "Deleted"
)

// Capture file formats. pcap is Azure's .cap.
const (
	FormatPcap   = "pcap"
	FormatPcapng = "pcapng"
	// MetadataFileSuffix ends the name of the host's network state file a
	// capture with includeMetadata writes beside its packets.
	MetadataFileSuffix = ".metadata.json"
)

// Defaults and ranges from Azure's packetCaptures contract.
const (
	DefaultTotalBytesPerSession       = 1073741824
	DefaultTimeLimitInSeconds         = 18000
	MaxTimeLimitInSeconds             = 18000
	MaxBytesValue                     = 4294967295
	DefaultFileCount                  = 10
	MaxFileCount                      = 10000
	DefaultFileSizeInBytes            = 104857600
	DefaultSessionTimeLimitInSeconds  = 86400
	MaxSessionTimeLimitInSeconds      = 604800
	DefaultCaptureDir                 = "/var/captures"
	DefaultParallelCapturesPerWatcher = 10000
	MaxPreTriggerSeconds              = 3600
)

// PacketCaptureFilter is one Azure filter; several are OR-ed. Values keep
// Azure's string forms: a single value, an "a-b" range, or an "a;b;c" list.
type PacketCaptureFilter struct {
	Protocol        string `json:"protocol,omitempty"`
	LocalIPAddress  string `json:"localIPAddress,omitempty"`
	LocalPort       string `json:"localPort,omitempty"`
	RemoteIPAddress string `json:"remoteIPAddress,omitempty"`
	RemotePort      string `json:"remotePort,omitempty"`
}

// StorageLocation says where a capture's file goes: a storage account
// (StorageID, with StoragePath filled by the server) and/or a path on the host.
type StorageLocation struct {
	StorageID   string `json:"storageId,omitempty"`
	StoragePath string `json:"storagePath,omitempty"`
	FilePath    string `json:"filePath,omitempty"`
	LocalPath   string `json:"localPath,omitempty"`
}

// CaptureSettings configure continuous capture: a ring of files.
type CaptureSettings struct {
	FileCount                 *int32 `json:"fileCount,omitempty"`
	FileSizeInBytes           *int64 `json:"fileSizeInBytes,omitempty"`
	SessionTimeLimitInSeconds *int32 `json:"sessionTimeLimitInSeconds,omitempty"`
}

// CaptureScope selects scale-set instances; both empty means all.
type CaptureScope struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// PacketCaptureParameters are the properties a caller sets, Azure's names and
// defaults, plus tripcap's own (format, preTriggerSeconds, includeMetadata, interfaces).
type PacketCaptureParameters struct {
	Target                  string                `json:"target"`
	TargetType              string                `json:"targetType,omitempty"`
	Scope                   *CaptureScope         `json:"scope,omitempty"`
	BytesToCapturePerPacket int64                 `json:"bytesToCapturePerPacket"`
	TotalBytesPerSession    int64                 `json:"totalBytesPerSession"`
	TimeLimitInSeconds      int32                 `json:"timeLimitInSeconds"`
	StorageLocation         StorageLocation       `json:"storageLocation"`
	Filters                 []PacketCaptureFilter `json:"filters,omitempty"`
	// FilterExpression is a tcpdump expression ("tcp port 80 and host
	// 198.18.0.2"); with filters too, a packet must match both.
	FilterExpression  string           `json:"filterExpression,omitempty"`
	ContinuousCapture *bool            `json:"continuousCapture,omitempty"`
	CaptureSettings   *CaptureSettings `json:"captureSettings,omitempty"`

	Format            string   `json:"format,omitempty"`
	Interfaces        []string `json:"interfaces,omitempty"`
	PreTriggerSeconds int32    `json:"preTriggerSeconds,omitempty"`
	IncludeMetadata   bool     `json:"includeMetadata,omitempty"`
}

// CaptureStats are a session's live counters.
type CaptureStats struct {
	// TruncatedPackets are the packets longer than the snap length
	// (bytesToCapturePerPacket), kept cut to it; nil when the agent does
	// not count them, so that "none" and "not known" differ.
	TruncatedPackets *uint64 `json:"truncatedPackets,omitempty"`
	// PreTrigger is what a capture that asked for packets from before its
	// start got, and why it got fewer, if it did.
	PreTrigger *PreTriggerResult `json:"preTrigger,omitempty"`

	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	KernelDrops uint64 `json:"kernelDrops"`
	// EndedInterfaces are the interfaces that went away (deleted, or set
	// down) while the session ran; it went on capturing on the others.
	EndedInterfaces []InterfaceEnd `json:"endedInterfaces,omitempty"`
}

// InterfaceEnd says when a session lost one of its interfaces, and why.
type InterfaceEnd struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// PreTriggerResult is the part of a capture from before it started.
type PreTriggerResult struct {
	RequestedSeconds int32 `json:"requestedSeconds"`
	// Seconds is how far before the start the file begins; Packets how many
	// packets it holds from then.
	Seconds float64 `json:"seconds"`
	Packets uint64  `json:"packets"`
	// Notes say why there are fewer than asked (no buffer, an interface
	// it does not cover, a shorter buffer).
	Notes []string `json:"notes,omitempty"`
}

// CaptureFile is one file a session wrote (several for continuous capture).
type CaptureFile struct {
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256,omitempty"`
	Stored    bool      `json:"stored"`
	StorageID string    `json:"storageId,omitempty"`
	Key       string    `json:"key,omitempty"`
	LocalPath string    `json:"localPath,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// DeletedAt is when the stored copy was deleted (by a user or the
	// retention policy); the record stays so the file's fate is known.
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// PacketCapture is a capture session resource, scoped to a network watcher.
type PacketCapture struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WatcherID string `json:"watcherId"`
	HostID    string `json:"hostId"`
	Version   int64  `json:"version"`
	// ScaleSetID is the scale-set capture this session is one host's part
	// of (ScaleSetCapture); "" for any other capture.
	ScaleSetID string `json:"scaleSetCaptureId,omitempty"`
	// Sessions are a scale-set capture's sessions, one per host, filled
	// when it is read (never stored).
	Sessions []ScaleSetSession `json:"sessions,omitempty"`

	Parameters PacketCaptureParameters `json:"parameters"`

	ProvisioningState ProvisioningState   `json:"provisioningState"`
	Desired           DesiredState        `json:"desiredState"`
	Status            PacketCaptureStatus `json:"packetCaptureStatus"`
	StopReason        string              `json:"stopReason,omitempty"`
	Errors            []string            `json:"packetCaptureError,omitempty"`
	ErrorMessage      string              `json:"errorMessage,omitempty"`
	CaptureStartTime  *time.Time          `json:"captureStartTime,omitempty"`
	CaptureStopTime   *time.Time          `json:"captureStopTime,omitempty"`
	Stats             CaptureStats        `json:"statistics"`
	Files             []CaptureFile       `json:"files,omitempty"`
	// Summary is what the files hold, computed by the agent when the
	// session ends (triage): the first answer to "what happened?".
	Summary *CaptureSummary `json:"summary,omitempty"`
	// Cause records why the capture exists, e.g. the alert that triggered it.
	Cause string `json:"cause,omitempty"`
	// AlertID is the alert a responder made the capture for (the sender's
	// alert id, else the responder's alert key), so its files can be found
	// by alert after the capture was replaced.
	AlertID string `json:"alertId,omitempty"`
	// StorageKey is the object key of the first file in the storage account;
	// later files of a continuous capture are numbered from it.
	StorageKey string `json:"storageKey,omitempty"`

	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// ETag is the entity tag of the capture's current version.
func (c *PacketCapture) ETag() string { return fmt.Sprintf(`W/"%d"`, c.Version) }

// Active reports whether the session may still be running on its host.
func (c *PacketCapture) Active() bool { return !c.Status.Terminal() && c.DeletedAt == nil }

// ApplyDefaults fills unset properties with Azure's defaults.
func (p *PacketCaptureParameters) ApplyDefaults() {
	if p.TotalBytesPerSession == 0 {
		p.TotalBytesPerSession = DefaultTotalBytesPerSession
	}
	if p.TimeLimitInSeconds == 0 {
		p.TimeLimitInSeconds = DefaultTimeLimitInSeconds
	}
	if p.Format == "" {
		p.Format = FormatPcap
	}
	for i := range p.Filters {
		if p.Filters[i].Protocol == "" {
			p.Filters[i].Protocol = "Any"
		}
	}
	if p.ContinuousCapture != nil && *p.ContinuousCapture {
		if p.CaptureSettings == nil {
			p.CaptureSettings = &CaptureSettings{}
		}
		s := p.CaptureSettings
		if s.FileCount == nil {
			s.FileCount = new(int32(DefaultFileCount))
		}
		if s.FileSizeInBytes == nil {
			s.FileSizeInBytes = new(int64(DefaultFileSizeInBytes))
		}
		if s.SessionTimeLimitInSeconds == nil {
			s.SessionTimeLimitInSeconds = new(int32(DefaultSessionTimeLimitInSeconds))
		}
	}
}

// Continuous reports whether the session writes a ring of files.
func (p *PacketCaptureParameters) Continuous() bool {
	return p.ContinuousCapture != nil && *p.ContinuousCapture
}

// Validate checks the parameters against Azure's ranges and tripcap's rules.
// The error names the field and the reason.
func (p *PacketCaptureParameters) Validate() error {
	if strings.TrimSpace(p.Target) == "" {
		return Errorf(EINVALID, "target: required (a host name, id or Azure VM resource id)")
	}
	switch p.TargetType {
	case "", "AzureVM", "AzureVMSS":
	default:
		return Errorf(EINVALID, "targetType: %q is not one of AzureVM, AzureVMSS", p.TargetType)
	}
	if p.BytesToCapturePerPacket < 0 || p.BytesToCapturePerPacket > MaxBytesValue {
		return Errorf(EINVALID, "bytesToCapturePerPacket: %d is outside 0..%d", p.BytesToCapturePerPacket, int64(MaxBytesValue))
	}
	if p.TotalBytesPerSession < 0 || p.TotalBytesPerSession > MaxBytesValue {
		return Errorf(EINVALID, "totalBytesPerSession: %d is outside 0..%d", p.TotalBytesPerSession, int64(MaxBytesValue))
	}
	if p.TimeLimitInSeconds < 0 || p.TimeLimitInSeconds > MaxTimeLimitInSeconds {
		return Errorf(EINVALID, "timeLimitInSeconds: %d is outside 0..%d", p.TimeLimitInSeconds, MaxTimeLimitInSeconds)
	}
	switch p.Format {
	case "", FormatPcap, FormatPcapng:
	default:
		return Errorf(EINVALID, "format: %q is not one of pcap, pcapng", p.Format)
	}
	if p.PreTriggerSeconds < 0 || p.PreTriggerSeconds > MaxPreTriggerSeconds {
		return Errorf(EINVALID, "preTriggerSeconds: %d is outside 0..%d", p.PreTriggerSeconds, MaxPreTriggerSeconds)
	}
	for i, name := range p.Interfaces {
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n") {
			return Errorf(EINVALID, "interfaces[%d]: %q is not a valid interface name", i, name)
		}
	}
	if err := p.StorageLocation.validate(); err != nil {
		return err
	}
	if err := ValidateFilters(p.Filters); err != nil {
		return err
	}
	if _, err := ParseFilterExpression(p.FilterExpression); err != nil {
		return Errorf(EINVALID, "filterExpression: %s", ErrorMessage(err))
	}
	if s := p.CaptureSettings; s != nil {
		if s.FileCount != nil && (*s.FileCount < 0 || *s.FileCount > MaxFileCount) {
			return Errorf(EINVALID, "captureSettings.fileCount: %d is outside 0..%d", *s.FileCount, MaxFileCount)
		}
		if s.FileSizeInBytes != nil && (*s.FileSizeInBytes < 0 || *s.FileSizeInBytes > MaxBytesValue) {
			return Errorf(EINVALID, "captureSettings.fileSizeInBytes: %d is outside 0..%d", *s.FileSizeInBytes, int64(MaxBytesValue))
		}
		if s.SessionTimeLimitInSeconds != nil && (*s.SessionTimeLimitInSeconds < 0 || *s.SessionTimeLimitInSeconds > MaxSessionTimeLimitInSeconds) {
			return Errorf(EINVALID, "captureSettings.sessionTimeLimitInSeconds: %d is outside 0..%d", *s.SessionTimeLimitInSeconds, MaxSessionTimeLimitInSeconds)
		}
	}
	return nil
}

func (l StorageLocation) validate() error {
	if l.StorageID == "" && l.FilePath == "" && l.LocalPath == "" {
		return Errorf(EINVALID, "storageLocation: give storageId, filePath or localPath")
	}
	for _, f := range []struct{ name, value string }{{"filePath", l.FilePath}, {"localPath", l.LocalPath}} {
		if f.value == "" {
			continue
		}
		if _, err := ConfineCapturePath(DefaultCaptureDir, f.value); err != nil {
			return Errorf(EINVALID, "storageLocation.%s: %s", f.name, ErrorMessage(err))
		}
		if ext := path.Ext(f.value); ext != ".cap" && ext != ".pcap" && ext != ".pcapng" {
			return Errorf(EINVALID, "storageLocation.%s: %q must end in .cap, .pcap or .pcapng", f.name, f.value)
		}
	}
	return nil
}

// ConfineCapturePath resolves p (absolute, or relative to dir) lexically and
// refuses any path that leaves dir. Symlinks are checked again where the file
// is opened, on the host.
func ConfineCapturePath(dir, p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", Errorf(EINVALID, "path contains a NUL byte")
	}
	dir = filepath.Clean(dir)
	full := p
	if !filepath.IsAbs(p) {
		full = filepath.Join(dir, p)
	}
	full = filepath.Clean(full)
	// Rel, not a prefix test, so a relative directory (".") confines too;
	// an absolute path against a relative directory cannot be told apart
	// and is refused.
	rel, err := filepath.Rel(dir, full)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", Errorf(EINVALID, "%q is not under the capture directory %s", p, dir)
	}
	return full, nil
}

// AddCaptureError adds an error code to a capture's errors, once.
func AddCaptureError(errs []string, code string) []string {
	if slices.Contains(errs, code) {
		return errs
	}
	return append(errs, code)
}
