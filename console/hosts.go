package console

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tripcap/tripcap"
)

// The hosts list: paged by the store (a cursor, never an offset, so a page
// costs the same at host 10 and host 10,000) and filtered by it.

func (c *Console) hostsPage() {
	c.nav(navHosts, "Hosts", "/hosts", tripcap.PermRead)
	c.get("/hosts", c.hostsList)
}

// hostsPageSize is how many hosts a page shows (?limit= changes it, up to 500).
const hostsPageSize = 100

type hostsData struct {
	Hosts []*tripcap.Host
	// Total is how many hosts match the filters.
	Total int
	// The filters as given, for the form.
	Name, Label, Location, State string
	Locations                    []string
	Pager                        pager
	Error                        *formError
}

// pager links a listing's pages: the first, and the next (by cursor).
type pager struct{ First, Next string }

// pagerOf links the pages of a listing at path whose query q (the filters,
// and the cursor of this page) gave a page ending before next ("" at the end).
func pagerOf(path string, q url.Values, next string) pager {
	var p pager
	q = maps.Clone(q)
	if q.Get("cursor") != "" {
		q.Del("cursor")
		p.First = path + "?" + q.Encode()
	}
	if next != "" {
		q.Set("cursor", next)
		p.Next = path + "?" + q.Encode()
	}
	return p
}

func (c *Console) hostsList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := &hostsData{Name: strings.TrimSpace(q.Get("name")), Label: strings.TrimSpace(q.Get("label")),
		Location: q.Get("location"), State: q.Get("state")}
	f := tripcap.HostFilter{Cursor: q.Get("cursor"), Limit: hostsPageSize}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return tripcap.Errorf(tripcap.EINVALID, "limit: %q is not a number in 1..500", v)
		}
		f.Limit = n
	}
	if d.Name != "" {
		f.NameContains = &d.Name
	}
	if d.Label != "" {
		f.Label = &d.Label
	}
	if d.Location != "" {
		f.Location = &d.Location
	}
	if d.State != "" {
		st := tripcap.HostState(d.State)
		f.State = &st
	}
	ctx := r.Context()
	watchers, err := c.cfg.Service.FindWatchers(ctx)
	if err != nil && tripcap.ErrorCode(err) != tripcap.EFORBIDDEN {
		return err
	}
	locs := map[string]bool{}
	for _, wt := range watchers {
		locs[wt.Location] = true
	}
	d.Locations = slices.Sorted(maps.Keys(locs))
	hosts, next, err := c.cfg.Service.FindHosts(ctx, f)
	if tripcap.ErrorCode(err) == tripcap.EINVALID {
		// A filter the store refused: the form again, the field marked.
		d.Error = newFormError(err)
		c.renderStatus(w, r, http.StatusBadRequest, "hosts", d)
		return nil
	}
	if err != nil {
		return err
	}
	if d.Total, err = c.cfg.Service.CountHosts(ctx, f); err != nil {
		return err
	}
	d.Hosts = hosts
	d.Pager = pagerOf("/hosts", q, next)
	return c.render(w, r, "hosts", d)
}

// hostPath is a host's page.
func hostPath(name string) string { return "/hosts/" + url.PathEscape(name) }

// labelList is a host's labels as "key=value", sorted.
func labelList(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, k+"="+labels[k])
	}
	return out
}
