package controlplane

import (
	"context"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/responder"
)

// ResponderDeps are the responder stage's dependencies on this control
// plane: its store (responders, action groups, hosts) and its captures.
func (s *Service) ResponderDeps() responder.Deps {
	return responder.Deps{Store: s.store, Groups: s.store, Hosts: s.store, Captures: responderCaptures{s}}
}

// responderCaptures is what the responder stage does to captures, through
// the Service's own methods, so every rule those enforce applies to it too.
// Its calls carry an admin principal, as the responder's do.

type responderCaptures struct{ s *Service }

func (c responderCaptures) EnsureWatcher(ctx context.Context, h *tripcap.Host) (*tripcap.NetworkWatcher, error) {
	return c.s.watcherOf(ctx, h)
}

func (c responderCaptures) FindCapture(ctx context.Context, f tripcap.CaptureFilter) (*tripcap.PacketCapture, error) {
	return c.s.store.FindCapture(ctx, f)
}

func (c responderCaptures) CountCaptures(ctx context.Context, f tripcap.CaptureFilter) (int, error) {
	return c.s.store.CountCaptures(ctx, f)
}

func (c responderCaptures) CreateCapture(ctx context.Context, req responder.CaptureRequest) (*tripcap.PacketCapture, error) {
	return c.s.CreateCapture(ctx, CreateCaptureRequest{ID: req.ID, Name: req.Name, Watcher: req.Watcher, Parameters: req.Parameters, Cause: req.Cause, AlertID: req.AlertID})
}

func (c responderCaptures) StopCapture(ctx context.Context, id string) (*tripcap.PacketCapture, error) {
	return c.s.StopCapture(ctx, "", id, "")
}

// DeleteCapture deletes by id (a watcher-scoped reference is a name).
func (c responderCaptures) DeleteCapture(ctx context.Context, id string) error {
	return c.s.DeleteCapture(ctx, "", id, "", false)
}

func (c responderCaptures) CheckStorage(ctx context.Context, account string) error {
	_, err := c.s.blobStore(ctx, account)
	return err
}

func (c responderCaptures) DefaultStorage() string { return c.s.cfg.DefaultStorage }
