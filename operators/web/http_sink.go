package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/operators/internal/retryafter"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var httpSinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "http",
		Doc: "POSTs records in batches (a JSON array, or NDJSON) to a URL. 408, 429 and 5xx answers, connection errors and timeouts are retried by the stage's on_error policy (retry by default), waiting at least as long as a Retry-After asks; other non-2xx answers are permanent: the batch is split to find the records the target refuses, which are dead-lettered, skipped or fail the run.",
		Options: []planner.OptionSpec{
			{Name: "url", Type: planner.String, Required: true,
				Doc: "The URL requests are sent to (http:// or https://)."},
			{Name: "method", Type: planner.Enum, Enum: []string{"POST", "PUT", "PATCH"}, Default: "POST",
				Doc: "The request method."},
			{Name: "batch_size", Type: planner.Int, Default: int64(100),
				Doc: "The most records in one request; the pipeline's batches are split to fit."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "ndjson"}, Default: "json",
				Doc: "The body: json sends a JSON array of records (application/json), ndjson one record per line (application/x-ndjson)."},
			headerOption,
			{Name: "timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "How long one request may take, answer included; a timeout is retried."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkURL(&p, o, "http", "https")
			checkHeaders(&p, o)
			p.Min(o, "batch_size", 1)
			p.MinDuration(o, "timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &HTTPSink{
			url:       st.Options.String("url"),
			method:    st.Options.String("method"),
			batchSize: int(st.Options.Int("batch_size")),
			ndjson:    st.Options.String("codec") == "ndjson",
			headers:   headers(st.Options),
			client:    &http.Client{Transport: transport, Timeout: st.Options.Duration("timeout")},
			clock:     env.Clock,
			log:       env.Logger,
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// transport is shared by the http sinks of the process, so connections
// are reused across stages and pipelines.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}()

// HTTPSink is the http sink. Write sends its records in requests of at
// most batch_size records, in order, and returns only when every request
// was answered 2xx, so a record counts as finished only once the target
// took it. When a request fails, the records of the batch the target took
// before it are remembered: the runtime's retry of the same batch, or of
// the halves it splits a batch into after a permanent error, resends only
// the rest, so no retry duplicates what the target acknowledged.
//
// Errors are classified for the runtime's policy: a 408, 429 or 5xx answer
// and a refused, reset or timed-out connection are transient; such an
// answer with Retry-After (seconds or an HTTP-date, as 429 and 503 send)
// asks the runtime to wait that long (onerror.RetryAfter); every other
// answer but 2xx is permanent. The sink logs no retries: the
// runtime does.
type HTTPSink struct {
	url       string
	method    string
	batchSize int
	ndjson    bool
	headers   http.Header
	client    *http.Client
	clock     flowruntime.Clock
	log       hclog.Logger
	enc       codec.Encoder
	buf       []byte

	// acked holds the records, in order, that the target took from the
	// last batch whose Write failed part way.
	acked []slot
}

// slot identifies a record handed to Write: where it is and which object
// its fields are, so that a later record in recycled memory is not taken
// for it. Holding the fields pointer keeps that object alive, so an equal
// slot is the same record.
type slot struct {
	rec    *flowruntime.Record
	fields unsafe.Pointer
}

func slotOf(r *flowruntime.Record) slot {
	return slot{rec: r, fields: reflect.ValueOf(r.Fields).UnsafePointer()}
}

// skipAcked returns how many leading records of recs the target already
// took, and forgets what it took when recs is another batch.
func (s *HTTPSink) skipAcked(recs []flowruntime.Record) int {
	first := slotOf(&recs[0])
	j := slices.Index(s.acked, first)
	if j < 0 {
		clear(s.acked)
		s.acked = s.acked[:0]
		return 0
	}
	n := 0
	for n < len(recs) && j+n < len(s.acked) && s.acked[j+n] == slotOf(&recs[n]) {
		n++
	}
	return n
}

// StatusError is a non-2xx answer of the target.
type StatusError struct {
	Method, URL string
	Status      int
	// Body is the start of the answer's body.
	Body string
	// RetryAfter is the wait the answer's Retry-After asked for, 0 when it
	// had none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// retryable reports whether an answer with status may succeed later.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// Write sends recs.
func (s *HTTPSink) Write(ctx context.Context, recs []flowruntime.Record) error {
	if len(recs) == 0 {
		return nil
	}
	start := s.skipAcked(recs)
	for i := start; i < len(recs); i += s.batchSize {
		end := min(i+s.batchSize, len(recs))
		if err := s.post(ctx, recs[i:end]); err != nil {
			clear(s.acked)
			s.acked = s.acked[:0]
			for k := range i {
				s.acked = append(s.acked, slotOf(&recs[k]))
			}
			return err
		}
	}
	return nil
}

func (s *HTTPSink) post(ctx context.Context, recs []flowruntime.Record) error {
	buf := s.buf[:0]
	if !s.ndjson {
		buf = append(buf, '[')
	}
	for i := range recs {
		if i > 0 && !s.ndjson {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = s.enc.AppendObject(buf, recs[i].Fields); err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		if s.ndjson {
			buf = append(buf, '\n')
		}
	}
	if !s.ndjson {
		buf = append(buf, ']')
	}
	s.buf = buf
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, bytes.NewReader(buf))
	if err != nil {
		return onerror.Permanent(fmt.Errorf("request: %w", err))
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		if s.ndjson {
			req.Header.Set("Content-Type", "application/x-ndjson")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Connection errors and timeouts may pass later.
		return fmt.Errorf("%s %s: %w", s.method, s.url, err)
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	serr := &StatusError{Method: s.method, URL: s.url, Status: resp.StatusCode,
		Body: strings.TrimSpace(string(excerpt[:min(len(excerpt), 200)]))}
	if !retryable(resp.StatusCode) {
		return onerror.Permanent(serr)
	}
	if h := resp.Header.Get("Retry-After"); h != "" {
		after, ok := retryafter.Parse(h, s.clock.Now())
		if !ok {
			s.log.Debug("ignoring a Retry-After that is neither seconds nor an HTTP-date", "retry_after", h)
			return serr
		}
		serr.RetryAfter = after
		return onerror.RetryAfter(serr, after)
	}
	return serr
}

// Close releases idle connections.
func (s *HTTPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
