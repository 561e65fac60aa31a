package arm

import (
	"net/http"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
)

// packetCaptures serves …/networkWatchers/{nw}/packetCaptures over the
// control plane's captures.
type packetCaptures struct {
	svc      *controlplane.Service
	watchers networkWatchers
	now      func() time.Time
}

// settle bounds how long an operation waits for the agent: a capture not
// started by then is provisioned all the same (queryStatus says
// NotStarted), and a stop or delete the agent has not confirmed is done as
// far as the resource goes (the agent reconciles when it is back).
const settle = 30 * time.Second

const (
	opCaptureCreate = "packetCaptures/create"
	opCaptureDelete = "packetCaptures/delete"
	opCaptureStop   = "packetCaptures/stop"
)

const capturePath = watcherPath + "/packetCaptures/{packetCaptureName}"

func (pc packetCaptures) register(p *Provider) {
	p.Handle(http.MethodGet, watcherPath+"/packetCaptures", "PacketCaptures_List", pc.list)
	p.Handle(http.MethodPut, capturePath, "PacketCaptures_Create", pc.create)
	p.Handle(http.MethodGet, capturePath, "PacketCaptures_Get", pc.get)
	p.Handle(http.MethodDelete, capturePath, "PacketCaptures_Delete", pc.delete)
	p.Handle(http.MethodPost, capturePath+"/stop", "PacketCaptures_Stop", pc.stop)
	p.Handle(http.MethodPost, capturePath+"/queryStatus", "PacketCaptures_GetStatus", pc.queryStatus)
	p.Operation(opCaptureCreate, pc.createProgress)
	p.Operation(opCaptureDelete, pc.endProgress)
	p.Operation(opCaptureStop, pc.endProgress)
}

// captureJSON is a packetCaptures resource (PacketCaptureResult).
type captureJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Etag       string            `json:"etag"`
	Properties captureProperties `json:"properties"`
}

// captureProperties are the parameters as stored (defaults applied),
// tripcap's own beside Azure's, and the provisioning state.
type captureProperties struct {
	tripcap.PacketCaptureParameters
	ProvisioningState string `json:"provisioningState"`
}

func (pc packetCaptures) captureOf(w *tripcap.NetworkWatcher, c *tripcap.PacketCapture) captureJSON {
	p := c.Parameters
	if p.Filters == nil {
		p.Filters = []tripcap.PacketCaptureFilter{}
	}
	return captureJSON{ID: w.ResourceID() + "/packetCaptures/" + c.Name, Name: c.Name, Etag: c.ETag(),
		Properties: captureProperties{PacketCaptureParameters: p, ProvisioningState: pc.provisioning(c)}}
}

// provisioning is the capture's ARM provisioningState: Updating until its
// agent starts it (for settle at most), Failed when the session failed,
// Deleting once deleted.
func (pc packetCaptures) provisioning(c *tripcap.PacketCapture) string {
	switch {
	case c.DeletedAt != nil:
		return string(tripcap.ProvisioningDeleting)
	case c.Status == tripcap.StatusError:
		return string(tripcap.ProvisioningFailed)
	case c.Status == tripcap.StatusNotStarted && pc.now().Sub(c.CreatedAt) < settle:
		return string(tripcap.ProvisioningUpdating)
	}
	return string(c.ProvisioningState)
}

// capture is the capture the path names: 404 PacketCaptureNotFound when
// the caller sees none.
func (pc packetCaptures) capture(r *Request) (*tripcap.NetworkWatcher, *tripcap.PacketCapture, error) {
	w, err := pc.watchers.watcher(r)
	if err != nil {
		return nil, nil, err
	}
	name := r.Param("packetCaptureName")
	if err := CheckName("packetCaptureName", name); err != nil {
		return nil, nil, err
	}
	c, err := pc.svc.FindCapture(r.Context(), w.ID, name)
	if err != nil {
		return nil, nil, captureNotFound(err, name)
	}
	return w, c, nil
}

func captureNotFound(err error, name string) error {
	if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		return err
	}
	return Errorf(http.StatusNotFound, "PacketCaptureNotFound", "Packet capture session %s not found.", name)
}

// list answers the watcher's captures in one page: the SDK's capture list
// does not follow nextLink.
func (pc packetCaptures) list(w http.ResponseWriter, r *Request) error {
	x, err := pc.watchers.watcher(r)
	if err != nil {
		return err
	}
	out := []captureJSON{}
	for cursor := ""; ; {
		cs, next, err := pc.svc.FindCaptures(r.Context(), x.ID, "", cursor, 1000)
		if err != nil {
			return err
		}
		for _, c := range cs {
			out = append(out, pc.captureOf(x, c))
		}
		if next == "" {
			return WritePage(w, r, out, "")
		}
		cursor = next
	}
}

func (pc packetCaptures) get(w http.ResponseWriter, r *Request) error {
	x, c, err := pc.capture(r)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, pc.captureOf(x, c))
}

// create starts a capture: 201 with the resource and Azure-AsyncOperation,
// done when the agent has started it.
func (pc packetCaptures) create(w http.ResponseWriter, r *Request) error {
	x, err := pc.watchers.watcher(r)
	if err != nil {
		return err
	}
	name := r.Param("packetCaptureName")
	if err := CheckName("packetCaptureName", name); err != nil {
		return err
	}
	var body struct {
		Properties *tripcap.PacketCaptureParameters `json:"properties"`
	}
	if err := r.Decode(&body); err != nil {
		return err
	}
	if body.Properties == nil {
		return BadRequest("InvalidRequestFormat", "properties", "The properties of the packet capture are required.")
	}
	p := *body.Properties
	if p.Target == "" {
		return BadRequest("InvalidRequestFormat", "properties.target", "properties.target is required: the resource id of the virtual machine (or scale set) to capture on.")
	}
	id, err := ParseResourceID("properties.target", p.Target)
	if err != nil {
		return err
	}
	if !id.Is("Microsoft.Compute", "virtualMachines") && !id.Is("Microsoft.Compute", "virtualMachineScaleSets") {
		return BadRequest("InvalidRequestFormat", "properties.target", "properties.target %q is not a virtual machine or scale set (Microsoft.Compute/virtualMachines, Microsoft.Compute/virtualMachineScaleSets).", p.Target)
	}
	if sid := p.StorageLocation.StorageID; sid != "" {
		// On the ARM surface a storage account is named by its resource id
		// (the native API takes its name too).
		id, err := ParseResourceID("properties.storageLocation.storageId", sid)
		if err != nil {
			return err
		}
		if !id.Is("Microsoft.Storage", "storageAccounts") {
			return BadRequest("LinkedInvalidPropertyId", "properties.storageLocation.storageId", "properties.storageLocation.storageId %q is not a storage account (Microsoft.Storage/storageAccounts).", sid)
		}
	}
	// tripcap's native API defaults the storage account; Azure's requires one.
	if l := p.StorageLocation; l.StorageID == "" && l.FilePath == "" && l.LocalPath == "" {
		return BadRequest("InvalidRequestFormat", "properties.storageLocation", "properties.storageLocation needs a storageId (a storage account's resource id), or a filePath or localPath on the virtual machine.")
	}
	c, err := pc.svc.CreateCapture(r.Context(), controlplane.CreateCaptureRequest{Name: name, Watcher: x.ID, Parameters: p})
	if err != nil {
		return withTarget(err, "properties.")
	}
	op := r.NewOperation(opCaptureCreate, x.ResourceID()+"/packetCaptures/"+c.Name, x.Location)
	op.Ref = c.ID
	return r.Accepted(w, http.StatusCreated, op, pc.captureOf(x, c))
}

// createProgress: done when the agent started the session (or settle
// passed), failed when the session failed, canceled when deleted first.
func (pc packetCaptures) createProgress(r *Request, op *Operation) (*Progress, error) {
	c, err := pc.svc.FindCaptureByID(r.Context(), op.Ref)
	if err != nil {
		return nil, captureNotFound(err, op.ResourceID)
	}
	switch pc.provisioning(c) {
	case string(tripcap.ProvisioningUpdating):
		return &Progress{Status: StatusInProgress}, nil
	case string(tripcap.ProvisioningDeleting):
		return &Progress{Status: StatusCanceled, Error: Errorf(http.StatusConflict, "PacketCaptureDeleted", "The packet capture %s was deleted.", c.Name)}, nil
	case string(tripcap.ProvisioningFailed):
		code := tripcap.CaptureErrCaptureFailed
		if len(c.Errors) > 0 {
			code = c.Errors[0]
		}
		msg := c.ErrorMessage
		if msg == "" {
			msg = "The packet capture session failed on its virtual machine."
		}
		return &Progress{Status: StatusFailed, Error: Errorf(http.StatusBadRequest, code, "%s", msg)}, nil
	}
	w, err := pc.watchers.watcherByID(r, op.ResourceID)
	if err != nil {
		return nil, err
	}
	// The result, for a client following Location rather than
	// Azure-AsyncOperation (which reads the resource itself).
	return &Progress{Status: StatusSucceeded, Result: pc.captureOf(w, c)}, nil
}

// endProgress: a stop or delete is done when the agent ended the session
// (or settle passed since the operation began).
func (pc packetCaptures) endProgress(r *Request, op *Operation) (*Progress, error) {
	c, err := pc.svc.FindCaptureByID(r.Context(), op.Ref)
	if tripcap.ErrorCode(err) == tripcap.ENOTFOUND {
		return &Progress{Status: StatusSucceeded}, nil
	} else if err != nil {
		return nil, err
	}
	if !c.Status.Terminal() && pc.now().Sub(time.Unix(op.Started, 0)) < settle {
		return &Progress{Status: StatusInProgress}, nil
	}
	return &Progress{Status: StatusSucceeded}, nil
}

// delete removes the capture (its stored files stay, as in Azure): 202
// with the polling headers, done when the agent ended the session.
func (pc packetCaptures) delete(w http.ResponseWriter, r *Request) error {
	x, c, err := pc.capture(r)
	if err != nil {
		return err
	}
	if err := pc.svc.DeleteCapture(r.Context(), x.ID, c.Name, r.Header.Get("If-Match"), false); err != nil {
		return captureNotFound(err, c.Name)
	}
	op := r.NewOperation(opCaptureDelete, x.ResourceID()+"/packetCaptures/"+c.Name, x.Location)
	op.Ref = c.ID
	return r.Accepted(w, http.StatusAccepted, op, nil)
}

// stop stops the session: 200 when it has ended already, else 202 with
// the polling headers, done when the agent stopped it.
func (pc packetCaptures) stop(w http.ResponseWriter, r *Request) error {
	x, c, err := pc.capture(r)
	if err != nil {
		return err
	}
	if c.Status.Terminal() {
		return WriteJSON(w, http.StatusOK, nil)
	}
	c, err = pc.svc.StopCapture(r.Context(), x.ID, c.Name, r.Header.Get("If-Match"))
	if err != nil {
		return captureNotFound(err, r.Param("packetCaptureName"))
	}
	if c.Status.Terminal() {
		return WriteJSON(w, http.StatusOK, nil)
	}
	op := r.NewOperation(opCaptureStop, x.ResourceID()+"/packetCaptures/"+c.Name, x.Location)
	op.Ref = c.ID
	return r.Accepted(w, http.StatusAccepted, op, nil)
}

// queryStatusJSON is PacketCaptureQueryStatusResult.
type queryStatusJSON struct {
	Name                string     `json:"name"`
	ID                  string     `json:"id"`
	CaptureStartTime    *time.Time `json:"captureStartTime,omitempty"`
	PacketCaptureStatus string     `json:"packetCaptureStatus"`
	StopReason          string     `json:"stopReason,omitempty"`
	PacketCaptureError  []string   `json:"packetCaptureError"`
}

// queryStatus answers the session's status at once (200).
func (pc packetCaptures) queryStatus(w http.ResponseWriter, r *Request) error {
	x, c, err := pc.capture(r)
	if err != nil {
		return err
	}
	c, err = pc.svc.QueryStatus(r.Context(), x.ID, c.Name)
	if err != nil {
		return captureNotFound(err, r.Param("packetCaptureName"))
	}
	errs := c.Errors
	if errs == nil {
		errs = []string{}
	}
	return WriteJSON(w, http.StatusOK, queryStatusJSON{Name: c.Name, ID: x.ResourceID() + "/packetCaptures/" + c.Name,
		CaptureStartTime: c.CaptureStartTime, PacketCaptureStatus: string(c.Status), StopReason: c.StopReason, PacketCaptureError: errs})
}
