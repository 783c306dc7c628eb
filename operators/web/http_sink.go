package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var httpSinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "http",
		Doc: "POSTs records in batches (a JSON array, or NDJSON) to a URL; 5xx, 429 and connection errors are retried by the stage's on_error policy (retry by default), other 4xx answers are permanent and dead-letter or fail at once.",
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
// took it. When a request fails, the requests of the batch that succeeded
// are remembered: the runtime's retry of the same batch resends only the
// rest, so a retry duplicates nothing the target acknowledged.
type HTTPSink struct {
	url       string
	method    string
	batchSize int
	ndjson    bool
	headers   http.Header
	client    *http.Client
	log       hclog.Logger
	enc       codec.Encoder
	buf       []byte

	// retryOf and sent remember the batch whose first sent records
	// succeeded before a request failed.
	retryOf batchID
	sent    int
}

// batchID identifies a batch handed to Write: where its records are and
// which objects its first and last records hold, so that a later batch in
// recycled memory is not taken for it.
type batchID struct {
	first      *flowruntime.Record
	n          int
	head, tail unsafe.Pointer
}

func idOf(recs []flowruntime.Record) batchID {
	return batchID{first: &recs[0], n: len(recs),
		head: reflect.ValueOf(recs[0].Fields).UnsafePointer(),
		tail: reflect.ValueOf(recs[len(recs)-1].Fields).UnsafePointer()}
}

// StatusError is a non-2xx answer of the target.
type StatusError struct {
	Method, URL string
	Status      int
	// Body is the start of the answer's body.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
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
	start := 0
	id := idOf(recs)
	if s.retryOf == id {
		start = s.sent
	}
	s.retryOf = batchID{}
	for i := start; i < len(recs); i += s.batchSize {
		end := min(i+s.batchSize, len(recs))
		if err := s.post(ctx, recs[i:end]); err != nil {
			if i > 0 {
				s.retryOf, s.sent = id, i
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
			return flowruntime.Permanent(fmt.Errorf("record %d: %w", i, err))
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
		return flowruntime.Permanent(fmt.Errorf("request: %w", err))
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
	if retryable(resp.StatusCode) {
		s.log.Debug("target failed, the batch will be retried", "status", resp.StatusCode,
			"retry_after", resp.Header.Get("Retry-After"), "records", len(recs))
		return serr
	}
	return flowruntime.Permanent(serr)
}

// Close releases idle connections.
func (s *HTTPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
