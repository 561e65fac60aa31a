package console

import (
	"context"
	"net/http"

	"github.com/tripcap/tripcap"
)

// The overview: what the on-call engineer looks at first.

func (c *Console) overviewPage() {
	c.nav(navOverview, "Overview", "/", tripcap.PermRead)
	c.get("/{$}", c.overview)
}

type overviewData struct {
	Online, Offline int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) error {
	d, err := c.overviewOf(r.Context())
	if err != nil {
		return err
	}
	return c.render(w, r, "overview", d)
}

// overviewOf gathers the overview from the services, as the caller may see it.
func (c *Console) overviewOf(ctx context.Context) (*overviewData, error) {
	d := &overviewData{}
	for _, st := range []tripcap.HostState{tripcap.HostOnline, tripcap.HostOffline} {
		n, err := c.countHosts(ctx, st)
		if err != nil {
			return nil, err
		}
		if st == tripcap.HostOnline {
			d.Online = n
		} else {
			d.Offline = n
		}
	}
	return d, nil
}

// countHosts counts the hosts in a state the caller may read.
func (c *Console) countHosts(ctx context.Context, st tripcap.HostState) (int, error) {
	n, cursor := 0, ""
	for {
		hs, next, err := c.cfg.Service.FindHosts(ctx, tripcap.HostFilter{State: &st, Cursor: cursor, Limit: 1000})
		if err != nil {
			return 0, err
		}
		n += len(hs)
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}
