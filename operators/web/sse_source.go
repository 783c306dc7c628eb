package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sseSourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "sse",
		Doc: "Reads a Server-Sent Events stream (text/event-stream) as records, reconnecting with exponential backoff and jitter and sending Last-Event-ID so the server can resume; it reads only while the pipeline has credit. An event whose data it cannot decode follows on_error as {line (the data), id, event}: skipped or dead-lettered, it counts as read for Last-Event-ID; under stop (the default) every event before it is written, then the run fails naming the event's id.",
		Options: append([]planner.OptionSpec{
			{Name: "url", Type: planner.String, Required: true,
				Doc: "The stream's URL (http:// or https://)."},
			headerOption,
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "event"}, Default: "json",
				Doc: "How an event becomes a record: json decodes its data as a JSON object; event gives {id, event, data} with data as text."},
			{Name: "max_line_bytes", Type: planner.Int, Default: int64(1 << 20),
				Doc: "The longest line of the stream accepted, in bytes; a longer one ends the connection, which is then reopened."},
		}, reconnectOptions()...),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkURL(&p, o, "http", "https")
			checkHeaders(&p, o)
			p.Min(o, "max_line_bytes", 1)
			checkReconnect(&p, o)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &SSESource{
			stage:     st.Name,
			url:       st.Options.String("url"),
			headers:   headers(st.Options),
			asEvent:   st.Options.String("codec") == "event",
			maxLine:   int(st.Options.Int("max_line_bytes")),
			reconnect: newReconnect(st.Options),
			clock:     env.Clock,
			log:       env.Logger,
			client:    &http.Client{Transport: transport},
		}
		return &flowruntime.Node{Source: s}, nil
	},
}

// SSESource is the sse source: an event-stream client. It parses the
// stream only while the pipeline has credit (a batch is emitted when full
// or before a read that may wait), remembers the last event id and sends it
// as Last-Event-ID when it reconnects. A 204 No Content answer ends the
// source, as it tells browsers to stop reconnecting.
type SSESource struct {
	stage     string
	url       string
	headers   http.Header
	asEvent   bool
	maxLine   int
	reconnect reconnect
	clock     flowruntime.Clock
	log       hclog.Logger
	client    *http.Client

	lastID   string
	position int64
	dec      codec.Decoder
}

// Run reads until ctx ends, or the server answers 204.
func (s *SSESource) Run(ctx context.Context, out flowruntime.Emitter) error {
	defer s.client.CloseIdleConnections()
	return s.reconnect.run(ctx, s.clock, func(ctx context.Context) (bool, error) {
		up, err := s.session(ctx, out)
		if errors.Is(err, errNoContent) && ctx.Err() == nil {
			s.log.Info("server ended the stream with 204 No Content", "url", s.url)
			return up, errStopped
		}
		return up, err
	}, func(err error, wait time.Duration) {
		s.log.Warn("event stream lost, reconnecting", "url", s.url, "error", err, "wait", wait,
			"last_event_id", s.lastID)
	})
}

var errNoContent = errors.New("204 No Content")

// sseEvent is the event being parsed.
type sseEvent struct {
	id, name string
	data     []byte
	hasData  bool
}

func (s *SSESource) session(ctx context.Context, out flowruntime.Emitter) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return false, &fatalError{fmt.Errorf("request: %w", err)}
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNoContent:
		return false, errNoContent
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		return false, fmt.Errorf("GET %s: the answer is %q, not text/event-stream", s.url, resp.Header.Get("Content-Type"))
	}
	s.log.Info("event stream connected", "url", s.url, "last_event_id", s.lastID)
	lines := codec.NewLineReader(resp.Body, 0, s.maxLine)
	var ev sseEvent
	var batch []flowruntime.Record
	// The batch's events are counted as read (lastID) only once emitted.
	var batchID string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		b := batch
		batch = nil
		if err := out.Emit(ctx, b, nil); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return &fatalError{err}
		}
		if batchID != "" {
			s.lastID = batchID
		}
		return nil
	}
	for {
		if len(batch) >= maxBatch || (len(batch) > 0 && !lines.Buffered()) {
			if err := flush(); err != nil {
				return true, err
			}
		}
		line, _, err := lines.Next()
		if err != nil {
			if ferr := flush(); ferr != nil {
				return true, ferr
			}
			if errors.Is(err, io.EOF) {
				return true, errors.New("the server ended the stream")
			}
			if ctx.Err() != nil {
				return true, errStopped
			}
			return true, err
		}
		if len(line) == 0 {
			rec, ok, err := s.dispatch(&ev)
			var bad *badEvent
			if errors.As(err, &bad) {
				// The events before it are handed on first: under stop
				// they are written before the run fails.
				if err := flush(); err != nil {
					return true, err
				}
				if err := s.reject(ctx, out, bad); err != nil {
					return true, err
				}
				// Skipped or dead-lettered: the stream is past it.
				if batchID = s.pendingID(ev.id, batchID); batchID != "" {
					s.lastID = batchID
				}
				ev = sseEvent{id: ev.id}
				continue
			}
			if err != nil {
				return true, err
			}
			if ok {
				batch = append(batch, rec)
			}
			if ev.id != "" || ok {
				batchID = s.pendingID(ev.id, batchID)
			}
			ev = sseEvent{id: ev.id}
			continue
		}
		if line[0] == ':' {
			continue // a comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			ev.name = string(value)
		case "data":
			if ev.hasData {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, value...)
			ev.hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id = string(value)
			}
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms > 0 {
				s.reconnect.initial = time.Duration(ms) * time.Millisecond
				s.reconnect.max = max(s.reconnect.max, s.reconnect.initial)
			}
		}
	}
}

// pendingID returns the id the stream is at after an event with id.
func (s *SSESource) pendingID(id, prev string) string {
	if id != "" {
		return id
	}
	return prev
}

// dispatch turns a complete event into a record; an event without data is
// not dispatched, as in browsers. An event whose data cannot be decoded
// gives a *badEvent error.
func (s *SSESource) dispatch(ev *sseEvent) (flowruntime.Record, bool, error) {
	if !ev.hasData {
		return flowruntime.Record{}, false, nil
	}
	name := ev.name
	if name == "" {
		name = "message"
	}
	var fields map[string]any
	if s.asEvent {
		fields = map[string]any{"id": ev.id, "event": name, "data": string(ev.data)}
	} else {
		m, err := s.dec.DecodeObject(ev.data)
		if err != nil {
			fields = map[string]any{"line": string(ev.data), "id": ev.id, "event": name}
			rec := flowruntime.Record{Fields: fields,
				Meta: flowruntime.Meta{Source: s.stage, Position: s.position, Time: s.clock.Now()}}
			s.position++
			return flowruntime.Record{}, false, &badEvent{rec, fmt.Errorf("event %q from %s: %w", ev.id, s.url, err)}
		}
		fields = m
	}
	rec := flowruntime.Record{Fields: fields,
		Meta: flowruntime.Meta{Source: s.stage, Position: s.position, Time: s.clock.Now()}}
	s.position++
	return rec, true, nil
}

// badEvent is an event whose data the source cannot decode: the record
// handed to the stage's on_error policy ({line, id, event}, line being the
// data) and its error.
type badEvent struct {
	rec flowruntime.Record
	err error
}

func (b *badEvent) Error() string { return b.err.Error() }

// reject hands bad to the stage's on_error policy (runtime.Reject). It
// returns nil when the policy lets the source go on, errStopped when ctx
// ended, and otherwise the error that fails the run, as a fatalError.
func (s *SSESource) reject(ctx context.Context, out flowruntime.Emitter, bad *badEvent) error {
	if err := flowruntime.Reject(ctx, out, bad.rec, bad.err); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return &fatalError{err}
	}
	return nil
}
