package sink_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowrun/flowrun/operators/internal/optest"
)

func TestHTTPSink(t *testing.T) {
	var got []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("X-Key")+"\n"+string(b))
		w.WriteHeader(status)
		io.WriteString(w, "busy")
	}))
	defer srv.Close()
	recs := optest.Records(M{"b": int64(1), "a": "x"}, M{"c": true})

	s := build(t, "http", M{"url": srv.URL, "headers": M{"X-Key": "k"}}, optest.Env(nil))
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s = build(t, "http", M{"url": srv.URL + "/batch", "codec": "json", "method": "put"}, optest.Env(nil))
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST application/x-ndjson k\n{\"a\":\"x\",\"b\":1}\n{\"c\":true}\n",
		"PUT application/json \n[{\"a\":\"x\",\"b\":1},{\"c\":true}]",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests\n%q\nwant\n%q", got, want)
	}
	status = http.StatusServiceUnavailable
	if err := s.Write(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "busy") {
		t.Errorf("a 503 answer: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
