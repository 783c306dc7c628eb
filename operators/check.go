package operators

import (
	"errors"
	"fmt"
	"time"

	"github.com/flowrun/flowrun/planner"
)

// Problems collects what a Schema.Check finds wrong with a stage's options.
type Problems []error

// Add reports a problem with option (or with the stage as a whole when
// option is ""); the message is a sentence saying how to fix it.
func (p *Problems) Add(option, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if option == "" {
		*p = append(*p, errors.New(msg))
		return
	}
	*p = append(*p, &planner.OptionError{Option: option, Message: msg})
}

// Min reports the integer option name when it is below least.
func (p *Problems) Min(o planner.Options, name string, least int64) {
	if n := o.Int(name); n < least {
		p.Add(name, "the %s must be at least %d, not %d", name, least, n)
	}
}

// MinDuration reports the duration option name when it is below least
// (or not above it, when strict).
func (p *Problems) MinDuration(o planner.Options, name string, least time.Duration, strict bool) {
	d := o.Duration(name)
	switch {
	case strict && d <= least:
		p.Add(name, "the %s must be more than %s, not %s", name, least, d)
	case !strict && d < least:
		p.Add(name, "the %s must be at least %s, not %s", name, least, d)
	}
}

// Err returns the problems as one error, or nil.
func (p Problems) Err() error { return errors.Join(p...) }
