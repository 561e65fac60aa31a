package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/controlplane"
	tchttp "github.com/tripcap/tripcap/http"
)

// Captures: the list (newest first), the create form (checked by the
// service as it is typed), a capture's page with its live status, stop,
// delete, files and their download, and the triage summary.

func (c *Console) capturesPage() {
	c.nav(navCaptures, "Captures", "/captures", tripcap.PermRead)
	c.get("/captures", c.capturesList)
	c.get("/captures/new", c.captureNew)
	c.post("/captures", c.captureCreate)
	c.post("/captures/validate", c.captureValidate)
	c.get("/captures/{capture}", c.captureShow)
	c.live("/captures/{capture}/live", time.Second, c.captureLive)
	c.post("/captures/{capture}/stop", c.captureStop)
	c.post("/captures/{capture}/delete", c.captureDelete)
	// The name ends in /download: http.Server.MountConsole records
	// downloads in the audit log, as the API's.
	c.get("/captures/{capture}/download", c.captureDownload)
}

// capturesPageSize is how many captures a page lists.
const capturesPageSize = 50

type capturesData struct {
	Captures []*captureRow
	// Host and Active are the filters.
	Host   string
	Active bool
	Pager  pager
}

// captureRow is a capture with its host's name.
type captureRow struct {
	*tripcap.PacketCapture
	HostName string
}

func (c *Console) capturesList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := &capturesData{Host: strings.TrimSpace(q.Get("host")), Active: q.Get("active") == "on"}
	cq := controlplane.CaptureQuery{Host: d.Host, ActiveOnly: d.Active, NewestFirst: true, Cursor: q.Get("cursor"), Limit: capturesPageSize}
	caps, next, err := c.cfg.Service.ListCaptures(r.Context(), cq)
	if err != nil {
		return err
	}
	if d.Captures, err = c.captureRows(r.Context(), caps); err != nil {
		return err
	}
	d.Pager = pagerOf("/captures", q, next)
	return c.render(w, r, "captures", d)
}

// captureRows names each capture's host (once per host).
func (c *Console) captureRows(ctx context.Context, caps []*tripcap.PacketCapture) ([]*captureRow, error) {
	names := map[string]string{}
	rows := make([]*captureRow, 0, len(caps))
	for _, pc := range caps {
		name, ok := names[pc.HostID]
		if !ok {
			h, err := c.cfg.Service.FindHost(ctx, pc.HostID)
			switch {
			case err == nil:
				name = h.Name
			case tripcap.ErrorCode(err) == tripcap.ENOTFOUND:
				name = "" // a deleted host
			default:
				return nil, err
			}
			names[pc.HostID] = name
		}
		rows = append(rows, &captureRow{PacketCapture: pc, HostName: name})
	}
	return rows, nil
}

// captureForm is the create form's values, as typed.
type captureForm struct {
	Name, Target, StorageID, FilePath, FilterExpression, Format, Interfaces string
	BytesPerPacket, TotalBytes, TimeLimit, PreTrigger                       string
	FileCount, FileSize, SessionTimeLimit                                   string
	Continuous, IncludeMetadata                                             bool
	Filters                                                                 []filterForm
	Storage                                                                 []*tripcap.StorageAccount
	Error                                                                   *formError
	// rows maps the filters given to the service (the non-empty rows) to
	// the form's rows, so that an error names the row the user typed in.
	rows []int
}

// filterForm is one Azure filter's row.
type filterForm struct {
	Index                                                            int
	Protocol, LocalIPAddress, LocalPort, RemoteIPAddress, RemotePort string
}

// filterRows is how many Azure filters the form offers (they are OR-ed;
// the API takes any number).
const filterRows = 3

func (c *Console) captureNew(w http.ResponseWriter, r *http.Request) error {
	if p := tripcap.PrincipalFromContext(r.Context()); !p.CanSome(tripcap.PermCaptureWrite) {
		// Not offered; the service would refuse the post anyway.
		return tripcap.Errorf(tripcap.EFORBIDDEN, "%s may not create captures", p.Name)
	}
	f := &captureForm{Target: r.URL.Query().Get("target"), Format: tripcap.FormatPcap}
	return c.renderCaptureForm(w, r, http.StatusOK, f)
}

func (c *Console) renderCaptureForm(w http.ResponseWriter, r *http.Request, status int, f *captureForm) error {
	for len(f.Filters) < filterRows {
		f.Filters = append(f.Filters, filterForm{Index: len(f.Filters)})
	}
	accts, err := c.cfg.Service.FindStorageAccounts(r.Context())
	if err != nil && tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		return err
	}
	f.Storage = accts
	c.renderStatus(w, r, status, "capture_new", f)
	return nil
}

// readCaptureForm reads the posted form. Numbers that are not numbers are
// refused naming the field, as the API refuses them.
func readCaptureForm(r *http.Request) (*captureForm, controlplane.CreateCaptureRequest, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	_ = r.ParseForm()
	v := func(k string) string { return strings.TrimSpace(r.PostForm.Get(k)) }
	f := &captureForm{Name: v("name"), Target: v("target"), StorageID: v("storageId"), FilePath: v("filePath"),
		FilterExpression: v("filterExpression"), Format: v("format"), Interfaces: v("interfaces"),
		BytesPerPacket: v("bytesToCapturePerPacket"), TotalBytes: v("totalBytesPerSession"), TimeLimit: v("timeLimitInSeconds"),
		PreTrigger: v("preTriggerSeconds"), FileCount: v("captureSettings.fileCount"), FileSize: v("captureSettings.fileSizeInBytes"),
		SessionTimeLimit: v("captureSettings.sessionTimeLimitInSeconds"),
		Continuous:       r.PostForm.Get("continuousCapture") == "on", IncludeMetadata: r.PostForm.Get("includeMetadata") == "on"}
	p := tripcap.PacketCaptureParameters{Target: f.Target, FilterExpression: f.FilterExpression, Format: f.Format, IncludeMetadata: f.IncludeMetadata,
		StorageLocation: tripcap.StorageLocation{StorageID: f.StorageID, FilePath: f.FilePath}}
	req := controlplane.CreateCaptureRequest{Name: f.Name}
	for i := range filterRows {
		k := func(s string) string { return v("filters[" + strconv.Itoa(i) + "]." + s) }
		ff := filterForm{Index: i, Protocol: k("protocol"), LocalIPAddress: k("localIPAddress"), LocalPort: k("localPort"),
			RemoteIPAddress: k("remoteIPAddress"), RemotePort: k("remotePort")}
		f.Filters = append(f.Filters, ff)
		if ff.LocalIPAddress == "" && ff.LocalPort == "" && ff.RemoteIPAddress == "" && ff.RemotePort == "" && (ff.Protocol == "" || ff.Protocol == "Any") {
			continue // an empty row
		}
		f.rows = append(f.rows, i)
		p.Filters = append(p.Filters, tripcap.PacketCaptureFilter{Protocol: ff.Protocol, LocalIPAddress: ff.LocalIPAddress,
			LocalPort: ff.LocalPort, RemoteIPAddress: ff.RemoteIPAddress, RemotePort: ff.RemotePort})
	}
	if f.Interfaces != "" {
		for _, s := range strings.Split(f.Interfaces, ",") {
			if s = strings.TrimSpace(s); s != "" {
				p.Interfaces = append(p.Interfaces, s)
			}
		}
	}
	var err error
	num := func(field, s string, bits int, set func(int64)) {
		if s == "" || err != nil {
			return
		}
		n, perr := strconv.ParseInt(s, 10, bits)
		if perr != nil {
			err = tripcap.Errorf(tripcap.EINVALID, "%s: %q is not a whole number", field, s)
			return
		}
		set(n)
	}
	num("bytesToCapturePerPacket", f.BytesPerPacket, 64, func(n int64) { p.BytesToCapturePerPacket = n })
	num("totalBytesPerSession", f.TotalBytes, 64, func(n int64) { p.TotalBytesPerSession = n })
	num("timeLimitInSeconds", f.TimeLimit, 32, func(n int64) { p.TimeLimitInSeconds = int32(n) })
	num("preTriggerSeconds", f.PreTrigger, 32, func(n int64) { p.PreTriggerSeconds = int32(n) })
	if f.Continuous {
		on := true
		p.ContinuousCapture = &on
		cs := &tripcap.CaptureSettings{}
		num("captureSettings.fileCount", f.FileCount, 32, func(n int64) { v := int32(n); cs.FileCount = &v })
		num("captureSettings.fileSizeInBytes", f.FileSize, 64, func(n int64) { cs.FileSizeInBytes = &n })
		num("captureSettings.sessionTimeLimitInSeconds", f.SessionTimeLimit, 32, func(n int64) { v := int32(n); cs.SessionTimeLimitInSeconds = &v })
		if *cs != (tripcap.CaptureSettings{}) {
			p.CaptureSettings = cs
		}
	}
	req.Parameters = p
	return f, req, err
}

func (c *Console) captureCreate(w http.ResponseWriter, r *http.Request) error {
	f, req, err := readCaptureForm(r)
	var pc *tripcap.PacketCapture
	if err == nil {
		pc, err = c.cfg.Service.CreateCapture(r.Context(), req)
	}
	switch code := tripcap.ErrorCode(err); {
	case err == nil:
		http.Redirect(w, r, capturePath(pc.ID), http.StatusSeeOther)
		return nil
	case code == tripcap.EINVALID, code == tripcap.ECONFLICT, code == tripcap.ELIMIT, code == tripcap.EUNAVAILABLE:
		// The form again, with what was typed and the field marked.
		f.Error = newFormError(err)
		f.Error.renumberFilters(f.rows)
		return c.renderCaptureForm(w, r, tchttp.ErrorStatus(err), f)
	}
	return err
}

// captureValidate checks the form as the service would create it, storing
// nothing; the answer names the field at fault ({} when it would pass).
func (c *Console) captureValidate(w http.ResponseWriter, r *http.Request) error {
	f, req, err := readCaptureForm(r)
	if err == nil {
		req.ValidateOnly = true
		if req.Name == "" {
			// Not yet typed: check the rest.
			req.Name = "validate"
		}
		_, err = c.cfg.Service.CreateCapture(r.Context(), req)
	}
	if err != nil && tripcap.ErrorCode(err) == tripcap.EINTERNAL {
		return err
	}
	out := fieldError{}
	if err != nil {
		fe := newFormError(err)
		fe.renumberFilters(f.rows)
		out = fe.fieldError
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// renumberFilters makes an error about the service's filter k (of the
// non-empty rows it was given) name the form's row rows[k] instead.
func (e *formError) renumberFilters(rows []int) {
	for k, row := range rows {
		from := "filters[" + strconv.Itoa(k) + "]"
		if e.Field == from || strings.HasPrefix(e.Field, from+".") {
			to := "filters[" + strconv.Itoa(row) + "]"
			e.Field = to + strings.TrimPrefix(e.Field, from)
			e.Message = to + strings.TrimPrefix(e.Message, from)
			return
		}
	}
}

// capturePath is a capture's page (by id: names repeat across watchers).
func capturePath(id string) string { return "/captures/" + url.PathEscape(id) }

type captureData struct {
	C    *tripcap.PacketCapture
	Host *tripcap.Host
	Live captureLive
	// Top are the summary's first lines.
	Top []string
}

// captureLive is what a capture's page updates every second.
type captureLive struct {
	Status      string `json:"status"`
	Desired     string `json:"desired"`
	StopReason  string `json:"stopReason"`
	Errors      string `json:"errors"`
	Packets     uint64 `json:"packets"`
	Bytes       string `json:"bytes"`
	KernelDrops uint64 `json:"kernelDrops"`
	Elapsed     string `json:"elapsed"`
	Files       int    `json:"files"`
	Active      bool   `json:"active"`
	// Ended and Summary (the triage summary arrived) tell the page when
	// to reload for the files and the summary.
	Ended   bool `json:"ended"`
	Summary bool `json:"summary"`
}

func liveOf(pc *tripcap.PacketCapture, now time.Time) captureLive {
	l := captureLive{Status: string(pc.Status), Desired: string(pc.Desired), StopReason: pc.StopReason, Errors: strings.Join(pc.Errors, ", "),
		Packets: pc.Stats.Packets, Bytes: tripcap.HumanBytes(pc.Stats.Bytes), KernelDrops: pc.Stats.KernelDrops, Files: len(pc.Files), Active: pc.Active()}
	l.Elapsed = "—"
	if pc.CaptureStartTime != nil {
		end := now
		if pc.CaptureStopTime != nil {
			end = *pc.CaptureStopTime
		}
		l.Elapsed = end.Sub(*pc.CaptureStartTime).Round(time.Second).String()
	}
	l.Ended, l.Summary = pc.Status.Terminal(), pc.Summary != nil
	return l
}

func (c *Console) findCapture(ctx context.Context, r *http.Request) (*tripcap.PacketCapture, error) {
	return c.cfg.Service.FindCapture(ctx, "", r.PathValue("capture"))
}

func (c *Console) captureShow(w http.ResponseWriter, r *http.Request) error {
	pc, err := c.findCapture(r.Context(), r)
	if err != nil {
		return err
	}
	d := &captureData{C: pc, Live: liveOf(pc, c.cfg.Now())}
	if h, err := c.cfg.Service.FindHost(r.Context(), pc.HostID); err == nil {
		d.Host = h
	} else if tripcap.ErrorCode(err) != tripcap.ENOTFOUND {
		return err
	}
	if pc.Summary != nil {
		d.Top = pc.Summary.TopLines(10)
	}
	return c.render(w, r, "capture", d)
}

func (c *Console) captureLive(ctx context.Context, r *http.Request) (any, error) {
	pc, err := c.findCapture(ctx, r)
	if err != nil {
		return nil, err
	}
	return liveOf(pc, c.cfg.Now()), nil
}

func (c *Console) captureStop(w http.ResponseWriter, r *http.Request) error {
	pc, err := c.cfg.Service.StopCapture(r.Context(), "", r.PathValue("capture"), "")
	if err != nil {
		return err
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, liveOf(pc, c.cfg.Now()))
		return nil
	}
	http.Redirect(w, r, capturePath(pc.ID), http.StatusSeeOther)
	return nil
}

func (c *Console) captureDelete(w http.ResponseWriter, r *http.Request) error {
	deleteFiles := r.PostFormValue("deleteFiles") == "on"
	if err := c.cfg.Service.DeleteCapture(r.Context(), "", r.PathValue("capture"), "", deleteFiles); err != nil {
		return err
	}
	http.Redirect(w, r, "/captures", http.StatusSeeOther)
	return nil
}

func (c *Console) captureDownload(w http.ResponseWriter, r *http.Request) error {
	rc, f, err := c.cfg.Service.Files.OpenFile(r.Context(), "", r.PathValue("capture"), r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	defer rc.Close()
	tchttp.ServeCaptureFile(w, r, rc, f)
	return nil
}
