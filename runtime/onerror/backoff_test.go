package onerror_test

import (
	"testing"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name           string
		initial, limit time.Duration
		attempt        int
		want           time.Duration // the wait before jitter
	}{
		{"first try waits initial", 100 * time.Millisecond, 5 * time.Second, 1, 100 * time.Millisecond},
		{"doubled per try", 100 * time.Millisecond, 5 * time.Second, 4, 800 * time.Millisecond},
		{"capped at limit", 100 * time.Millisecond, 5 * time.Second, 20, 5 * time.Second},
		{"limit below initial", time.Second, 300 * time.Millisecond, 1, 300 * time.Millisecond},
		{"no wait", 0, time.Second, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				got := onerror.Backoff(tt.initial, tt.limit, tt.attempt)
				if got < tt.want/2 || got > tt.want {
					t.Fatalf("Backoff(%s, %s, %d) = %s, want within [%s, %s]",
						tt.initial, tt.limit, tt.attempt, got, tt.want/2, tt.want)
				}
			}
		})
	}
}
