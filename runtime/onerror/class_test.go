package onerror_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
)

func TestPermanent(t *testing.T) {
	base := errors.New("422 Unprocessable Entity")
	p := onerror.Permanent(base)
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", p, true},
		{"wrapped after marking", fmt.Errorf("write: %w", p), true},
	}
	for _, tt := range tests {
		if got := onerror.IsPermanent(tt.err); got != tt.want {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.want)
		}
	}
	if onerror.Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
	if p.Error() != base.Error() || !errors.Is(p, base) {
		t.Errorf("Permanent changes the error: %v", p)
	}
}

func TestPolicyMayRetry(t *testing.T) {
	transient := errors.New("connection reset")
	tests := []struct {
		name  string
		p     onerror.Policy
		err   error
		tries int
		want  bool
	}{
		{"stop never retries", onerror.Policy{Mode: onerror.Stop, Attempts: 5}, transient, 1, false},
		{"skip retries a transient error", onerror.Policy{Mode: onerror.Skip, Attempts: 5}, transient, 1, true},
		{"attempts bound the tries", onerror.Policy{Mode: onerror.Retry, Attempts: 3}, transient, 3, false},
		{"unlimited", onerror.Default(onerror.Sink), transient, 1000, true},
		{"permanent is not retried", onerror.Default(onerror.Sink), onerror.Permanent(transient), 1, false},
	}
	for _, tt := range tests {
		if got := tt.p.MayRetry(tt.err, tt.tries); got != tt.want {
			t.Errorf("%s: MayRetry = %v, want %v", tt.name, got, tt.want)
		}
	}
	after := onerror.RetryAfter(transient, 3*time.Second)
	if d := onerror.Default(onerror.Sink).Delay(after, 1); d != 3*time.Second {
		t.Errorf("Delay honours Retry-After: %s, want 3s", d)
	}
}
