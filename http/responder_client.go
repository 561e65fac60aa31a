package http

import (
	"context"
	"net/http"
	"net/url"

	"github.com/tripcap/tripcap"
)

// UpdateResponder replaces a responder's settings with r. ifMatch, when
// set, is the ETag the change is based on (tripcap.Responder.ETag of the
// responder as read): the server refuses with EPRECONDITION if it changed
// since, so two editors do not undo each other.
func (c *Client) UpdateResponder(ctx context.Context, ref string, r *tripcap.Responder, ifMatch string) (*tripcap.Responder, error) {
	header := http.Header{}
	if ifMatch != "" {
		header.Set("If-Match", ifMatch)
	}
	var out tripcap.Responder
	return &out, c.doWith(ctx, "PUT", "/api/v1/responders/"+url.PathEscape(ref), nil, header, r, &out)
}
