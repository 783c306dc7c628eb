package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/web"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestSSESink reads the sink's stream as a browser does: events carry a
// growing id, the event name from the expression and the record as JSON;
// idle streams get heartbeat comments; a client that reconnects with
// Last-Event-ID gets exactly the events it missed, and one that missed more
// than the replay buffer holds gets the newest ones.
func TestSSESink(t *testing.T) {
	p := startFlow(t, `
pipeline "p" {
  source "in" {
    kind   = "http"
    listen = "127.0.0.1:0"
  }
  sink "browsers" {
    from      = in
    kind      = "sse"
    listen    = "127.0.0.1:0"
    event     = kind ?? "message"
    heartbeat = "50ms"
    replay    = 5
  }
}`, nil)
	ingest := "http://" + addrOf(t, p.node("in").Source.(*web.HTTPSource)) + "/ingest"
	sse := p.node("browsers").Sink.(*web.SSESink)
	events := "http://" + addrOf(t, sse) + "/events"
	c := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	resp, stream := openSSE(t, ctx, c, events, "")
	eventually(t, "a client", func() bool { return sse.Stats().Clients == 1 })
	postIDs := func(body string) {
		t.Helper()
		if status, answer := post(t, c, ingest, "application/x-ndjson", body); status != 200 {
			t.Fatalf("POST: %d %s", status, answer)
		}
	}
	postIDs(`{"id": 0, "kind": "trade"}` + "\n" + `{"id": 1}` + "\n" + `{"id": 2, "kind": "quote"}`)
	var got []sseEvent
	for range 3 {
		ev, err := stream.next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	first, err := strconv.ParseInt(got[0].ID, 10, 64)
	if err != nil {
		t.Fatalf("id %q is not a number", got[0].ID)
	}
	want := []sseEvent{
		{ID: fmt.Sprint(first), Event: "trade", Data: `{"id":0,"kind":"trade"}`},
		{ID: fmt.Sprint(first + 1), Event: "message", Data: `{"id":1}`},
		{ID: fmt.Sprint(first + 2), Event: "quote", Data: `{"id":2,"kind":"quote"}`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// Idle: heartbeat comments arrive before the next event.
	time.Sleep(120 * time.Millisecond)
	postIDs(`{"id": 3}`)
	if ev, err := stream.next(); err != nil || ev.Data != `{"id":3}` || ev.ID != fmt.Sprint(first+3) {
		t.Fatalf("event after idling: %+v %v", ev, err)
	}
	if !slices.Contains(stream.comments, "heartbeat") {
		t.Errorf("comments %q: want heartbeats", stream.comments)
	}
	resp.Body.Close()
	eventually(t, "the client to leave", func() bool { return sse.Stats().Clients == 0 })

	// Missed while away: 4..7; resuming from the last seen id gets
	// exactly them.
	postIDs(ndjson(4, 4))
	resp, stream = openSSE(t, ctx, c, events, stream.lastID)
	for i := 4; i <= 7; i++ {
		ev, err := stream.next()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"id":%d}`, i); ev.Data != want || ev.ID != fmt.Sprint(first+int64(i)) {
			t.Fatalf("resumed event %+v, want id %d data %s", ev, first+int64(i), want)
		}
	}
	// Live events follow the replayed ones without a gap.
	postIDs(`{"id": 8}`)
	if ev, err := stream.next(); err != nil || ev.Data != `{"id":8}` {
		t.Fatalf("live event after resume: %+v %v", ev, err)
	}
	resp.Body.Close()
	eventually(t, "the client to leave", func() bool { return sse.Stats().Clients == 0 })

	// Missed 9..18, more than the replay buffer's 5: the newest 5 come.
	postIDs(ndjson(9, 10))
	resp, stream = openSSE(t, ctx, c, events, fmt.Sprint(first+8))
	var resumed []string
	for range 5 {
		ev, err := stream.next()
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, ev.Data)
	}
	if want := strings.Split(strings.ReplaceAll(strings.TrimSpace(ndjson(14, 5)), `": `, `":`), "\n"); !slices.Equal(resumed, want) {
		t.Errorf("resumed after a long absence: %q, want %q", resumed, want)
	}
	if st := sse.Stats(); st.Sent != 4+5+5 {
		t.Errorf("stats %+v: want 14 events sent", st)
	}

	// The end of the pipeline ends the stream.
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := stream.next(); err != io.EOF {
		t.Errorf("after the end: %v, want EOF", err)
	}
	resp.Body.Close()
}

// TestSSESource: the server sends three events and drops the stream; the
// source reconnects with Last-Event-ID: 3, gets two more and then a 204,
// which ends the source and the pipeline.
func TestSSESource(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
		n := len(lastIDs)
		mu.Unlock()
		if r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		switch n {
		case 1:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, ": hello\n\nretry: 10\n\nid: 1\ndata: {\"n\": 1}\n\n")
			io.WriteString(w, "id: 2\nevent: tick\ndata: {\"n\":\ndata:  2}\n\n")
			io.WriteString(w, "event: ignored\n\nid: 3\r\ndata: {\"n\": 3}\r\n\r\n")
			io.WriteString(w, "id: 4\ndata: {\"n\": 4, \"cut\": ") // the stream breaks mid-event
		case 2:
			http.Error(w, "restarting", http.StatusServiceUnavailable)
		case 3:
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "id: 4\ndata: {\"n\": 4}\n\nid: 5\ndata: {\"n\": 5}\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	mem := memory()
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "events" {
    kind              = "sse"
    url               = %q
    reconnect_initial = "5ms"
  }
  sink "out" {
    from = events
    kind = "discard"
  }
}`, srv.URL), map[string]flowruntime.Sink{"out": mem})
	if err := p.wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	want := []M{{"n": int64(1)}, {"n": int64(2)}, {"n": int64(3)}, {"n": int64(4)}, {"n": int64(5)}}
	if diff := cmp.Diff(want, mem.Fields()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "3", "3", "5"}; !slices.Equal(lastIDs, want) {
		t.Errorf("Last-Event-ID headers %q, want %q", lastIDs, want)
	}
}

func TestSSESourceEventCodec(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Last-Event-ID") != "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		io.WriteString(w, "id: a\nevent: note\ndata: line one\ndata: line two\n\ndata: no id\n\n")
	}))
	defer srv.Close()
	mem := memory()
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "events" {
    kind              = "sse"
    url               = %q
    codec             = "event"
    reconnect_initial = "5ms"
  }
  sink "out" {
    from = events
    kind = "discard"
  }
}`, srv.URL), map[string]flowruntime.Sink{"out": mem})
	if err := p.wait(); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	want := []M{
		{"id": "a", "event": "note", "data": "line one\nline two"},
		{"id": "a", "event": "message", "data": "no id"},
	}
	if diff := cmp.Diff(want, mem.Fields()); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
