package tripcap

// ResourceGroup is an Azure resource group that holds tripcap resources:
// the group of some hosts (their azure.resourceGroup label), watchers or
// the server's storage accounts. Groups are not stored: they exist while
// something is in them, as the ARM surface lists them.
type ResourceGroup struct {
	SubscriptionID string `json:"subscriptionId"`
	Name           string `json:"name"`
	// Location is that of the first resource found in the group (Azure's
	// groups have one; tripcap's take their resources').
	Location string `json:"location"`
}
