package admin

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/supervisor"
)

// BenchmarkEndpoints measures one request to each endpoint of a server
// over a running pipeline, client included, one after another: ns/op is
// about the CPU a scrape every 15 s (or a UI polling every second) adds to
// a run.
func BenchmarkEndpoints(b *testing.B) {
	dir := b.TempDir()
	sup := supervisor.New(supervisor.Config{Registry: all.Registry()})
	srv, err := Listen("127.0.0.1:0", Config{Supervisor: sup})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if err := sup.Start(plan(b, dir, tickFlow)); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sup.Stop()
		_ = sup.Wait()
	}()
	time.Sleep(50 * time.Millisecond)
	base := "http://" + srv.Addr().String()
	for _, path := range []string{"/metrics", "/api/v1/pipelines", "/readyz"} {
		b.Run(path, func(b *testing.B) {
			for range b.N {
				resp, err := http.Get(base + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
