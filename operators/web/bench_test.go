package web_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flowrun/flowrun/operators/web"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// countSink counts the records written to it.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Write(_ context.Context, recs []flowruntime.Record) error {
	c.n.Add(int64(len(recs)))
	return nil
}
func (c *countSink) Close() error { return nil }

// BenchmarkHTTPIngest posts b.N records, 100 per NDJSON request from 8
// clients, to an http source whose records are discarded.
func BenchmarkHTTPIngest(b *testing.B) {
	for _, respond := range []string{"accepted", "finished"} {
		b.Run(respond, func(b *testing.B) {
			p := startFlow(b, `
pipeline "p" {
  source "in" {
    kind    = "http"
    listen  = "127.0.0.1:0"
    respond = "`+respond+`"
  }
  sink "out" {
    from = in
    kind = "discard"
  }
}`, nil)
			url := "http://" + addrOf(b, p.node("in").Source.(*web.HTTPSource)) + "/ingest"
			c := newClient(b)
			const per, clients = 100, 8
			body := ndjson(0, per)
			requests := (b.N + per - 1) / per
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(int64(len(body) / per))
			b.ResetTimer()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(requests) {
						for {
							resp, err := c.Post(url, "application/x-ndjson", strings.NewReader(body))
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode == http.StatusOK {
								break
							}
						}
					}
				}()
			}
			wg.Wait()
			if err := p.stop(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(requests*per)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
