package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

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

// CreateResponder creates a responder.
func (c *Client) CreateResponder(ctx context.Context, r *tripcap.Responder) (*tripcap.Responder, error) {
	var out tripcap.Responder
	return &out, c.do(ctx, "POST", "/api/v1/responders", nil, r, &out)
}

// ListResponders lists responders.
func (c *Client) ListResponders(ctx context.Context) ([]*tripcap.Responder, error) {
	return listAll[*tripcap.Responder](ctx, c, "/api/v1/responders", url.Values{})
}

// GetResponder returns a responder by name or id.
func (c *Client) GetResponder(ctx context.Context, ref string) (*tripcap.Responder, error) {
	var out tripcap.Responder
	return &out, c.do(ctx, "GET", "/api/v1/responders/"+url.PathEscape(ref), nil, nil, &out)
}

// DeleteResponder deletes a responder and its keys.
func (c *Client) DeleteResponder(ctx context.Context, ref string) error {
	return c.do(ctx, "DELETE", "/api/v1/responders/"+url.PathEscape(ref), nil, nil, nil)
}

// ListResponderRuns lists a responder's runs, newest first (limit 0: the server's default).
func (c *Client) ListResponderRuns(ctx context.Context, ref string, limit int) ([]*tripcap.ResponderRun, error) {
	v := url.Values{}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	return listAll[*tripcap.ResponderRun](ctx, c, "/api/v1/responders/"+url.PathEscape(ref)+"/runs", v)
}

// CreateResponderKey creates a function key; the answer holds its secret.
func (c *Client) CreateResponderKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	var out tripcap.ResponderKey
	return &out, c.do(ctx, "POST", "/api/v1/responders/"+url.PathEscape(ref)+"/keys", nil, ResponderKeyBody{Name: name}, &out)
}

// ListResponderKeys lists a responder's keys.
func (c *Client) ListResponderKeys(ctx context.Context, ref string) ([]*tripcap.ResponderKey, error) {
	return listAll[*tripcap.ResponderKey](ctx, c, "/api/v1/responders/"+url.PathEscape(ref)+"/keys", url.Values{})
}

// RotateResponderKey replaces a key's secret; the answer holds the new one.
func (c *Client) RotateResponderKey(ctx context.Context, ref, name string) (*tripcap.ResponderKey, error) {
	var out tripcap.ResponderKey
	return &out, c.do(ctx, "POST", "/api/v1/responders/"+url.PathEscape(ref)+"/keys/"+url.PathEscape(name)+"/rotate", nil, nil, &out)
}

// RevokeResponderKey revokes a key.
func (c *Client) RevokeResponderKey(ctx context.Context, ref, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/responders/"+url.PathEscape(ref)+"/keys/"+url.PathEscape(name), nil, nil, nil)
}
