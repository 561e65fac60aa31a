package arm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// networkWatchers serves Microsoft.Network/networkWatchers over the control
// plane's watchers.
type networkWatchers struct{ svc *controlplane.Service }

// watcherJSON is a networkWatchers resource.
type watcherJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Etag       string            `json:"etag"`
	Properties watcherProperties `json:"properties"`
}

type watcherProperties struct {
	ProvisioningState string `json:"provisioningState"`
}

func watcherOf(w *tripcap.NetworkWatcher) watcherJSON {
	tags := w.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return watcherJSON{ID: w.ResourceID(), Name: w.Name, Type: "Microsoft.Network/networkWatchers", Location: w.Location,
		Tags: tags, Etag: watcherETag(w), Properties: watcherProperties{ProvisioningState: string(tripcap.ProvisioningSucceeded)}}
}

// watcherETag changes when what a client may change (the tags) does.
func watcherETag(w *tripcap.NetworkWatcher) string {
	b, _ := json.Marshal(struct {
		ID   string
		Tags map[string]string
	}{w.ID, w.Tags})
	sum := sha256.Sum256(b)
	return `W/"` + hex.EncodeToString(sum[:16]) + `"`
}

const watcherPath = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network/networkWatchers/{networkWatcherName}"

func (nw networkWatchers) register(p *Provider) {
	p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}/providers/Microsoft.Network/networkWatchers", "NetworkWatchers_ListAll", nw.list)
	p.Handle(http.MethodGet, "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network/networkWatchers", "NetworkWatchers_List", nw.list)
	p.Handle(http.MethodGet, watcherPath, "NetworkWatchers_Get", nw.get)
	p.Handle(http.MethodPut, watcherPath, "NetworkWatchers_CreateOrUpdate", nw.put)
	p.Handle(http.MethodPatch, watcherPath, "NetworkWatchers_UpdateTags", nw.patch)
	p.Handle(http.MethodDelete, watcherPath, "NetworkWatchers_Delete", nw.delete)
	p.Operation(opWatcherDelete, nw.deleteProgress)
}

// watcher is the watcher the path names: 404 NotFound (Azure's code for a
// missing watcher) when the caller sees none though it may read the
// group, 403 AuthorizationFailed when it may not.
func (nw networkWatchers) watcher(r *Request) (*tripcap.NetworkWatcher, error) {
	name := r.Param("networkWatcherName")
	if err := CheckName("networkWatcherName", name); err != nil {
		return nil, err
	}
	sub, group := r.Param("subscriptionId"), r.Param("resourceGroupName")
	w, err := nw.svc.FindWatcherByResource(r.Context(), sub, group, name)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND && !tripcap.PrincipalFromContext(r.Context()).CanInGroup(tripcap.PermRead, sub, group) {
		// Azure refuses what is outside the caller's scopes, there or not.
		return nil, tripcap.Errorf(tripcap.EFORBIDDEN, "no read access to resource group %s", group)
	}
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return nil, Errorf(http.StatusNotFound, "NotFound", "Resource /subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/networkWatchers/%s not found.",
			r.Param("subscriptionId"), r.Param("resourceGroupName"), name)
	}
	return w, err
}

// watcherByID is the watcher of a resource id (the watcher's or one of its
// captures').
func (nw networkWatchers) watcherByID(r *Request, resourceID string) (*tripcap.NetworkWatcher, error) {
	id, err := ParseResourceID("", resourceID)
	if err != nil {
		return nil, err
	}
	if !id.Is("Microsoft.Network", "networkWatchers") && !id.Is("Microsoft.Network", "networkWatchers", "packetCaptures") {
		return nil, BadRequest("InvalidResourceId", "", "%s is not a network watcher's id.", resourceID)
	}
	return nw.svc.FindWatcherByResource(r.Context(), id.Subscription, id.ResourceGroup, id.Names[0])
}

// list answers the watchers of the subscription (and group, when the path
// names one) the caller sees, in one page: the SDK's watcher list does not
// follow nextLink.
func (nw networkWatchers) list(w http.ResponseWriter, r *Request) error {
	ws, err := nw.svc.FindWatchers(r.Context())
	if err != nil {
		return err
	}
	group := r.Param("resourceGroupName")
	ws = slices.DeleteFunc(ws, func(x *tripcap.NetworkWatcher) bool {
		return !strings.EqualFold(x.SubscriptionID, r.Param("subscriptionId")) || group != "" && !strings.EqualFold(x.ResourceGroup, group)
	})
	out := make([]watcherJSON, 0, len(ws))
	for _, x := range ws {
		out = append(out, watcherOf(x))
	}
	return WritePage(w, r, out, "")
}

func (nw networkWatchers) get(w http.ResponseWriter, r *Request) error {
	x, err := nw.watcher(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, watcherOf(x))
}

// watcherBody is what a PUT or PATCH sends; the rest is read-only.
type watcherBody struct {
	Location *string            `json:"location"`
	Tags     *map[string]string `json:"tags"`
}

// put creates a watcher (201) or replaces an existing one's tags (200).
func (nw networkWatchers) put(w http.ResponseWriter, r *Request) error {
	name := r.Param("networkWatcherName")
	if err := CheckName("networkWatcherName", name); err != nil {
		return err
	}
	var body watcherBody
	if err := r.Decode(&body); err != nil {
		return err
	}
	if body.Location == nil || *body.Location == "" {
		return BadRequest("LocationRequired", "location", "The location property is required for this definition.")
	}
	x := tripcap.NetworkWatcher{Name: name, SubscriptionID: r.Param("subscriptionId"), ResourceGroup: r.Param("resourceGroupName"), Location: normLocation(*body.Location)}
	if body.Tags != nil {
		x.Tags = *body.Tags
	}
	out, created, err := nw.svc.PutWatcher(r.Context(), x)
	switch {
	case tripcap.ErrorCode(err) == tripcap.ECONFLICT:
		// The subscription has its watcher of that location already.
		return BadRequest("NetworkWatcherCountLimitReached", "location", "%s", tripcap.ErrorMessage(err))
	case err != nil:
		return withTarget(err, "")
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return WriteJSON(w, status, watcherOf(out))
}

// patch replaces the tags (NetworkWatchers_UpdateTags).
func (nw networkWatchers) patch(w http.ResponseWriter, r *Request) error {
	x, err := nw.watcher(r)
	if err != nil {
		return err
	}
	var body watcherBody
	if err := r.Decode(&body); err != nil {
		return err
	}
	put := *x
	if body.Tags != nil {
		put.Tags = *body.Tags
	}
	out, _, err := nw.svc.PutWatcher(r.Context(), put)
	if err != nil {
		return withTarget(err, "")
	}
	return WriteJSON(w, http.StatusOK, watcherOf(out))
}

const opWatcherDelete = "networkWatchers/delete"

// delete removes the watcher: 202 with the polling headers (what the SDK's
// poller follows), 204 when there was none, as ARM answers.
func (nw networkWatchers) delete(w http.ResponseWriter, r *Request) error {
	x, err := nw.watcher(r)
	if e := ErrorOf(err); err != nil && e.Status == http.StatusNotFound {
		return WriteJSON(w, http.StatusNoContent, nil)
	} else if err != nil {
		return err
	}
	if err := nw.svc.DeleteWatcher(r.Context(), x.SubscriptionID, x.ResourceGroup, x.Name); err != nil {
		return err
	}
	return r.Accepted(w, http.StatusAccepted, r.NewOperation(opWatcherDelete, x.ResourceID(), x.Location), nil)
}

// deleteProgress: a deletion is done once the watcher is gone.
func (nw networkWatchers) deleteProgress(r *Request, op *Operation) (*Progress, error) {
	_, err := nw.watcherByID(r, op.ResourceID)
	switch tripcap.ErrorCode(err) {
	case tripcap.ENOTFOUND:
		return &Progress{Status: StatusSucceeded}, nil
	case "":
		return &Progress{Status: StatusInProgress}, nil
	}
	return nil, err
}

// normLocation is a location as ARM keeps it: "West US" is westus.
func normLocation(l string) string { return strings.ToLower(strings.ReplaceAll(l, " ", "")) }
