package arm

// A host's interfaces as Microsoft.Network/networkInterfaces, the
// resources its VM's networkProfile refers to, so a script can go from a
// VM to its addresses as in Azure (Get-AzNetworkInterface -ResourceId
// $vm.NetworkProfile.NetworkInterfaces[0].Id). Read-only, beside
// Microsoft.Network's watchers (network.go).

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// NIC is Microsoft.Network/networkInterfaces.
type NIC struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties NICProperties     `json:"properties"`
}

// NICProperties are a network interface's properties.
type NICProperties struct {
	ProvisioningState string        `json:"provisioningState"`
	MacAddress        string        `json:"macAddress,omitempty"`
	Primary           bool          `json:"primary"`
	VirtualMachine    SubResource   `json:"virtualMachine"`
	IPConfigurations  []NICIPConfig `json:"ipConfigurations"`
}

// NICIPConfig is one address of a network interface.
type NICIPConfig struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Properties NICIPConfigProps `json:"properties"`
}

// NICIPConfigProps are an address's properties.
type NICIPConfigProps struct {
	ProvisioningState            string `json:"provisioningState"`
	Primary                      bool   `json:"primary"`
	PrivateIPAddress             string `json:"privateIPAddress"`
	PrivateIPAddressPrefixLength int    `json:"privateIPAddressPrefixLength,omitempty"`
	PrivateIPAddressVersion      string `json:"privateIPAddressVersion"`
	PrivateIPAllocationMethod    string `json:"privateIPAllocationMethod"`
}

const nicType = "Microsoft.Network/networkInterfaces"

// nicOf is one of a host's interfaces as a network interface: its
// addresses as ipConfigurations (ipconfig1… in the agent's order), its
// MAC in Azure's form (02-00-5E-00-53-01).
func nicOf(h *tripcap.Host, n hostNIC) *NIC {
	out := &NIC{ID: n.ID, Name: n.Name, Type: nicType, Location: h.Location, Tags: vmTags(h),
		Properties: NICProperties{ProvisioningState: "Succeeded", MacAddress: strings.ToUpper(strings.ReplaceAll(n.MAC, ":", "-")),
			Primary: n.Primary, VirtualMachine: SubResource{ID: h.ResourceID()}, IPConfigurations: []NICIPConfig{}}}
	for i, a := range n.Addresses {
		pfx, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				continue // not an address the agent should send; nothing to show
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		version := "IPv4"
		if pfx.Addr().Is6() && !pfx.Addr().Is4In6() {
			version = "IPv6"
		}
		name := "ipconfig" + strconv.Itoa(i+1)
		out.Properties.IPConfigurations = append(out.Properties.IPConfigurations, NICIPConfig{
			ID: n.ID + "/ipConfigurations/" + name, Name: name, Type: nicType + "/ipConfigurations",
			Properties: NICIPConfigProps{ProvisioningState: "Succeeded", Primary: i == 0, PrivateIPAddress: pfx.Addr().Unmap().String(),
				PrivateIPAddressPrefixLength: pfx.Bits(), PrivateIPAddressVersion: version, PrivateIPAllocationMethod: "Dynamic"},
		})
	}
	return out
}

// registerNICs serves NetworkInterfaces_Get, _List and _ListAll.
func registerNICs(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	c := svc.Control
	p := a.Provider("Microsoft.Network", networkVersions()...)
	const (
		sub   = "/subscriptions/{subscriptionId}"
		group = sub + "/resourceGroups/{resourceGroupName}"
		nics  = "/providers/Microsoft.Network/networkInterfaces"
	)
	list := func(w http.ResponseWriter, r *Request, f tripcap.HostFilter) error {
		return writeHostsPage(w, r, c, f, func(h *tripcap.Host) []*NIC {
			var out []*NIC
			for _, n := range nicsOfHost(h) {
				out = append(out, nicOf(h, n))
			}
			return out
		})
	}
	p.Handle(http.MethodGet, sub+nics, "NetworkInterfaces_ListAll", func(w http.ResponseWriter, r *Request) error {
		return list(w, r, tripcap.HostFilter{SubscriptionID: new(r.Param("subscriptionId"))})
	})
	p.Handle(http.MethodGet, group+nics, "NetworkInterfaces_List", func(w http.ResponseWriter, r *Request) error {
		return list(w, r, tripcap.HostFilter{SubscriptionID: new(r.Param("subscriptionId")), ResourceGroup: new(r.Param("resourceGroupName"))})
	})
	p.Handle(http.MethodGet, group+nics+"/{networkInterfaceName}", "NetworkInterfaces_Get", func(w http.ResponseWriter, r *Request) error {
		name, group := r.Param("networkInterfaceName"), r.Param("resourceGroupName")
		// <vm>-<interface>: the VM is a prefix of the name up to a '-'.
		for i := strings.IndexByte(name, '-'); i > 0; i = nextDash(name, i) {
			h, err := c.FindHost(r.Context(), tripcap.VMResourceID(r.Param("subscriptionId"), group, name[:i]))
			if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
				continue
			} else if err != nil {
				return err
			}
			for _, n := range nicsOfHost(h) {
				if strings.EqualFold(n.Name, name) {
					return WriteJSON(w, http.StatusOK, nicOf(h, n))
				}
			}
		}
		return notFound(nicType, name, group)
	})
}

// nextDash is the index of the '-' after i in s, or -1.
func nextDash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '-')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
