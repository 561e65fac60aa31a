package sqlstore

import (
	"errors"
	"fmt"

	"github.com/tripcap/tripcap"
)

// The domain errors both stores return, worded for the user.

func HostNameTaken(name string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a host named %q already exists (host names are unique regardless of case)", name)
}

func HostIDTaken(id string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a host with id %q already exists", id)
}

func HostNotFound(id string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "host %q not found", id)
}

func NoSuchHost() error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "no host matches")
}

func CaptureNameTaken(name, watcher string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a capture named %q already exists in %s (names are unique regardless of case)", name, watcher)
}

func CaptureIDTaken(id string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a capture with id %q already exists", id)
}

func CaptureNotFound(id string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "capture %q not found", id)
}

func NoSuchCapture() error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "no capture matches")
}

func CaptureLimit(watcher string, limit int) error {
	return tripcap.Errorf(tripcap.ELIMIT, "%s already runs its limit of %d parallel captures; stop or delete one first", watcher, limit)
}

func CaptureVersion(id string, have, want int64) error {
	return tripcap.Errorf(tripcap.EPRECONDITION, "capture %q changed: it is at version %d, not %d; read it again and retry", id, have, want)
}

// CaptureFixed is returned when an update tries to change a field fixed at creation.
func CaptureFixed(id, field string) error {
	return tripcap.Errorf(tripcap.EINVALID, "capture %q: %s cannot change after creation", id, field)
}

func captureNotProgress(id, field string) error {
	return tripcap.Errorf(tripcap.EINVALID, "capture %q: a batched progress update cannot change %s (update the capture alone)", id, field)
}

func WatcherNotFound(idOrName string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "network watcher %q not found", idOrName)
}

func WatcherNameTaken(name, group string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a network watcher named %q already exists in resource group %s", name, group)
}

func WatcherLocationTaken(location, name, group string) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "the subscription already has network watcher %s (resource group %s) in %s: one per location", name, group, location)
}

func WatcherInUse(id string, captures int) error {
	return tripcap.Errorf(tripcap.ECONFLICT, "network watcher %s still has %d captures on record (deleted ones keep their files' index); it cannot be deleted", id, captures)
}

func WatcherNameAmbiguous(name string) error {
	return tripcap.Errorf(tripcap.EINVALID, "network watcher: %q names watchers of several subscriptions or resource groups; give its id", name)
}

func JoinTokenTaken() error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a join token with this secret or id already exists")
}

func JoinTokenNotFound(id string) error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "join token %q not found", id)
}

// JoinTokenRefused does not say which of unknown, expired or used up, so a
// guesser learns nothing.
func JoinTokenRefused() error {
	return tripcap.Errorf(tripcap.EUNAUTHORIZED, "join token is unknown, expired or used up")
}

func CredentialTaken() error {
	return tripcap.Errorf(tripcap.ECONFLICT, "a credential with this secret or id already exists")
}

func CredentialNotFound() error {
	return tripcap.Errorf(tripcap.ENOTFOUND, "credential not found")
}

// Wrap says what was being done when an internal error happened; a domain
// error (*tripcap.Error), meant for the user as it is, passes unchanged, as
// does nil.
func Wrap(err error, format string, args ...any) error {
	var e *tripcap.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
