package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestTopUsage: top --help prints its usage and exits 0; a missing or
// extra ADDR, an address that is not HOST:PORT, port 0, an interval that
// is not positive and an unknown flag are usage errors (exit 2) that say
// what is wrong; the command list names top.
func TestTopUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"top", "--help"}, exitOK, "usage: flowrun top [--interval D] ADDR"},
		{[]string{"top", "-h"}, exitOK, "-interval duration"},
		{[]string{"top"}, exitUsage, "want exactly one ADDR"},
		{[]string{"top", "127.0.0.1:9180", "127.0.0.1:9181"}, exitUsage, "want exactly one ADDR"},
		{[]string{"top", "9180"}, exitUsage, "missing port"},
		{[]string{"top", "127.0.0.1:http"}, exitUsage, `port "http" is not a number`},
		{[]string{"top", "127.0.0.1:0"}, exitUsage, "give the port the run logged"},
		{[]string{"top", "--interval", "0s", "127.0.0.1:9180"}, exitUsage, "--interval 0s: want more than 0"},
		{[]string{"top", "--interval", "soon", "127.0.0.1:9180"}, exitUsage, "invalid value"},
		{[]string{"top", "--frobnicate", "127.0.0.1:9180"}, exitUsage, "flag provided but not defined: -frobnicate"},
		{[]string{"--help"}, exitOK, "  top       show a live dashboard"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("flowrun %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr.String(), tc.code, tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("flowrun %s: stdout %q, want nothing", strings.Join(tc.args, " "), stdout.String())
		}
	}
}

func TestTopAddr(t *testing.T) {
	for arg, want := range map[string]string{
		"127.0.0.1:9180":         "127.0.0.1:9180",
		":9180":                  "127.0.0.1:9180",
		"http://127.0.0.1:9180/": "127.0.0.1:9180",
		"localhost:9180":         "localhost:9180",
		"[::1]:9180":             "[::1]:9180",
	} {
		if got, err := topAddr(arg); err != nil || got != want {
			t.Errorf("topAddr(%q) = %q, %v; want %q", arg, got, err, want)
		}
	}
}
