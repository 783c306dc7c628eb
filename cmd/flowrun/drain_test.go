package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestRunFlagsDrainTimeout(t *testing.T) {
	tests := []struct {
		args []string
		want time.Duration
		ok   bool
	}{
		{[]string{"p.flow"}, 30 * time.Second, true},
		{[]string{"--drain-timeout", "1s", "p.flow"}, time.Second, true},
		{[]string{"--drain-timeout=2m30s", "p.flow"}, 150 * time.Second, true},
		{[]string{"--drain-timeout", "0", "p.flow"}, 0, true},
		{[]string{"--drain-timeout", "-1s", "p.flow"}, 0, false},
		{[]string{"--drain-timeout", "5", "p.flow"}, 0, false},
	}
	for _, tt := range tests {
		var stderr strings.Builder
		f, ok := parseRunFlags(tt.args, &stderr)
		if ok != tt.ok {
			t.Errorf("%q: ok = %v, want %v (%s)", tt.args, ok, tt.ok, stderr.String())
			continue
		}
		if ok && f.drainTimeout != tt.want {
			t.Errorf("%q: drain timeout %s, want %s", tt.args, f.drainTimeout, tt.want)
		}
	}
	if DefaultDrainTimeout != 30*time.Second {
		t.Errorf("DefaultDrainTimeout = %s, want 30s as documented", DefaultDrainTimeout)
	}
	if f, _ := parseRunFlags([]string{"p.flow"}, io.Discard); drainTimeoutString(f.drainTimeout) != "30s" || drainTimeoutString(0) != "none" {
		t.Errorf("drain timeouts log as %q and %q, want 30s and none", drainTimeoutString(f.drainTimeout), drainTimeoutString(0))
	}
}
