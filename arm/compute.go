package arm

import (
	"net/http"
	"strings"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// computeVersions are Microsoft.Compute's api-versions, from the oldest a
// VM client still sends to the newest of the armcompute SDK (v8).
func computeVersions() []string {
	return []string{
		"2015-06-15", "2016-03-30", "2016-04-30-preview", "2016-08-30",
		"2017-03-30", "2017-12-01",
		"2018-04-01", "2018-06-01", "2018-10-01",
		"2019-03-01", "2019-07-01", "2019-12-01",
		"2020-06-01", "2020-12-01",
		"2021-03-01", "2021-04-01", "2021-07-01", "2021-11-01",
		"2022-03-01", "2022-08-01", "2022-11-01",
		"2023-03-01", "2023-07-01", "2023-09-01",
		"2024-03-01", "2024-07-01", "2024-11-01",
		"2025-04-01",
		"2026-03-02", "2026-03-03", "2026-04-01",
	}
}

// registerCompute serves Microsoft.Compute read-only: hosts as
// virtualMachines (with the agent as their watcher extension) and scale
// sets (hosts sharing tripcap.LabelScaleSet) as virtualMachineScaleSets
// with their instances. Hosts come and go by enrolling, not by PUT.
func registerCompute(a *API, svc Services) {
	if svc.Control == nil {
		return
	}
	c := svc.Control
	p := a.Provider("Microsoft.Compute", computeVersions()...)
	const (
		sub   = "/subscriptions/{subscriptionId}"
		group = sub + "/resourceGroups/{resourceGroupName}"
		vms   = "/providers/Microsoft.Compute/virtualMachines"
		vm    = group + vms + "/{vmName}"
		sets  = "/providers/Microsoft.Compute/virtualMachineScaleSets"
		set   = group + sets + "/{vmScaleSetName}"
		inst  = set + "/virtualMachines/{instanceId}"
	)

	listHosts := func(w http.ResponseWriter, r *Request, f tripcap.HostFilter) error {
		// Get-AzVM -Status lists with statusOnly=true: the instance views.
		expand := expandsInstanceView(r) || strings.EqualFold(r.URL.Query().Get("statusOnly"), "true")
		return writeHostsPage(w, r, c, f, func(h *tripcap.Host) []*VM { return []*VM{vmOf(h, expand)} })
	}
	p.Handle(http.MethodGet, sub+vms, "VirtualMachines_ListAll", func(w http.ResponseWriter, r *Request) error {
		return listHosts(w, r, tripcap.HostFilter{SubscriptionID: new(r.Param("subscriptionId"))})
	})
	p.Handle(http.MethodGet, group+vms, "VirtualMachines_List", func(w http.ResponseWriter, r *Request) error {
		return listHosts(w, r, tripcap.HostFilter{SubscriptionID: new(r.Param("subscriptionId")), ResourceGroup: new(r.Param("resourceGroupName"))})
	})
	p.Handle(http.MethodGet, sub+"/providers/Microsoft.Compute/locations/{location}/virtualMachines", "VirtualMachines_ListByLocation", func(w http.ResponseWriter, r *Request) error {
		return listHosts(w, r, tripcap.HostFilter{SubscriptionID: new(r.Param("subscriptionId")), Location: new(r.Param("location"))})
	})

	// host is the VM the path names.
	host := func(r *Request) (*tripcap.Host, error) {
		name := r.Param("vmName")
		h, err := c.FindHost(r.Context(), tripcap.VMResourceID(r.Param("subscriptionId"), r.Param("resourceGroupName"), name))
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, notFound(vmType, name, r.Param("resourceGroupName"))
		}
		return h, err
	}
	p.Handle(http.MethodGet, vm, "VirtualMachines_Get", func(w http.ResponseWriter, r *Request) error {
		h, err := host(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, vmOf(h, expandsInstanceView(r)))
	})
	p.Handle(http.MethodGet, vm+"/instanceView", "VirtualMachines_InstanceView", func(w http.ResponseWriter, r *Request) error {
		h, err := host(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, instanceViewOf(h))
	})
	p.Handle(http.MethodGet, vm+"/extensions", "VirtualMachineExtensions_List", func(w http.ResponseWriter, r *Request) error {
		h, err := host(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, List[*VMExtension]{Value: []*VMExtension{extensionOf(h, h.ResourceID(), vmType, expandsInstanceView(r))}})
	})
	p.Handle(http.MethodGet, vm+"/extensions/{vmExtensionName}", "VirtualMachineExtensions_Get", func(w http.ResponseWriter, r *Request) error {
		h, err := host(r)
		if err != nil {
			return err
		}
		if name := r.Param("vmExtensionName"); !strings.EqualFold(name, watcherExtensionName) {
			return notFound(vmType+"/extensions", h.Name+"/"+name, r.Param("resourceGroupName"))
		}
		return WriteJSON(w, http.StatusOK, extensionOf(h, h.ResourceID(), vmType, expandsInstanceView(r)))
	})

	// Scale sets: listed whole (they are made from the hosts), paged by Paginate.
	listSets := func(w http.ResponseWriter, r *Request, group string) error {
		all, err := c.FindScaleSets(r.Context(), r.Param("subscriptionId"), group)
		if err != nil {
			return err
		}
		page, next, err := Paginate(r, all)
		if err != nil {
			return err
		}
		out := make([]*VMSS, len(page))
		for i, ss := range page {
			out[i] = vmssOf(ss)
		}
		return WritePage(w, r, out, next)
	}
	p.Handle(http.MethodGet, sub+sets, "VirtualMachineScaleSets_ListAll", func(w http.ResponseWriter, r *Request) error {
		return listSets(w, r, "")
	})
	p.Handle(http.MethodGet, group+sets, "VirtualMachineScaleSets_List", func(w http.ResponseWriter, r *Request) error {
		return listSets(w, r, r.Param("resourceGroupName"))
	})
	scaleSet := func(r *Request) (*tripcap.ScaleSet, error) {
		name := r.Param("vmScaleSetName")
		ss, err := c.FindScaleSet(r.Context(), r.Param("subscriptionId"), r.Param("resourceGroupName"), name)
		if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
			return nil, notFound(vmssType, name, r.Param("resourceGroupName"))
		}
		return ss, err
	}
	p.Handle(http.MethodGet, set, "VirtualMachineScaleSets_Get", func(w http.ResponseWriter, r *Request) error {
		ss, err := scaleSet(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, vmssOf(ss))
	})
	p.Handle(http.MethodGet, set+"/virtualMachines", "VirtualMachineScaleSetVMs_List", func(w http.ResponseWriter, r *Request) error {
		ss, err := scaleSet(r)
		if err != nil {
			return err
		}
		page, next, err := Paginate(r, ss.Instances)
		if err != nil {
			return err
		}
		out := make([]*VMSSVM, len(page))
		for i, h := range page {
			out[i] = vmssVMOf(ss, h, expandsInstanceView(r))
		}
		return WritePage(w, r, out, next)
	})
	instance := func(r *Request) (*tripcap.ScaleSet, *tripcap.Host, error) {
		ss, err := scaleSet(r)
		if err != nil {
			return nil, nil, err
		}
		id := r.Param("instanceId")
		for _, h := range ss.Instances {
			if strings.EqualFold(h.Name, id) {
				return ss, h, nil
			}
		}
		return nil, nil, notFound(vmssVMType, ss.Name+"/"+id, r.Param("resourceGroupName"))
	}
	p.Handle(http.MethodGet, inst, "VirtualMachineScaleSetVMs_Get", func(w http.ResponseWriter, r *Request) error {
		ss, h, err := instance(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, vmssVMOf(ss, h, expandsInstanceView(r)))
	})
	p.Handle(http.MethodGet, inst+"/instanceView", "VirtualMachineScaleSetVMs_GetInstanceView", func(w http.ResponseWriter, r *Request) error {
		_, h, err := instance(r)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, instanceViewOf(h))
	})
}

// writeHostsPage answers a page of the hosts f selects (the caller's, by
// $skipToken), each as its items.
func writeHostsPage[T any](w http.ResponseWriter, r *Request, c *controlplane.Service, f tripcap.HostFilter, items func(*tripcap.Host) []T) error {
	f.Cursor, f.Limit = r.SkipToken(), r.PageSize()
	hosts, next, err := c.FindHosts(r.Context(), f)
	if err != nil {
		return Recode(err, tripcap.EINVALID, "InvalidSkipToken")
	}
	out := []T{}
	for _, h := range hosts {
		out = append(out, items(h)...)
	}
	return WritePage(w, r, out, next)
}

// expandsInstanceView reports whether the request asks for the instance
// view ($expand=instanceView, without case).
func expandsInstanceView(r *Request) bool {
	for _, e := range strings.Split(r.URL.Query().Get("$expand"), ",") {
		if strings.EqualFold(strings.TrimSpace(e), "instanceView") {
			return true
		}
	}
	return false
}

// notFound is ARM's 404 for a resource of typ named name in group.
func notFound(typ, name, group string) error {
	return Errorf(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", typ, name, group)
}
