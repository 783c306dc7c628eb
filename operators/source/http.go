package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var httpKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "http",
		Doc: "Serves an HTTP endpoint that takes records in POST bodies, holding each request while the pipeline is full.",
		Options: []planner.OptionSpec{
			{Name: "address", Type: planner.String, Required: true,
				Doc: "The host:port to listen on, e.g. \":8080\" or \"127.0.0.1:9000\"."},
			{Name: "path", Type: planner.String, Default: "/",
				Doc: "The URL path that takes records; other paths answer 404."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "json takes one object, an array of objects or one object per line; lines makes each line a record {line: \"...\"}."},
			{Name: "wait", Type: planner.Bool, Default: true,
				Doc: "Answer only once the request's records are finished (written by every sink), so a 200 means delivered; false answers once they are accepted."},
			{Name: "max_wait", Type: planner.Duration, Default: 30 * time.Second,
				Doc: "The longest a request waits for room in the pipeline before it is answered 429 Too Many Requests; 0 waits as long as the client does."},
			{Name: "max_body_bytes", Type: planner.Int, Default: int64(10 << 20),
				Doc: "The largest request body accepted; a larger one is answered 413."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			if _, _, err := net.SplitHostPort(o.String("address")); err != nil {
				p.Add("address", "the address must be host:port, e.g. \":8080\", not %q", o.String("address"))
			}
			if path := o.String("path"); len(path) == 0 || path[0] != '/' {
				p.Add("path", "the path must start with /, not %q", path)
			}
			p.MinDuration(o, "max_wait", 0, false)
			p.Min(o, "max_body_bytes", 1)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		h := &HTTP{
			stage:   st.Name,
			address: st.Options.String("address"),
			path:    st.Options.String("path"),
			lines:   st.Options.String("codec") == "lines",
			wait:    st.Options.Bool("wait"),
			maxWait: st.Options.Duration("max_wait"),
			maxBody: st.Options.Int("max_body_bytes"),
			clock:   env.Clock,
			log:     env.Logger,
			ready:   make(chan struct{}),
		}
		h.decoders.New = func() any { return new(codec.Decoder) }
		return &flowruntime.Node{Source: h}, nil
	},
}

// HTTP is the http source: an ingest endpoint. Each request's records are
// emitted as one acknowledgement unit; while the pipeline has no room the
// request is held (backpressure reaches the client), and past max_wait it is
// answered 429 with Retry-After. A request cut short may have had part of its
// records emitted: a client that retries gets at-least-once delivery.
type HTTP struct {
	stage    string
	address  string
	path     string
	lines    bool
	wait     bool
	maxWait  time.Duration
	maxBody  int64
	clock    flowruntime.Clock
	log      hclog.Logger
	seq      atomic.Int64
	decoders sync.Pool

	ready chan struct{}
	addr  atomic.Value // string
}

// Ready is closed once the source listens (Addr is then set).
func (h *HTTP) Ready() <-chan struct{} { return h.ready }

// Addr is the address the source listens on, once Ready.
func (h *HTTP) Addr() string {
	s, _ := h.addr.Load().(string)
	return s
}

// Run serves until ctx ends, then stops taking requests and returns nil.
func (h *HTTP) Run(ctx context.Context, out flowruntime.Emitter) error {
	ln, err := net.Listen("tcp", h.address)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	h.addr.Store(ln.Addr().String())
	close(h.ready)
	h.log.Info("http source listening", "address", ln.Addr().String(), "path", h.path)
	srv := &http.Server{
		Handler:           h.handler(ctx, out),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

func (h *HTTP) handler(ctx context.Context, out flowruntime.Emitter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != h.path {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "send records with POST", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("body larger than %d bytes", h.maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		recs, err := h.decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status, msg := h.emit(ctx, r.Context(), out, recs)
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		if status != http.StatusOK {
			http.Error(w, msg, status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"accepted":`+strconv.Itoa(len(recs))+"}\n")
	})
}

// emit hands recs on and, with wait, waits until they are finished; it
// returns the HTTP status to answer.
func (h *HTTP) emit(run, req context.Context, out flowruntime.Emitter, recs []flowruntime.Record) (int, string) {
	if len(recs) == 0 {
		return http.StatusOK, ""
	}
	ctx, cancel := context.WithCancel(req)
	defer cancel()
	if h.maxWait > 0 {
		ctx, cancel = context.WithTimeout(ctx, h.maxWait)
		defer cancel()
	}
	var finished chan struct{}
	var done func()
	if h.wait {
		finished = make(chan struct{})
		done = func() { close(finished) }
	}
	if err := out.Emit(ctx, recs, done); err != nil {
		switch {
		case run.Err() != nil:
			return http.StatusServiceUnavailable, "the pipeline is stopping"
		case req.Err() != nil:
			return 499, "client went away" // no one reads the answer
		case errors.Is(err, context.DeadlineExceeded):
			return http.StatusTooManyRequests, "the pipeline is full; retry later"
		}
		return http.StatusServiceUnavailable, err.Error()
	}
	if finished == nil {
		return http.StatusOK, ""
	}
	select {
	case <-finished:
		return http.StatusOK, ""
	case <-req.Done():
		return 499, "client went away"
	case <-run.Done():
		return http.StatusServiceUnavailable, "the pipeline is stopping"
	}
}

// decode turns a body into records.
func (h *HTTP) decode(body []byte) ([]flowruntime.Record, error) {
	now := h.clock.Now()
	var fields []map[string]any
	trimmed := bytes.TrimSpace(body)
	switch {
	case h.lines:
		for len(body) > 0 {
			line, rest, _ := bytes.Cut(body, []byte{'\n'})
			body = rest
			fields = append(fields, map[string]any{"line": string(bytes.TrimSuffix(line, []byte{'\r'}))})
		}
	case len(trimmed) == 0:
	default:
		dec := h.decoders.Get().(*codec.Decoder)
		defer h.decoders.Put(dec)
		var err error
		if fields, err = decodeJSONBody(dec, trimmed); err != nil {
			return nil, err
		}
	}
	recs := make([]flowruntime.Record, len(fields))
	first := h.seq.Add(int64(len(fields))) - int64(len(fields))
	for i, f := range fields {
		recs[i] = flowruntime.Record{Fields: f, Meta: flowruntime.Meta{Source: h.stage, Position: first + int64(i), Time: now}}
	}
	return recs, nil
}

// decodeJSONBody reads an array of objects, one object, or one object per
// line.
func decodeJSONBody(dec *codec.Decoder, body []byte) ([]map[string]any, error) {
	if body[0] == '[' {
		v, err := dec.Decode(body)
		if err != nil {
			return nil, err
		}
		list := v.([]any)
		out := make([]map[string]any, len(list))
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("element %d of the array is not an object", i)
			}
			out[i] = m
		}
		return out, nil
	}
	if m, err := dec.DecodeObject(body); err == nil {
		return []map[string]any{m}, nil
	}
	var out []map[string]any
	for n := 1; len(body) > 0; n++ {
		line, rest, _ := bytes.Cut(body, []byte{'\n'})
		body = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := dec.DecodeObject(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, nil
}
