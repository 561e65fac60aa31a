package tripcap

import (
	"errors"
	"time"
)

// ERATELIMIT says the caller sent more than its share and should wait:
// HTTP 429 with Retry-After.
const ERATELIMIT = "rate_limited"

// RateLimitError is an ERATELIMIT error with the wait it asks for.
type RateLimitError struct {
	Err        *Error
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return e.Err.Error() }

// Unwrap gives ErrorCode and ErrorMessage the *Error.
func (e *RateLimitError) Unwrap() error { return e.Err }

// RateLimited returns an ERATELIMIT error asking the caller to wait retryAfter.
func RateLimited(retryAfter time.Duration, format string, args ...any) error {
	return &RateLimitError{Err: Errorf(ERATELIMIT, format, args...), RetryAfter: retryAfter}
}

// RetryAfter returns the wait a rate-limit error in err's chain asks for.
func RetryAfter(err error) (time.Duration, bool) {
	var e *RateLimitError
	if errors.As(err, &e) {
		return e.RetryAfter, true
	}
	return 0, false
}
