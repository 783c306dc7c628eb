package onerror

import (
	"errors"
	"math/rand/v2"
	"time"
)

// An error is transient unless it is marked [Permanent]: trying again may
// mend it (a refused or reset connection, a timeout, an HTTP 5xx or 429, a
// serialization failure). A processor's and a decoder's errors are always
// permanent: the same input fails the same way.

// permanentError marks an error that retrying cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: no policy retries it, and a sink batch
// that failed with it is split until the records that caused it are found.
// An HTTP 400 answer is permanent; a 503 or a refused connection is not.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// retryAfterError carries the wait a server asked for (HTTP Retry-After).
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err, a transient error, with the wait its server asked
// for before the next try; [Policy.Delay] honours it. RetryAfter(nil, d) is
// nil.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: after}
}

// RetryAfterOf returns the wait err asks for, if it was marked by
// RetryAfter.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// Backoff returns the wait before try number attempt (1 for the first):
// initial doubled per try, capped at limit, with "equal jitter": a
// uniformly random duration in [d/2, d]. Reconnecting connectors use it
// too, so every wait in flowrun grows the same way.
func Backoff(initial, limit time.Duration, attempt int) time.Duration {
	d := initial
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
