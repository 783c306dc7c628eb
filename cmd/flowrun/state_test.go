package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/supervisor"
)

// TestStateExitCodes runs `flowrun state` in process: 2 for a usage error,
// 0 for help, 1 for a state dir that cannot be shown or reset.
func TestStateExitCodes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"state"}, exitUsage},
		{[]string{"state", "--help"}, exitOK},
		{[]string{"state", "-h"}, exitOK},
		{[]string{"state", "frob"}, exitUsage},
		{[]string{"state", "show"}, exitUsage},
		{[]string{"state", "show", "-h"}, exitOK},
		{[]string{"state", "show", dir, dir}, exitUsage},
		{[]string{"state", "show", "--format", "yaml", dir}, exitUsage},
		{[]string{"state", "show", dir, "--format", "yaml"}, exitUsage},
		{[]string{"state", "show", "--nope", dir}, exitUsage},
		{[]string{"state", "show", dir}, exitOK},
		{[]string{"state", "show", "--format", "json", dir}, exitOK},
		{[]string{"state", "show", dir + "/missing"}, exitFail},
		{[]string{"state", "reset"}, exitUsage},
		{[]string{"state", "reset", "--help"}, exitOK},
		{[]string{"state", "reset", dir, "--pipeline"}, exitUsage},
		{[]string{"state", "reset", "--pipeline=", dir}, exitUsage},
		{[]string{"state", "reset", dir}, exitOK},
		{[]string{"state", "reset", dir, "--pipeline", "p"}, exitFail},
		{[]string{"state", "reset", dir + "/missing"}, exitFail},
		{[]string{"state", "reset", "--", "--pipeline"}, exitFail}, // DIR "--pipeline" does not exist
	} {
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), tc.args, &stdout, &stderr); got != tc.want {
			t.Errorf("flowrun %s: exit %d, want %d\n%s%s", strings.Join(tc.args, " "), got, tc.want, stdout.String(), stderr.String())
		}
	}
}

func TestStateAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "in the future (the clock was set back)"},
		{300 * time.Millisecond, "just now"},
		{3400 * time.Millisecond, "3s ago"},
		{5*time.Minute + 12*time.Second, "5m12s ago"},
		{2*time.Hour + 7*time.Minute + 20*time.Second, "2h7m ago"},
		{2 * time.Hour, "2h0m ago"},
		{3*24*time.Hour + 4*time.Hour + 10*time.Minute, "3d4h ago"},
	} {
		if got := age(tc.d); got != tc.want {
			t.Errorf("age(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestStateText(t *testing.T) {
	for _, tc := range []struct {
		blob, want string
	}{
		{`{"size": 18}`, `{"size":18}`},
		{`[{"file":"in.jsonl","offset":27}]`, `[{"file":"in.jsonl","offset":27}]`},
		{"\x00\x01\x02", "(3 bytes, not JSON)"},
		{`"` + strings.Repeat("é", 150) + `"`, `"` + strings.Repeat("é", 99) + `… (302 bytes; --format json shows it whole)`},
	} {
		if got := stateText([]byte(tc.blob)); got != tc.want {
			t.Errorf("stateText(%.40q) = %q, want %q", tc.blob, got, tc.want)
		}
	}
}

// TestStateResetHint checks that the hint of an unusable state file is a
// command line a shell takes as it is meant.
func TestStateResetHint(t *testing.T) {
	for _, tc := range []struct {
		dir, pipeline, want string
	}{
		{"state", "alerts", "to start afresh: flowrun state reset state --pipeline alerts"},
		{"/var/lib/flowrun", "logs.v2", "to start afresh: flowrun state reset /var/lib/flowrun --pipeline logs.v2"},
		{"my state", "it's", `to start afresh: flowrun state reset 'my state' --pipeline 'it'\''s'`},
		{"-dir", "$x", `to start afresh: flowrun state reset ./-dir --pipeline '$x'`},
	} {
		if got := supervisor.ResetHint(tc.dir, tc.pipeline); got != tc.want {
			t.Errorf("ResetHint(%q, %q) = %s, want %s", tc.dir, tc.pipeline, got, tc.want)
		}
	}
}
