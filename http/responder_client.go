package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/tripcap/tripcap"
)

// UpdateResponder replaces a responder's settings with r. ifMatch, when
// set, is the ETag the change is based on (tripcap.Responder.ETag of the
// responder as read): the server refuses with EPRECONDITION if it changed
// since, so two editors do not undo each other.
func (c *Client) UpdateResponder(ctx context.Context, ref string, r *tripcap.Responder, ifMatch string) (*tripcap.Responder, error) {
	path := "/api/v1/responders/" + url.PathEscape(ref)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode PUT %s: %w", path, err)
	}
	req, err := c.newRequest(ctx, "PUT", path, nil, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("PUT %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp)
	}
	var out tripcap.Responder
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode answer of PUT %s: %w", path, err)
	}
	return &out, nil
}
