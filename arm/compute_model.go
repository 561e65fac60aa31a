package arm

// Hosts as Microsoft.Compute resources: a host is a virtual machine whose
// tripcap agent is the Network Watcher agent extension, and the hosts
// sharing a tripcap.LabelScaleSet label are a virtual machine scale set,
// each an instance whose id is the host's name. The JSON is what the
// armcompute SDK (v8) parses, which Az PowerShell's Get-AzVM shares.

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// The watcher agent extension as Azure names it.
const (
	watcherExtensionName      = "AzureNetworkWatcherExtension"
	watcherExtensionPublisher = "Microsoft.Azure.NetworkWatcher"
	watcherExtensionType      = "NetworkWatcherAgentLinux"
	watcherExtensionVersion   = "1.4"
)

// Resource types.
const (
	vmType     = "Microsoft.Compute/virtualMachines"
	vmssType   = "Microsoft.Compute/virtualMachineScaleSets"
	vmssVMType = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
)

// VM is Microsoft.Compute/virtualMachines.
type VM struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties VMProperties      `json:"properties"`
	Resources  []*VMExtension    `json:"resources,omitempty"`
}

// VMProperties are a VM's properties (those a host has).
type VMProperties struct {
	hostProperties
	VirtualMachineScaleSet *SubResource `json:"virtualMachineScaleSet,omitempty"`
}

// hostProperties are the properties a VM and a scale-set instance share.
type hostProperties struct {
	VMID              string          `json:"vmId"`
	ProvisioningState string          `json:"provisioningState"`
	TimeCreated       time.Time       `json:"timeCreated"`
	OSProfile         OSProfile       `json:"osProfile"`
	StorageProfile    StorageProfile  `json:"storageProfile"`
	NetworkProfile    NetworkProfile  `json:"networkProfile"`
	InstanceView      *VMInstanceView `json:"instanceView,omitempty"`
}

// OSProfile is a VM's operating system settings.
type OSProfile struct {
	ComputerName       string         `json:"computerName"`
	LinuxConfiguration map[string]any `json:"linuxConfiguration,omitempty"`
}

// StorageProfile is a VM's disks: the OS's type is all a host tells.
type StorageProfile struct {
	OSDisk OSDisk `json:"osDisk"`
}

// OSDisk is a VM's OS disk.
type OSDisk struct {
	OSType string `json:"osType"`
	Name   string `json:"name"`
}

// NetworkProfile is a VM's network interfaces.
type NetworkProfile struct {
	NetworkInterfaces []NICReference `json:"networkInterfaces"`
}

// NICReference is a VM's reference to a network interface.
type NICReference struct {
	ID         string      `json:"id"`
	Properties NICRefProps `json:"properties"`
}

// NICRefProps says which interface is the primary one.
type NICRefProps struct {
	Primary bool `json:"primary"`
}

// SubResource is a reference by id.
type SubResource struct {
	ID string `json:"id"`
}

// VMInstanceView is a VM's run-time state ($expand=instanceView, or
// …/instanceView).
type VMInstanceView struct {
	ComputerName string               `json:"computerName,omitempty"`
	OSName       string               `json:"osName,omitempty"`
	OSVersion    string               `json:"osVersion,omitempty"`
	VMAgent      *VMAgentView         `json:"vmAgent,omitempty"`
	Extensions   []*ExtensionView     `json:"extensions"`
	Statuses     []InstanceViewStatus `json:"statuses"`
}

// VMAgentView is the guest agent's state: the tripcap agent's.
type VMAgentView struct {
	VMAgentVersion string               `json:"vmAgentVersion"`
	Statuses       []InstanceViewStatus `json:"statuses"`
}

// ExtensionView is an extension's run-time state.
type ExtensionView struct {
	Name               string               `json:"name"`
	Type               string               `json:"type"`
	TypeHandlerVersion string               `json:"typeHandlerVersion"`
	Statuses           []InstanceViewStatus `json:"statuses"`
}

// InstanceViewStatus is one status line of an instance view.
type InstanceViewStatus struct {
	Code          string     `json:"code"`
	Level         string     `json:"level"`
	DisplayStatus string     `json:"displayStatus"`
	Message       string     `json:"message,omitempty"`
	Time          *time.Time `json:"time,omitempty"`
}

// VMExtension is Microsoft.Compute/virtualMachines/extensions.
type VMExtension struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Location   string                `json:"location"`
	Properties VMExtensionProperties `json:"properties"`
}

// VMExtensionProperties are an extension's properties.
type VMExtensionProperties struct {
	Publisher               string         `json:"publisher"`
	Type                    string         `json:"type"`
	TypeHandlerVersion      string         `json:"typeHandlerVersion"`
	AutoUpgradeMinorVersion bool           `json:"autoUpgradeMinorVersion"`
	ProvisioningState       string         `json:"provisioningState"`
	InstanceView            *ExtensionView `json:"instanceView,omitempty"`
}

// VMSS is Microsoft.Compute/virtualMachineScaleSets.
type VMSS struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Location   string         `json:"location"`
	SKU        SKU            `json:"sku"`
	Properties VMSSProperties `json:"properties"`
}

// SKU is a scale set's size: its capacity is its instance count.
type SKU struct {
	Name     string `json:"name"`
	Tier     string `json:"tier"`
	Capacity int64  `json:"capacity"`
}

// VMSSProperties are a scale set's properties.
type VMSSProperties struct {
	UniqueID              string            `json:"uniqueId"`
	ProvisioningState     string            `json:"provisioningState"`
	OrchestrationMode     string            `json:"orchestrationMode"`
	UpgradePolicy         map[string]string `json:"upgradePolicy"`
	VirtualMachineProfile VMSSProfile       `json:"virtualMachineProfile"`
}

// VMSSProfile is what every instance of a scale set has: the agent.
type VMSSProfile struct {
	ExtensionProfile VMSSExtensionProfile `json:"extensionProfile"`
}

// VMSSExtensionProfile lists a scale set's extensions.
type VMSSExtensionProfile struct {
	Extensions []VMSSExtension `json:"extensions"`
}

// VMSSExtension is one extension of a scale set's model.
type VMSSExtension struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Properties VMExtensionProperties `json:"properties"`
}

// VMSSVM is Microsoft.Compute/virtualMachineScaleSets/virtualMachines: an instance.
type VMSSVM struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	InstanceID string            `json:"instanceId"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties VMSSVMProperties  `json:"properties"`
	Resources  []*VMExtension    `json:"resources,omitempty"`
}

// VMSSVMProperties are an instance's properties.
type VMSSVMProperties struct {
	hostProperties
	LatestModelApplied       bool   `json:"latestModelApplied"`
	VirtualMachineResourceID string `json:"virtualMachineResourceId,omitempty"`
}

// stableUUID is a name-based UUID (version 5 layout over SHA-256) of what,
// so a host keeps one vmId, a scale set one uniqueId.
func stableUUID(what string) string {
	sum := sha256.Sum256([]byte("tripcap:" + what))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// vmTags are a host's labels, as tags.
func vmTags(h *tripcap.Host) map[string]string {
	if len(h.Labels) == 0 {
		return nil
	}
	return h.Labels
}

// hostNIC is one of a host's network interfaces as a
// Microsoft.Network/networkInterfaces resource named <vm>-<interface>.
type hostNIC struct {
	tripcap.Interface
	Name, ID string
	// Primary is the first interface that is up and not loopback.
	Primary bool
}

// nicsOfHost are a host's interfaces but loopback, as network interfaces.
func nicsOfHost(h *tripcap.Host) []hostNIC {
	primary := slices.IndexFunc(h.Inventory.Interfaces, func(i tripcap.Interface) bool { return i.Up && !i.Loopback })
	var out []hostNIC
	for i, ifc := range h.Inventory.Interfaces {
		if ifc.Loopback {
			continue
		}
		name := h.Name + "-" + ifc.Name
		out = append(out, hostNIC{Interface: ifc, Name: name, Primary: i == primary,
			ID: "/subscriptions/" + h.SubscriptionID + "/resourceGroups/" + h.ResourceGroup + "/providers/Microsoft.Network/networkInterfaces/" + name})
	}
	return out
}

// nicsOf is a host's network profile: references to its interfaces.
func nicsOf(h *tripcap.Host) NetworkProfile {
	np := NetworkProfile{NetworkInterfaces: []NICReference{}}
	for _, n := range nicsOfHost(h) {
		np.NetworkInterfaces = append(np.NetworkInterfaces, NICReference{ID: n.ID, Properties: NICRefProps{Primary: n.Primary}})
	}
	return np
}

// osType is Azure's osType of the host's OS ("Linux" for tripcap's agent).
func osType(h *tripcap.Host) string {
	if strings.EqualFold(h.Inventory.OS, "windows") {
		return "Windows"
	}
	return "Linux"
}

// extensionView is the agent as the watcher extension's instance view:
// provisioned while it reports, not ready while it does not.
func extensionView(h *tripcap.Host) *ExtensionView {
	st := InstanceViewStatus{Code: "ProvisioningState/succeeded", Level: "Info", DisplayStatus: "Provisioning succeeded",
		Message: "tripcap agent " + h.Inventory.AgentVersion + " is reporting", Time: timePtr(h.LastSeen)}
	if h.State != tripcap.HostOnline {
		st = InstanceViewStatus{Code: "ProvisioningState/Unavailable", Level: "Warning", DisplayStatus: "Not Ready",
			Message: "the tripcap agent has not reported since " + h.LastSeen.UTC().Format(time.RFC3339), Time: timePtr(h.LastSeen)}
	}
	return &ExtensionView{Name: watcherExtensionName, Type: watcherExtensionPublisher + "." + watcherExtensionType,
		TypeHandlerVersion: watcherExtensionVersion, Statuses: []InstanceViewStatus{st}}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// instanceViewOf is a host's run-time state: running while its agent
// reports, its power state unknown when it does not.
func instanceViewOf(h *tripcap.Host) *VMInstanceView {
	power := InstanceViewStatus{Code: "PowerState/running", Level: "Info", DisplayStatus: "VM running"}
	agent := InstanceViewStatus{Code: "ProvisioningState/succeeded", Level: "Info", DisplayStatus: "Ready", Message: "the tripcap agent is reporting", Time: timePtr(h.LastSeen)}
	if h.State != tripcap.HostOnline {
		power = InstanceViewStatus{Code: "PowerState/unknown", Level: "Warning", DisplayStatus: "VM status unknown", Message: "its tripcap agent is not reporting"}
		agent = InstanceViewStatus{Code: "ProvisioningState/Unavailable", Level: "Warning", DisplayStatus: "Not Ready",
			Message: "the tripcap agent has not reported since " + h.LastSeen.UTC().Format(time.RFC3339), Time: timePtr(h.LastSeen)}
	}
	return &VMInstanceView{
		ComputerName: h.Inventory.Hostname,
		OSName:       h.Inventory.OS,
		OSVersion:    h.Inventory.Kernel,
		VMAgent:      &VMAgentView{VMAgentVersion: h.Inventory.AgentVersion, Statuses: []InstanceViewStatus{agent}},
		Extensions:   []*ExtensionView{extensionView(h)},
		Statuses: []InstanceViewStatus{
			{Code: "ProvisioningState/succeeded", Level: "Info", DisplayStatus: "Provisioning succeeded", Time: timePtr(h.CreatedAt)},
			power,
		},
	}
}

// extensionOf is the agent as the watcher extension resource of the VM
// (or scale-set instance) vmID of type vmType.
func extensionOf(h *tripcap.Host, vmID, vmType string, expand bool) *VMExtension {
	e := &VMExtension{
		ID:       vmID + "/extensions/" + watcherExtensionName,
		Name:     watcherExtensionName,
		Type:     vmType + "/extensions",
		Location: h.Location,
		Properties: VMExtensionProperties{Publisher: watcherExtensionPublisher, Type: watcherExtensionType,
			TypeHandlerVersion: watcherExtensionVersion, AutoUpgradeMinorVersion: true, ProvisioningState: "Succeeded"},
	}
	if expand {
		e.Properties.InstanceView = extensionView(h)
	}
	return e
}

// propertiesOf are a host's properties as a VM's; expand adds its
// instance view.
func propertiesOf(h *tripcap.Host, expand bool) hostProperties {
	p := hostProperties{
		VMID:              stableUUID("vm:" + h.ID),
		ProvisioningState: "Succeeded",
		TimeCreated:       h.CreatedAt.UTC(),
		OSProfile:         OSProfile{ComputerName: h.Inventory.Hostname},
		StorageProfile:    StorageProfile{OSDisk: OSDisk{OSType: osType(h), Name: h.Name + "_OsDisk"}},
		NetworkProfile:    nicsOf(h),
	}
	if expand {
		p.InstanceView = instanceViewOf(h)
	}
	return p
}

// vmOf is a host as a virtual machine; expand adds its instance view.
func vmOf(h *tripcap.Host, expand bool) *VM {
	id := h.ResourceID()
	vm := &VM{
		ID: id, Name: h.Name, Type: vmType, Location: h.Location, Tags: vmTags(h),
		Properties: VMProperties{hostProperties: propertiesOf(h, expand)},
		Resources:  []*VMExtension{extensionOf(h, id, vmType, false)},
	}
	if ss := h.ScaleSetOf(); ss != "" {
		vm.Properties.VirtualMachineScaleSet = &SubResource{ID: ss}
	}
	return vm
}

// vmssOf is a scale set.
func vmssOf(ss *tripcap.ScaleSet) *VMSS {
	id := ss.ResourceID()
	return &VMSS{
		ID: id, Name: ss.Name, Type: vmssType, Location: ss.Location,
		SKU: SKU{Name: "tripcap-host", Tier: "Standard", Capacity: int64(len(ss.Instances))},
		Properties: VMSSProperties{
			UniqueID:          stableUUID("vmss:" + strings.ToLower(id)),
			ProvisioningState: "Succeeded",
			OrchestrationMode: "Uniform",
			UpgradePolicy:     map[string]string{"mode": "Manual"},
			VirtualMachineProfile: VMSSProfile{ExtensionProfile: VMSSExtensionProfile{Extensions: []VMSSExtension{{
				ID:   id + "/extensions/" + watcherExtensionName,
				Name: watcherExtensionName,
				Type: vmssType + "/extensions",
				Properties: VMExtensionProperties{Publisher: watcherExtensionPublisher, Type: watcherExtensionType,
					TypeHandlerVersion: watcherExtensionVersion, AutoUpgradeMinorVersion: true, ProvisioningState: "Succeeded"},
			}}}},
		},
	}
}

// vmssVMOf is a host as an instance of its scale set; its instance id is
// the host's name.
func vmssVMOf(ss *tripcap.ScaleSet, h *tripcap.Host, expand bool) *VMSSVM {
	id := ss.ResourceID() + "/virtualMachines/" + h.Name
	return &VMSSVM{
		ID: id, Name: ss.Name + "_" + h.Name, Type: vmssVMType,
		Location: h.Location, InstanceID: h.Name, Tags: vmTags(h),
		Properties: VMSSVMProperties{hostProperties: propertiesOf(h, expand), LatestModelApplied: true, VirtualMachineResourceID: h.ResourceID()},
		Resources:  []*VMExtension{extensionOf(h, id, vmssVMType, false)},
	}
}
