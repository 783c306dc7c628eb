package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var wsSourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "websocket",
		Doc: "Connects to a websocket server and reads its frames as records, reconnecting with exponential backoff and jitter; it reads only while the pipeline has credit, so a slow pipeline slows the server through TCP. A frame it cannot decode follows on_error as {line (the payload), url, frame (its number on the connection, from 1)}: skipped or dead-lettered, reading goes on; under stop (the default) every frame before it is written, then the run fails.",
		Options: append([]planner.OptionSpec{
			{Name: "url", Type: planner.String, Required: true,
				Doc: "The server's URL (ws:// or wss://)."},
			headerOption,
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "How text frames are decoded: json takes a JSON object (or an array of objects) per frame, lines gives {line: \"...\"} per line of the frame. Binary frames are always decoded as JSON."},
			{Name: "max_message_bytes", Type: planner.Int, Default: int64(1 << 20),
				Doc: "The largest frame accepted, in bytes; a larger one closes the connection, which is then reopened."},
		}, reconnectOptions()...),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkURL(&p, o, "ws", "wss")
			checkHeaders(&p, o)
			p.Min(o, "max_message_bytes", 1)
			checkReconnect(&p, o)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &WebSocketSource{
			stage:     st.Name,
			url:       st.Options.String("url"),
			headers:   headers(st.Options),
			lines:     st.Options.String("codec") == "lines",
			maxMsg:    st.Options.Int("max_message_bytes"),
			reconnect: newReconnect(st.Options),
			clock:     env.Clock,
			log:       env.Logger,
		}
		return &flowruntime.Node{Source: s}, nil
	},
}

// readAhead is how many frames the websocket source reads ahead of the
// pipeline at most.
const readAhead = 128

// WebSocketSource is the websocket source. One goroutine reads frames and
// decodes them, at most readAhead frames ahead of the pipeline; Run hands what is
// read to the pipeline in batches. While the pipeline has no credit the
// reader stops reading, the connection's buffers fill and TCP holds the
// server back. Records carry no acknowledgement: the protocol has none.
type WebSocketSource struct {
	stage     string
	url       string
	headers   http.Header
	lines     bool
	maxMsg    int64
	reconnect reconnect
	clock     flowruntime.Clock
	log       hclog.Logger

	position    int64
	connections int64
}

// Connections returns how many times the source connected; read it only
// after Run returned.
func (s *WebSocketSource) Connections() int64 { return s.connections }

// Run reads until ctx ends, reconnecting whenever the connection fails or
// the server closes it.
func (s *WebSocketSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	return s.reconnect.run(ctx, s.clock, func(ctx context.Context) (bool, error) {
		return s.session(ctx, out)
	}, func(err error, wait time.Duration) {
		s.log.Warn("websocket connection lost, reconnecting", "url", s.url, "error", err, "wait", wait)
	})
}

// read is what the reader goroutine hands to Run: records, a frame it
// could not decode, or the error that ended the connection.
type read struct {
	recs []flowruntime.Record
	bad  *badFrame
	err  error
}

// badFrame is a frame the source cannot decode: the record handed to the
// stage's on_error policy ({line, url, frame}: the frame's payload, the
// server and the frame's number on the connection, from 1) and its error.
type badFrame struct {
	rec flowruntime.Record
	err error
}

// session runs one connection. up reports whether it was established.
func (s *WebSocketSource) session(ctx context.Context, out flowruntime.Emitter) (up bool, err error) {
	conn, resp, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPHeader: s.headers})
	if err != nil {
		if resp != nil {
			return false, fmt.Errorf("dial %s: %s: %w", s.url, resp.Status, err)
		}
		return false, fmt.Errorf("dial %s: %w", s.url, err)
	}
	defer conn.CloseNow()
	s.connections++
	s.log.Info("websocket connected", "url", s.url)
	conn.SetReadLimit(s.maxMsg)

	rctx, cancel := context.WithCancel(ctx)
	reads := make(chan read, readAhead)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s.readLoop(rctx, conn, reads)
	}()
	defer func() {
		cancel()
		<-finished
	}()
	var batch []flowruntime.Record
	for {
		var r read
		select {
		case r = <-reads:
		case <-ctx.Done():
			conn.Close(websocket.StatusGoingAway, "stopping")
			return true, errStopped
		}
		batch = append(batch, r.recs...)
		// Take whatever else is read already, up to a batch or a frame
		// that cannot be decoded.
	more:
		for len(batch) < maxBatch && r.err == nil && r.bad == nil {
			select {
			case r = <-reads:
				batch = append(batch, r.recs...)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			if err := out.Emit(ctx, batch, nil); err != nil {
				if ctx.Err() != nil {
					return true, errStopped
				}
				return true, &fatalError{err}
			}
			batch = nil
		}
		if r.bad != nil {
			// The frames before it are emitted: under stop they are
			// written before the run fails.
			if err := flowruntime.Reject(ctx, out, r.bad.rec, r.bad.err); err != nil {
				if ctx.Err() != nil {
					return true, errStopped
				}
				return true, &fatalError{err}
			}
		}
		if r.err != nil {
			return true, r.err
		}
	}
}

// readLoop reads frames until the connection fails or ctx ends, decoding
// each into records.
func (s *WebSocketSource) readLoop(ctx context.Context, conn *websocket.Conn, reads chan<- read) {
	var dec codec.Decoder
	// buf is reused: the decoder copies what it keeps.
	var buf bytes.Buffer
	// frame counts the connection's frames, from 1.
	var frame int64
	for {
		typ, r, err := conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		data := buf.Bytes()
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				err = fmt.Errorf("server closed the connection (%d)", st)
			}
			select {
			case reads <- read{err: err}:
			case <-ctx.Done():
			}
			return
		}
		recs, err := s.decode(&dec, typ, data)
		frame++
		var next read
		switch {
		case err != nil:
			next.bad = &badFrame{
				rec: flowruntime.Record{Fields: map[string]any{"line": string(data), "url": s.url, "frame": frame},
					Meta: flowruntime.Meta{Source: s.stage, Position: s.position, Time: s.clock.Now()}},
				err: fmt.Errorf("frame %d from %s: %w", frame, s.url, err),
			}
		case len(recs) == 0:
			continue
		default:
			next.recs = recs
		}
		select {
		case reads <- next:
		case <-ctx.Done():
			return
		}
	}
}

func (s *WebSocketSource) decode(dec *codec.Decoder, typ websocket.MessageType, data []byte) ([]flowruntime.Record, error) {
	now := s.clock.Now()
	var fields []map[string]any
	if typ == websocket.MessageText && s.lines {
		text := strings.TrimSuffix(string(data), "\n")
		for _, l := range strings.Split(text, "\n") {
			fields = append(fields, map[string]any{"line": strings.TrimSuffix(l, "\r")})
		}
	} else {
		var err error
		if fields, err = decodeBody(dec, data); err != nil {
			return nil, err
		}
	}
	recs := make([]flowruntime.Record, len(fields))
	for i, f := range fields {
		recs[i] = flowruntime.Record{Fields: f,
			Meta: flowruntime.Meta{Source: s.stage, Position: s.position, Time: now}}
		s.position++
	}
	return recs, nil
}
