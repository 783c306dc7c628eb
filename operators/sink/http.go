package sink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var httpKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "http",
		Doc: "Sends records to an HTTP endpoint, one request per batch; a batch counts as written once the endpoint answers 2xx.",
		Options: []planner.OptionSpec{
			{Name: "url", Type: planner.String, Required: true,
				Doc: "The endpoint, e.g. \"https://ingest.example.com/v1/events\"."},
			{Name: "method", Type: planner.String, Default: "POST",
				Doc: "The request method."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"jsonl", "json"}, Default: "jsonl",
				Doc: "jsonl sends one JSON object per line; json sends one JSON array of the batch's records."},
			{Name: "headers", Type: planner.Value,
				Doc: "An object of request headers, e.g. { Authorization = \"Bearer ...\" }."},
			{Name: "timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "The longest one request may take; a slower one fails and on_error applies (retry by default)."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			if u, err := url.Parse(o.String("url")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.Add("url", "the url must be an absolute http or https URL, not %q", o.String("url"))
			}
			if h := o["headers"]; h != nil {
				if _, ok := h.(map[string]any); !ok {
					p.Add("headers", "the headers must be an object of header names to values, e.g. { Accept = \"application/json\" }")
				}
			}
			p.MinDuration(o, "timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, _ operators.BuildEnv) (*flowruntime.Node, error) {
		s := &HTTP{
			url:     st.Options.String("url"),
			method:  strings.ToUpper(st.Options.String("method")),
			array:   st.Options.String("codec") == "json",
			timeout: st.Options.Duration("timeout"),
			headers: http.Header{},
			client:  &http.Client{Transport: transport},
		}
		if m, ok := st.Options["headers"].(map[string]any); ok {
			for k, v := range m {
				if v != nil {
					s.headers.Set(k, fmt.Sprint(v))
				}
			}
		}
		ct := "application/x-ndjson"
		if s.array {
			ct = "application/json"
		}
		if s.headers.Get("Content-Type") == "" {
			s.headers.Set("Content-Type", ct)
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// transport is shared by every http sink of the process.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return t
}()

// HTTP sends each batch in one request.
type HTTP struct {
	url     string
	method  string
	array   bool
	timeout time.Duration
	headers http.Header
	client  *http.Client
	enc     codec.Encoder
	buf     []byte
}

// Write sends recs and succeeds when the endpoint answers 2xx.
func (s *HTTP) Write(ctx context.Context, recs []flowruntime.Record) error {
	buf := s.buf[:0]
	if s.array {
		buf = append(buf, '[')
	}
	for i := range recs {
		if s.array && i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = s.enc.AppendObject(buf, recs[i].Fields); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		if !s.array {
			buf = append(buf, '\n')
		}
	}
	if s.array {
		buf = append(buf, ']')
	}
	s.buf = buf
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s: %s", s.method, s.url, resp.Status, strings.TrimSpace(string(excerpt)))
	}
	return nil
}

// Close does nothing: connections are shared and reused.
func (s *HTTP) Close() error { return nil }
