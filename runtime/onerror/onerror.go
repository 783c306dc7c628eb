// Package onerror is flowrun's error-policy contract: the modes a stage's
// on_error takes, their defaults, which errors are worth retrying, and the
// backoff between tries. It is the one home of these rules: the planner
// decodes into [Policy], the runtime applies it, and connectors classify
// their errors with [Permanent] and [RetryAfter].
package onerror

import (
	"fmt"
	"time"
)

// Mode is what a stage does with a record it has failed on, once the
// retries a transient error gets are spent.
type Mode uint8

// The modes, as written in on_error. The zero Mode is unset: [Policy.Resolve]
// gives it the stage's default.
const (
	// Stop fails the run at the record (after delivering everything before
	// it).
	Stop Mode = iota + 1
	// Skip counts and logs the record and goes on.
	Skip
	// Retry retries a transient error up to Policy.Attempts tries and then
	// fails the run (or dead-letters the record when the stage has a dead
	// letter).
	Retry
	// DeadLetter sends the record, with its error, to the stage's dead-letter
	// sink.
	DeadLetter
)

var modeNames = [...]string{Stop: "stop", Skip: "skip", Retry: "retry", DeadLetter: "dead_letter"}

// String returns the mode as written in on_error.
func (m Mode) String() string {
	if int(m) < len(modeNames) && m != 0 {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode returns the mode spelled s in on_error.
func ParseMode(s string) (Mode, bool) {
	for m, name := range modeNames {
		if name == s && m != 0 {
			return Mode(m), true
		}
	}
	return 0, false
}

// ModeNames lists the modes as written in on_error, in their order.
func ModeNames() []string {
	return append([]string(nil), modeNames[1:]...)
}

// Retries reports whether the mode retries a transient error before it
// gives up on the record.
func (m Mode) Retries() bool { return m != Stop }

// Unlimited is the Attempts value of a policy that retries a transient error
// until it succeeds (retry_attempts = 0 in a file).
const Unlimited = -1

// Policy is a stage's complete error policy.
type Policy struct {
	Mode Mode
	// Attempts bounds the tries of a transient error, the first included;
	// Unlimited tries until it succeeds or the run stops, and 0 takes the
	// default of the stage's role.
	Attempts int
	// Backoff is the wait before the first retry, doubled on each retry up
	// to MaxBackoff, with jitter.
	Backoff, MaxBackoff time.Duration
}

// The defaults, applied by [Default] and nowhere else.
const (
	// DefaultAttempts bounds the tries of a transient error in every stage
	// but a sink, which retries without limit.
	DefaultAttempts   = 5
	DefaultBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Role is what a stage does, as far as its default policy is concerned.
type Role uint8

// The roles with a default policy of their own.
const (
	// Other is every stage but a sink: it stops at a failed record and gives
	// a transient error DefaultAttempts tries.
	Other Role = iota
	// Sink retries a transient error without limit, as an outage of minutes
	// should lose and fail nothing.
	Sink
)

// Default returns the policy of a stage of role r whose file sets nothing.
func Default(r Role) Policy {
	p := Policy{Mode: Stop, Attempts: DefaultAttempts, Backoff: DefaultBackoff, MaxBackoff: DefaultMaxBackoff}
	if r == Sink {
		p.Mode, p.Attempts = Retry, Unlimited
	}
	return p
}

// Resolve returns p with what it leaves unset (a zero Mode, zero Attempts,
// zero or negative durations) taken from Default(r), and MaxBackoff no
// shorter than Backoff. A zero Policy resolves to Default(r).
func (p Policy) Resolve(r Role) Policy {
	d := Default(r)
	if p.Mode == 0 {
		p.Mode = d.Mode
	}
	if p.Attempts == 0 || p.Attempts < Unlimited {
		p.Attempts = d.Attempts
	}
	if p.Backoff <= 0 {
		p.Backoff = d.Backoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = d.MaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.Backoff)
	return p
}

// MayRetry reports whether try number tries (1 for the first) that failed
// with err may be followed by another.
func (p Policy) MayRetry(err error, tries int) bool {
	return p.Mode.Retries() && !IsPermanent(err) && (p.Attempts == Unlimited || tries < p.Attempts)
}

// Delay returns the wait before retry number retry (1 for the first) of an
// attempt that failed with err: the backoff, or what err asks for with
// [RetryAfter] when that is longer (capped at MaxBackoff times four, so a
// server cannot park a stage for ever).
func (p Policy) Delay(err error, retry int) time.Duration {
	d := Backoff(p.Backoff, p.MaxBackoff, retry)
	if after, ok := RetryAfterOf(err); ok && after > d {
		d = min(after, 4*p.MaxBackoff)
	}
	return d
}

// String renders the policy: the mode, plus the retries when it retries.
func (p Policy) String() string {
	if !p.Mode.Retries() {
		return p.Mode.String()
	}
	tries := "unlimited tries"
	if p.Attempts != Unlimited {
		tries = fmt.Sprintf("%d tries", p.Attempts)
	}
	return fmt.Sprintf("%s (%s, backoff %s..%s)", p.Mode, tries, p.Backoff, p.MaxBackoff)
}
