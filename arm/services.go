package arm

import (
	"github.com/tripcap/tripcap/controlplane"
	"github.com/tripcap/tripcap/identity"
	"github.com/tripcap/tripcap/responder"
)

// Services are what the providers translate onto; a nil one leaves its
// provider's routes out (each provider file says which it needs).
type Services struct {
	Control    *controlplane.Service
	Monitor    *controlplane.Monitor
	Identity   *identity.Service
	Responders *responder.Responders
}

// providerFiles lists each provider file's registration. Each helper's
// line is separate (with a blank line between) so that branches adding
// theirs merge cleanly.
func providerFiles() []func(*API, Services) {
	return []func(*API, Services){
		registerNetwork,       // network.go: Microsoft.Network
		registerSubscriptions, // subscriptions.go: Microsoft.Resources' subscriptions

		registerCompute, // compute.go: Microsoft.Compute
		registerNICs,    // compute_nic.go: hosts' Microsoft.Network/networkInterfaces
		registerStorage, // storage.go: Microsoft.Storage

		registerInsights, // insights.go: Microsoft.Insights

		registerAuthorization, // authorization.go: Microsoft.Authorization

		registerResourceGroups, // resourcegroups.go: Microsoft.Resources' resourceGroups
	}
}
