package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/sink"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// decodeErrorFlow is a pipeline whose source "in" (the stage text given)
// writes to the memory sink out, with the on_error mode given and, under
// dead_letter, the memory sink rejects as its dead letter.
func decodeErrorFlow(source, onError string) string {
	policy := fmt.Sprintf("on_error = %q", onError)
	rejects := ""
	if onError == "dead_letter" {
		policy += "\n    dead_letter = rejects"
		rejects = `
  sink "rejects" {
    kind = "discard"
  }`
	}
	return fmt.Sprintf(`
pipeline "p" {
  source "in" {
    %s
    %s
  }
  sink "out" {
    from = in
    kind = "discard"
  }%s
}`, source, policy, rejects)
}

// decodeErrorCase is what one on_error mode makes of a stream with one
// undecodable message after ids 0 and 1 and before id 3.
type decodeErrorCase struct {
	onError string
	// fails: the run ends with the undecodable message's error.
	fails bool
	// want are the ids written; rejected, whether the message reaches the
	// dead letter.
	want     []int64
	rejected bool
}

var decodeErrorCases = []decodeErrorCase{
	{onError: "stop", fails: true, want: []int64{0, 1}},
	{onError: "skip", want: []int64{0, 1, 3}},
	{onError: "dead_letter", want: []int64{0, 1, 3}, rejected: true},
}

// checkDecodeError checks a run of decodeErrorFlow: the ids written, the
// source's counters, the dead letter's record (wantDead, with an error
// containing wantErr; rejects is nil unless tc.rejected) and, under stop,
// the run's error.
func checkDecodeError(t *testing.T, tc decodeErrorCase, p *pipe, out, rejects *sink.Memory, wantDead map[string]any, wantErr string) {
	t.Helper()
	var err error
	if tc.fails {
		err = p.wait()
	} else {
		// The last good record follows the bad one: once it is written,
		// the bad one was settled.
		eventually(t, "the good records written", func() bool { return len(out.Records()) >= len(tc.want) })
		if rejects != nil {
			eventually(t, "the dead letter written", func() bool { return len(rejects.Records()) > 0 })
		}
		err = p.stop()
	}
	if got := ids(t, out.Fields()); !slices.Equal(got, tc.want) {
		t.Errorf("written ids %v, want %v", got, tc.want)
	}
	st, _ := p.ex.Stats().Node("in")
	wantSkipped, wantDeadLettered := int64(0), int64(0)
	switch tc.onError {
	case "skip":
		wantSkipped = 1
	case "dead_letter":
		wantDeadLettered = 1
	}
	if st.Errors != 1 || st.Skipped != wantSkipped || st.DeadLettered != wantDeadLettered {
		t.Errorf("source counters errors %d, skipped %d, dead-lettered %d; want 1, %d, %d",
			st.Errors, st.Skipped, st.DeadLettered, wantSkipped, wantDeadLettered)
	}
	if tc.fails {
		var se *flowruntime.StageError
		if !errors.As(err, &se) || !se.HasRecord || se.Stage != "in" || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Wait = %v, want the record error of stage in about %s", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if rejects == nil {
		return
	}
	dead := rejects.Fields()
	if len(dead) != 1 {
		t.Fatalf("dead letter holds %v, want one record", dead)
	}
	msg, _ := dead[0]["error"].(string)
	if !strings.Contains(msg, wantErr) {
		t.Errorf("dead letter's error %q, want one about %s", msg, wantErr)
	}
	delete(dead[0], "error")
	if diff := cmp.Diff(wantDead, dead[0]); diff != "" {
		t.Errorf("dead-lettered record (-want +got):\n%s", diff)
	}
}

// TestWebSocketSourceDecodeErrors: a frame that is not JSON, between good
// ones, follows on_error: stop writes the frames before it and fails the
// run with a record error; skip and dead_letter go on, counted, and
// dead_letter hands the frame on as {line, url, frame}.
func TestWebSocketSourceDecodeErrors(t *testing.T) {
	for _, tc := range decodeErrorCases {
		t.Run(tc.onError, func(t *testing.T) {
			f := newFeed(t, func(ctx context.Context, n int, c *websocket.Conn) {
				if n == 1 {
					for _, frame := range []string{`{"id": 0}`, `{"id": 1}`, `not json`, `{"id": 3}`} {
						if c.Write(ctx, websocket.MessageText, []byte(frame)) != nil {
							return
						}
					}
				}
				<-ctx.Done()
			})
			url := wsURL(f.Server)
			out, rejects := memory(), memory()
			sinks := map[string]flowruntime.Sink{"out": out, "rejects": rejects}
			p := startFlow(t, decodeErrorFlow(fmt.Sprintf(`kind = "websocket"
    url  = %q`, url), tc.onError), sinks)
			if !tc.rejected {
				rejects = nil
			}
			checkDecodeError(t, tc, p, out, rejects,
				map[string]any{"line": "not json", "url": url, "frame": int64(3), "stage": "in"},
				"frame 3 from "+url)
		})
	}
}

// TestSSESourceDecodeErrors: an event whose data is not JSON follows
// on_error: stop writes the events before it and fails the run with a
// record error; skip and dead_letter go on, counted, dead_letter hands the
// event on as {line, id, event}, and the event counts as read: the source
// reconnects with its id as Last-Event-ID.
func TestSSESourceDecodeErrors(t *testing.T) {
	for _, tc := range decodeErrorCases {
		t.Run(tc.onError, func(t *testing.T) {
			var mu sync.Mutex
			var lastIDs []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				lastIDs = append(lastIDs, r.Header.Get("Last-Event-ID"))
				n := len(lastIDs)
				mu.Unlock()
				w.Header().Set("Content-Type", "text/event-stream")
				if n == 1 {
					// The bad event is the connection's last: only
					// Last-Event-ID tells the next one where it is.
					fmt.Fprint(w, "id: 1\ndata: {\"id\": 0}\n\nid: 2\ndata: {\"id\": 1}\n\nid: 3\nevent: tick\ndata: not json\n\n")
					return
				}
				fmt.Fprint(w, "id: 4\ndata: {\"id\": 3}\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			t.Cleanup(func() {
				srv.CloseClientConnections()
				srv.Close()
			})
			out, rejects := memory(), memory()
			sinks := map[string]flowruntime.Sink{"out": out, "rejects": rejects}
			p := startFlow(t, decodeErrorFlow(fmt.Sprintf(`kind = "sse"
    url  = %q
    reconnect_initial = "10ms"`, srv.URL), tc.onError), sinks)
			if !tc.rejected {
				rejects = nil
			}
			checkDecodeError(t, tc, p, out, rejects,
				map[string]any{"line": "not json", "id": "3", "event": "tick", "stage": "in"},
				`event "3" from `+srv.URL)
			mu.Lock()
			defer mu.Unlock()
			want := []string{"", "3"}
			if tc.fails {
				want = want[:1]
			}
			if !slices.Equal(lastIDs, want) {
				t.Errorf("connections sent Last-Event-ID %q, want %q", lastIDs, want)
			}
		})
	}
}
