package faulty

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Answer is what the server does with one request.
type Answer struct {
	// Status is the status answered; 0 means 200. The records of a request
	// answered 2xx are accepted.
	Status int
	// RetryAfter, when not empty, is sent as the Retry-After header:
	// seconds ("2") or an HTTP-date.
	RetryAfter string
	// Hang leaves the request unanswered until the client gives up or the
	// server closes; the connection is then closed without an answer.
	Hang bool
	// Drop closes the connection, once the body is read, without answering.
	Drop bool
}

// Hang and Drop are the answers that never answer.
var (
	Hang = Answer{Hang: true}
	Drop = Answer{Drop: true}
)

// Request is a request the server received, as it saw it.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         string
	// IDs are the ids of the request's records (see [Server]).
	IDs []int64
	// Status is the status answered, 0 when the request was hung or
	// dropped.
	Status int
	// Time is when the request arrived, on the wall clock.
	Time time.Time
}

// Server is an HTTP target on 127.0.0.1 for error-policy tests. It takes
// what flowrun's http sink posts (a JSON array of objects or NDJSON) and
// what a buffered http call sends (one JSON object per request, or nothing
// for a GET, whose ids are then its "id" query parameters). A record's id
// is its "id" field as an integer, -1 when it has none; a body that is not
// JSON objects is answered 400.
//
// A request is answered by the first rule that applies: the script of
// [Server.Fail], one scripted answer per request in arrival order; then
// [Server.Reject], for a request holding a rejected id; otherwise 200 with
// {"accepted":n}. The records of every request answered 2xx are accepted:
// [Server.Accepted] returns their ids in the order they were accepted.
//
// Its methods are safe for concurrent use, scripting included.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string

	srv       *httptest.Server
	release   chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	script   []scripted
	reject   map[int64]int
	requests []Request
	accepted []int64
}

type scripted struct {
	n int
	a Answer
}

// NewServer starts a server, closed when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{release: make(chan struct{}), reject: map[int64]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Fail scripts the next n requests to get a: the first call covers requests
// 1 to n, a second call the requests after those, and so on. It returns s.
func (s *Server) Fail(n int, a Answer) *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > 0 {
		s.script = append(s.script, scripted{n: n, a: a})
	}
	return s
}

// Reject answers status (400 when 0) to every request holding a record
// with one of ids, however often it is sent, so that a batch holding id 7
// fails for good while a batch without it succeeds. It returns s.
func (s *Server) Reject(status int, ids ...int64) *Server {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.reject[id] = status
	}
	return s
}

// Count returns the number of requests received so far.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Accepted returns the ids of the records accepted so far, in order.
func (s *Server) Accepted() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
}

// Requests returns the requests received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Close answers the hanging requests (by closing their connections) and
// shuts the server down. It is called when the test ends; calling it
// earlier is allowed.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.release)
		s.srv.Close()
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var ids []int64
	if err == nil {
		ids, err = recordIDs(r, body)
	}
	s.mu.Lock()
	a, scripted := s.answer(ids)
	if err != nil && !scripted {
		a = Answer{Status: http.StatusBadRequest}
	}
	ok := !a.Hang && !a.Drop && a.Status/100 == 2
	if ok {
		s.accepted = append(s.accepted, ids...)
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body), IDs: ids, Time: time.Now()}
	if !a.Hang && !a.Drop {
		req.Status = a.Status
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	switch {
	case a.Hang:
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		panic(http.ErrAbortHandler) // closes the connection unanswered
	case a.Drop:
		panic(http.ErrAbortHandler)
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	switch {
	case ok:
		fmt.Fprintf(w, "{\"accepted\":%d}\n", len(ids))
	case err != nil && !scripted:
		fmt.Fprintf(w, "{\"error\":%q}\n", "faulty: "+err.Error())
	default:
		fmt.Fprintf(w, "{\"error\":\"faulty: status %d\"}\n", a.Status)
	}
}

// answer returns what the next request, holding ids, gets, and whether it
// took that from the script. s.mu is held.
func (s *Server) answer(ids []int64) (Answer, bool) {
	if len(s.script) > 0 {
		a := s.script[0].a
		if s.script[0].n--; s.script[0].n == 0 {
			s.script = s.script[1:]
		}
		if a.Status == 0 {
			a.Status = http.StatusOK
		}
		return a, true
	}
	for _, id := range ids {
		if status, ok := s.reject[id]; ok {
			return Answer{Status: status}, false
		}
	}
	return Answer{Status: http.StatusOK}, false
}

// recordIDs returns the ids of the records of a request: its body's JSON
// objects (one, an array of them, or one per line), or the id query
// parameters of a request without a body.
func recordIDs(r *http.Request, body []byte) ([]int64, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		var ids []int64
		for _, v := range r.URL.Query()["id"] {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("query id %q: %w", v, err)
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var ids []int64
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return ids, nil
		} else if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("body: %T is not a JSON object", e)
			}
			ids = append(ids, idOf(m["id"]))
		}
	}
}

// idOf returns v as an integer id, -1 when it is none.
func idOf(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		if id, err := x.Int64(); err == nil {
			return id
		}
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return -1
}
