package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/retryafter"
)

func TestParse(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration, layout string) string { return now.Add(d).Format(layout) }
	tests := []struct {
		h      string
		want   time.Duration
		wantOK bool
	}{
		{"2", 2 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"99999999999999", retryafter.Max, true},
		{date(3*time.Second, http.TimeFormat), 3 * time.Second, true},
		{date(5*time.Second, time.RFC850), 5 * time.Second, true},
		{date(9*time.Second, time.ANSIC), 9 * time.Second, true},
		{date(-time.Minute, http.TimeFormat), 0, true},
		{date(48*time.Hour, http.TimeFormat), retryafter.Max, true},
		{"", 0, false},
		{"-3", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryafter.Parse(tt.h, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tt.h, got, ok, tt.want, tt.wantOK)
		}
	}
}
