package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

var httpSourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "http",
		Doc: "Runs an ingest server: each POST carries one JSON object, a JSON array of objects or NDJSON; it is admitted only when the pipeline takes its records within the hold time (429 with Retry-After otherwise), and GET /ready answers 200 while the server runs. When it stops it logs the records accepted and rejected and the answers given by status (400, 405, 413, 429, 503).",
		Options: append(serverOptions("/ingest"),
			planner.OptionSpec{Name: "max_body_bytes", Type: planner.Int, Default: int64(4 << 20),
				Doc: "The largest request body accepted, in bytes; a larger one is answered 413."},
			planner.OptionSpec{Name: "hold", Type: planner.Duration, Default: time.Second,
				Doc: "How long a request waits for the pipeline to take its records before it is answered 429 Too Many Requests with Retry-After."},
			planner.OptionSpec{Name: "respond", Type: planner.Enum, Enum: []string{"finished", "accepted"}, Default: "finished",
				Doc: "When a request is answered 200: finished once every record of it is written by every sink (filtered out or dead-lettered), accepted once the pipeline has taken its records."},
		),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkListen(&p, o)
			checkPath(&p, o)
			if o.String("path") == "/ready" {
				p.Add("path", "the path /ready is the readiness endpoint: choose another")
			}
			p.Min(o, "max_body_bytes", 2)
			p.MinDuration(o, "hold", 0, false)
			p.MinDuration(o, "shutdown_timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &HTTPSource{
			server:   newServer(st.Options, env.Logger),
			stage:    st.Name,
			path:     st.Options.String("path"),
			maxBody:  st.Options.Int("max_body_bytes"),
			hold:     st.Options.Duration("hold"),
			finished: st.Options.String("respond") == "finished",
			clock:    env.Clock,
			log:      env.Logger,
		}
		return &flowruntime.Node{Source: s}, nil
	},
}

// HTTPSource is the http source: an ingest server. Handlers decode
// requests concurrently; Run hands them to the pipeline one at a time, each
// as one acknowledgement unit. A request waits at most the hold time for
// Run to take it, so records waiting outside the pipeline are bounded by
// the open requests, and the pipeline's edges bound the rest.
type HTTPSource struct {
	server
	stage    string
	path     string
	maxBody  int64
	hold     time.Duration
	finished bool
	clock    flowruntime.Clock
	log      hclog.Logger

	admit chan *ingest
	// stopping is closed when Run stops taking requests; abort when the
	// shutdown timeout passed and waiting handlers must answer at once.
	stopping, abort chan struct{}
	decoders        sync.Pool
	position        atomic.Int64

	accepted, rejected atomic.Int64
	// answers counts the ingest requests answered, by status (the index
	// in ingestStatuses); gone counts those whose client left first.
	answers [len(ingestStatuses)]atomic.Int64
	gone    atomic.Int64
}

// ingestStatuses are the statuses the ingest path answers with.
var ingestStatuses = [...]int{
	http.StatusOK,
	http.StatusBadRequest,
	http.StatusMethodNotAllowed,
	http.StatusRequestEntityTooLarge,
	http.StatusTooManyRequests,
	http.StatusServiceUnavailable,
}

// ingest is one admitted request on its way through Run.
type ingest struct {
	recs []flowruntime.Record
	// emitted receives Emit's result; finished is closed by the done
	// callback.
	emitted  chan error
	finished chan struct{}
}

// IngestStats counts what the ingest server did.
type IngestStats struct {
	// Accepted counts records of requests answered 200; Rejected counts
	// records of requests answered 429 or 503, or whose client left while
	// they waited for the pipeline.
	Accepted, Rejected int64
	// Answers counts the ingest requests answered, by status: 200, 400
	// (a body that is not JSON objects or could not be read), 405, 413
	// (larger than max_body_bytes), 429 (the pipeline was busy for the
	// hold time) and 503 (the server was stopping). A status never
	// answered is absent.
	Answers map[int]int64
	// Gone counts the requests whose client left before it was answered.
	Gone int64
}

// Stats returns the ingest counters.
func (s *HTTPSource) Stats() IngestStats {
	st := IngestStats{Accepted: s.accepted.Load(), Rejected: s.rejected.Load(),
		Answers: map[int]int64{}, Gone: s.gone.Load()}
	for i, status := range ingestStatuses {
		if n := s.answers[i].Load(); n > 0 {
			st.Answers[status] = n
		}
	}
	return st
}

// Counts returns the ingest counters for the stage's statistics: the
// records accepted and rejected (always), then each status answered and the
// clients gone, when not zero.
func (s *HTTPSource) Counts() []flowruntime.Count {
	st := s.Stats()
	cs := []flowruntime.Count{{Name: "accepted", Value: st.Accepted}, {Name: "rejected", Value: st.Rejected}}
	for _, status := range ingestStatuses {
		if n := st.Answers[status]; n > 0 {
			cs = append(cs, flowruntime.Count{Name: "answered_" + strconv.Itoa(status), Value: n})
		}
	}
	if st.Gone > 0 {
		cs = append(cs, flowruntime.Count{Name: "client_gone", Value: st.Gone})
	}
	return cs
}

// answer writes a JSON answer to an ingest request and counts it.
func (s *HTTPSource) answer(w http.ResponseWriter, status int, body string) {
	for i, st := range ingestStatuses {
		if st == status {
			s.answers[i].Add(1)
		}
	}
	answer(w, status, body)
}

// Run serves until ctx ends, then stops accepting, answers what is open
// (waiting up to the shutdown timeout) and returns.
func (s *HTTPSource) Run(ctx context.Context, out flowruntime.Emitter) error {
	s.admit = make(chan *ingest)
	s.stopping = make(chan struct{})
	s.abort = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc(s.path, s.serveIngest)
	mux.HandleFunc("/ready", s.serveReady)
	if err := s.start(mux); err != nil {
		return err
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case in := <-s.admit:
			var done func()
			if s.finished {
				done = func() { close(in.finished) }
			}
			err := out.Emit(ctx, in.recs, done)
			in.emitted <- err
			if err != nil {
				if ctx.Err() == nil {
					runErr = err
				}
				break loop
			}
		}
	}
	close(s.stopping)
	err := s.stop(func() { close(s.abort) })
	var args []any
	for _, c := range s.Counts() {
		args = append(args, c.Name, c.Value)
	}
	s.log.Info("ingest server stopped", args...)
	if runErr != nil {
		return runErr
	}
	return err
}

func (s *HTTPSource) serveReady(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.stopping:
		http.Error(w, "stopping", http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ready\n")
	}
}

// answer writes a JSON answer.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func errorBody(msg string) string {
	return `{"error":` + string(codec.AppendString(nil, msg)) + "}\n"
}

func (s *HTTPSource) serveIngest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		s.answer(w, http.StatusMethodNotAllowed, errorBody("use POST"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.answer(w, http.StatusRequestEntityTooLarge, errorBody(fmt.Sprintf("the body is larger than %d bytes", s.maxBody)))
			return
		}
		s.answer(w, http.StatusBadRequest, errorBody("reading the body: "+err.Error()))
		return
	}
	dec, _ := s.decoders.Get().(*codec.Decoder)
	if dec == nil {
		dec = new(codec.Decoder)
	}
	fields, err := decodeBody(dec, body)
	s.decoders.Put(dec)
	if err != nil {
		s.answer(w, http.StatusBadRequest, errorBody(err.Error()))
		return
	}
	if len(fields) == 0 {
		s.answer(w, http.StatusOK, `{"accepted":0}`+"\n")
		return
	}
	now := s.clock.Now()
	first := s.position.Add(int64(len(fields))) - int64(len(fields))
	recs := make([]flowruntime.Record, len(fields))
	for i, f := range fields {
		recs[i] = flowruntime.Record{Fields: f,
			Meta: flowruntime.Meta{Source: s.stage, Position: first + int64(i), Time: now}}
	}
	in := &ingest{recs: recs, emitted: make(chan error, 1)}
	if s.finished {
		in.finished = make(chan struct{})
	}
	n := int64(len(recs))
	reject := func(status int, msg string) {
		s.rejected.Add(n)
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((s.hold+time.Second-1)/time.Second))))
		}
		s.answer(w, status, errorBody(msg))
	}
	admitted := false
	select {
	case s.admit <- in:
		admitted = true
	default:
	}
	if !admitted {
		select {
		case s.admit <- in:
		case <-s.clock.After(s.hold):
			reject(http.StatusTooManyRequests, "the pipeline is busy: retry later")
			return
		case <-s.stopping:
			reject(http.StatusServiceUnavailable, "the server is stopping")
			return
		case <-r.Context().Done():
			s.rejected.Add(n)
			s.gone.Add(1)
			return
		}
	}
	if err := <-in.emitted; err != nil {
		// Run was stopped while the records went in: some of them may
		// be in the pipeline, but they will not be acknowledged.
		reject(http.StatusServiceUnavailable, "the server is stopping")
		return
	}
	if s.finished {
		select {
		case <-in.finished:
		case <-s.abort:
			reject(http.StatusServiceUnavailable, "the server stopped before the records were finished")
			return
		case <-r.Context().Done():
			// The client left; its records go on.
			s.accepted.Add(n)
			s.gone.Add(1)
			return
		}
	}
	s.accepted.Add(n)
	s.answer(w, http.StatusOK, `{"accepted":`+strconv.FormatInt(n, 10)+"}\n")
}

// decodeBody decodes a request body: one JSON object, a JSON array of
// objects, or NDJSON (one object per line; blank lines are skipped).
func decodeBody(dec *codec.Decoder, body []byte) ([]map[string]any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '[' {
		v, err := dec.Decode(trimmed)
		if err != nil {
			return nil, err
		}
		list, _ := v.([]any)
		out := make([]map[string]any, 0, len(list))
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("element %d of the array is not a JSON object", i)
			}
			out = append(out, m)
		}
		return out, nil
	}
	if m, err := dec.DecodeObject(trimmed); err == nil {
		return []map[string]any{m}, nil
	} else if bytes.IndexByte(trimmed, '\n') < 0 {
		return nil, err
	}
	var out []map[string]any
	for line, rest := 1, trimmed; len(rest) > 0; line++ {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		m, err := dec.DecodeObject(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, m)
	}
	return out, nil
}
