package faulty_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/faulty"
)

type exchange struct {
	method, body string
	query        string
	// wantStatus is the status wanted, 0 for no answer (a client error).
	wantStatus     int
	wantRetryAfter string
}

func send(t *testing.T, c *http.Client, url string, x exchange) (int, string) {
	t.Helper()
	method := x.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, url+"/in"+x.query, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestServer(t *testing.T) {
	tests := []struct {
		name         string
		script       func(*faulty.Server)
		exchanges    []exchange
		wantAccepted []int64
	}{
		{"formats", nil, []exchange{
			{body: `[{"id":1},{"id":2}]`, wantStatus: 200},
			{body: "{\"id\":3}\n{\"id\":4}\n", wantStatus: 200},
			{body: `{"id":5,"x":"y"}`, wantStatus: 200},
			{method: "GET", query: "?id=6", wantStatus: 200},
			{body: `[{"name":"no id"}]`, wantStatus: 200},
			{body: `[1,2]`, wantStatus: 400},
			{body: `not json`, wantStatus: 400},
		}, []int64{1, 2, 3, 4, 5, 6, -1}},
		{"fail first", func(s *faulty.Server) {
			s.Fail(2, faulty.Answer{Status: 500}).
				Fail(1, faulty.Answer{Status: 503, RetryAfter: "2"}).
				Fail(1, faulty.Answer{Status: 429, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"})
		}, []exchange{
			{body: `[{"id":1}]`, wantStatus: 500},
			{body: `[{"id":1}]`, wantStatus: 500},
			{body: `[{"id":1}]`, wantStatus: 503, wantRetryAfter: "2"},
			{body: `[{"id":1}]`, wantStatus: 429, wantRetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"},
			{body: `[{"id":1}]`, wantStatus: 200},
		}, []int64{1}},
		{"reject ids", func(s *faulty.Server) { s.Reject(0, 7).Reject(422, 9) }, []exchange{
			{body: `[{"id":6},{"id":7}]`, wantStatus: 400},
			{body: `[{"id":6}]`, wantStatus: 200},
			{body: `[{"id":7}]`, wantStatus: 400},
			{body: `{"id":9}`, wantStatus: 422},
			{body: "{\"id\":8}\n", wantStatus: 200},
		}, []int64{6, 8}},
		{"script before rejects", func(s *faulty.Server) { s.Reject(0, 7).Fail(1, faulty.Answer{Status: 503}) }, []exchange{
			{body: `[{"id":7}]`, wantStatus: 503},
			{body: `[{"id":7}]`, wantStatus: 400},
		}, nil},
		{"drop", func(s *faulty.Server) { s.Fail(1, faulty.Drop) }, []exchange{
			{body: `[{"id":1}]`, wantStatus: 0},
			{body: `[{"id":2}]`, wantStatus: 200},
		}, []int64{2}},
		{"hang", func(s *faulty.Server) { s.Fail(1, faulty.Hang) }, []exchange{
			{body: `[{"id":1}]`, wantStatus: 0},
			{body: `[{"id":2}]`, wantStatus: 200},
		}, []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := faulty.NewServer(t)
			if tt.script != nil {
				tt.script(s)
			}
			c := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for i, x := range tt.exchanges {
				status, after := send(t, c, s.URL, x)
				if status != x.wantStatus || after != x.wantRetryAfter {
					t.Errorf("request %d: %d, Retry-After %q; want %d, %q", i+1, status, after, x.wantStatus, x.wantRetryAfter)
				}
			}
			if got := s.Accepted(); !slices.Equal(got, tt.wantAccepted) {
				t.Errorf("accepted %v, want %v", got, tt.wantAccepted)
			}
			if n := s.Count(); n != len(tt.exchanges) {
				t.Errorf("counted %d requests, want %d", n, len(tt.exchanges))
			}
			reqs := s.Requests()
			for i, x := range tt.exchanges {
				if i < len(reqs) && reqs[i].Status != x.wantStatus {
					t.Errorf("request %d recorded with status %d, want %d", i+1, reqs[i].Status, x.wantStatus)
				}
			}
		})
	}
}

// TestServerHangsUntilClosed: a hung request is released, unanswered, when
// the server closes, so a test's cleanup never waits for it.
func TestServerHangsUntilClosed(t *testing.T) {
	s := faulty.NewServer(t).Fail(1, faulty.Hang)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Post(s.URL, "application/json", strings.NewReader(`[{"id":1}]`))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a hung request was answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hung request was not released by Close")
	}
}

// TestServerConcurrent: requests from many clients at once are each
// counted and their records accepted once.
func TestServerConcurrent(t *testing.T) {
	s := faulty.NewServer(t).Reject(0, 13)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Post(s.URL, "application/x-ndjson", strings.NewReader(fmt.Sprintf("{\"id\":%d}\n", i)))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	got := s.Accepted()
	slices.Sort(got)
	want := slices.DeleteFunc(faulty.IDs(0, 40), func(id int64) bool { return id == 13 })
	if !slices.Equal(got, want) || s.Count() != 40 {
		t.Errorf("accepted %v of %d requests, want every id but 13 of 40", got, s.Count())
	}
}
