package call

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/flowrun/flowrun/operators/internal/retryafter"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
	"github.com/flowrun/flowrun/runtime/onerror"
)

// httpCall sends one request per record.
type httpCall struct {
	client  *http.Client
	url     *expression.Program
	method  string
	body    *expression.Program
	headers http.Header
	// sendRecord says whether the record is the body when body is not set.
	sendRecord bool
	// clock turns a Retry-After date into a wait.
	clock flowruntime.Clock
}

// transport is shared by every http call of the process, so connections
// are reused across stages and pipelines and none is left behind when a
// pipeline is replaced.
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}()

func newHTTPCall(o planner.Options, clock flowruntime.Clock) *httpCall {
	h := &httpCall{
		url:    o.Expr("url"),
		method: strings.ToUpper(o.String("method")),
		body:   o.Expr("body"),
		clock:  clock,
	}
	if h.method == "" {
		h.method = http.MethodGet
	}
	h.sendRecord = h.method != http.MethodGet && h.method != http.MethodHead
	h.headers = http.Header{}
	if m, ok := o["headers"].(map[string]any); ok {
		for k, v := range m {
			switch x := v.(type) {
			case string:
				h.headers.Set(k, x)
			case nil:
			default:
				h.headers.Set(k, fmt.Sprint(x))
			}
		}
	}
	h.client = &http.Client{Transport: transport}
	return h
}

func (h *httpCall) call(ctx context.Context, s *state, rec map[string]any) ([]byte, error) {
	u, err := s.run.Run(h.url, rec)
	if err != nil {
		return nil, onerror.Permanent(fmt.Errorf("url: %w", err))
	}
	url, ok := u.(string)
	if !ok {
		return nil, onerror.Permanent(fmt.Errorf("url yields %T, not a string", u))
	}
	var body io.Reader
	isJSON := false
	switch {
	case h.body != nil:
		v, err := s.run.Run(h.body, rec)
		if err != nil {
			return nil, onerror.Permanent(fmt.Errorf("body: %w", err))
		}
		if str, ok := v.(string); ok {
			body = strings.NewReader(str)
		} else {
			b, err := s.enc.Append(nil, v)
			if err != nil {
				return nil, onerror.Permanent(fmt.Errorf("body: %w", err))
			}
			body, isJSON = bytes.NewReader(b), true
		}
	case h.sendRecord:
		b, err := s.enc.AppendObject(nil, rec)
		if err != nil {
			return nil, onerror.Permanent(fmt.Errorf("body: %w", err))
		}
		body, isJSON = bytes.NewReader(b), true
	}
	req, err := http.NewRequestWithContext(ctx, h.method, url, body)
	if err != nil {
		return nil, onerror.Permanent(fmt.Errorf("request: %w", err))
	}
	for k, v := range h.headers {
		req.Header[k] = v
	}
	if isJSON && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &limitedBuffer{max: maxOutput}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", h.method, url, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		excerpt := strings.TrimSpace(string(out.buf[:min(len(out.buf), 200)]))
		err := fmt.Errorf("%s %s: %s: %s", h.method, url, resp.Status, excerpt)
		if permanentStatus(resp.StatusCode) {
			return nil, onerror.Permanent(err)
		}
		// A 429 or 503 may say how long to wait before the next try.
		if after, ok := retryafter.Parse(resp.Header.Get("Retry-After"), h.clock.Now()); ok {
			return nil, onerror.RetryAfter(err, after)
		}
		return nil, err
	}
	if out.over {
		return nil, fmt.Errorf("%s %s: response longer than %d bytes", h.method, url, maxOutput)
	}
	return out.buf, nil
}

// permanentStatus reports whether an answer with this status will not
// change if the same request is sent again: a client error other than a
// timeout, a conflict or a rate limit.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return code >= 400 && code < 500
}
