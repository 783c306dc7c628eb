package web_test

import (
	"strings"
	"testing"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

// TestCheck plans stages with bad options: each is reported at plan time,
// at the option, with a sentence saying how to fix it.
func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		stage string
		want  string
	}{
		{"http source listen", `source "s" { kind = "http"; listen = "8080" }`, "must be host:port"},
		{"http source path", `source "s" { kind = "http"; path = "ingest" }`, "must start with /"},
		{"http source ready path", `source "s" { kind = "http"; path = "/ready" }`, "readiness endpoint"},
		{"http source body", `source "s" { kind = "http"; max_body_bytes = 1 }`, "max_body_bytes must be at least 2"},
		{"http source respond", `source "s" { kind = "http"; respond = "never" }`, "finished"},
		{"http sink url", `sink "s" { from = x; kind = "http"; url = "ftp://host/x" }`, "must start with http:// or https://"},
		{"http sink batch", `sink "s" { from = x; kind = "http"; url = "http://h"; batch_size = 0 }`, "batch_size must be at least 1"},
		{"http sink headers", `sink "s" { from = x; kind = "http"; url = "http://h"; headers = { a = [1] } }`, "must be a string, number or bool"},
		{"http sink codec", `sink "s" { from = x; kind = "http"; url = "http://h"; codec = "csv" }`, "ndjson"},
		{"websocket source url", `source "s" { kind = "websocket"; url = "http://h" }`, "must start with ws:// or wss://"},
		{"websocket source backoff", `source "s" { kind = "websocket"; url = "ws://h"; reconnect_initial = "1s"; reconnect_max = "10ms" }`,
			"reconnect_max (10ms) must be at least the reconnect_initial (1s)"},
		{"websocket sink queue", `sink "s" { from = x; kind = "websocket"; client_queue = 0 }`, "client_queue must be at least 1"},
		{"websocket sink policy", `sink "s" { from = x; kind = "websocket"; slow_client = "block" }`, "drop_oldest"},
		{"sse sink replay", `sink "s" { from = x; kind = "sse"; replay = -1 }`, "replay must be at least 0"},
		{"sse sink heartbeat", `sink "s" { from = x; kind = "sse"; heartbeat = "0s" }`, "heartbeat must be more than 0s"},
		{"sse sink event", `sink "s" { from = x; kind = "sse"; event = uper(kind) }`, "upper"},
		{"sse source url", `source "s" { kind = "sse"; url = "ws://h" }`, "must start with http:// or https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "pipeline \"p\" {\n  source \"x\" { kind = \"http\"; listen = \"127.0.0.1:0\" }\n  " + tt.stage + "\n}\n"
			if strings.HasPrefix(tt.stage, "source") {
				src = "pipeline \"p\" {\n  " + tt.stage + "\n  sink \"out\" { from = s; kind = \"discard\" }\n}\n"
			}
			diags := optest.PlanDiagnostics(t, src)
			if !diags.HasErrors() {
				t.Fatalf("no error for %s", tt.stage)
			}
			if !strings.Contains(diags.Error(), tt.want) {
				t.Errorf("diagnostics %q do not mention %q", diags.Error(), tt.want)
			}
		})
	}
}

// TestDefaults plans each kind with its required options only.
func TestDefaults(t *testing.T) {
	diags := optest.PlanDiagnostics(t, `
pipeline "p" {
  source "a" { kind = "http" }
  source "b" { kind = "websocket"; url = "wss://example.com/feed" }
  source "c" { kind = "sse"; url = "https://example.com/events" }
  sink "d" { from = [a, b, c]; kind = "http"; url = "https://example.com/bulk" }
  sink "e" { from = a; kind = "websocket" }
  sink "f" { from = a; kind = "sse"; event = "update" }
}
`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
}
