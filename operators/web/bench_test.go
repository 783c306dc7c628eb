package web_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowrun/flowrun/operators/internal/optest"
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

// BenchmarkHTTPSink writes b.N records from a generate source to an
// httptest server, 100 per request.
func BenchmarkHTTPSink(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	b.ResetTimer()
	p := startFlow(b, fmt.Sprintf(`
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = %d
    template = { id: seq, name: "event", value: seq * 2 }
  }
  sink "out" {
    from = gen
    kind = "http"
    url  = %q
  }
}`, b.N, srv.URL), nil)
	if err := p.wait(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWebSocketSource reads b.N records, one JSON object per text
// frame, from a local websocket server. The server writes prebuilt frames
// in 64 KiB chunks (a server writing one frame per system call, as
// coder/websocket does, caps the rate near 40,000 frames/s on its own).
func BenchmarkWebSocketSource(b *testing.B) {
	frame := []byte(`{"id": 1, "name": "event", "value": 2}`)
	var chunk []byte
	for len(chunk) < 64<<10 {
		chunk = append(chunk, 0x81, byte(len(frame))) // FIN + text, unmasked, short length
		chunk = append(chunk, frame...)
	}
	perChunk := len(chunk) / (len(frame) + 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(sum[:]))
		rw.Flush()
		for sent := 0; sent < b.N; sent += perChunk {
			n := min(perChunk, b.N-sent) * (len(frame) + 2)
			if _, err := conn.Write(chunk[:n]); err != nil {
				return
			}
		}
		io.Copy(io.Discard, conn) // until the client closes
	}))
	defer func() {
		srv.CloseClientConnections()
		srv.Close()
	}()
	count := &countSink{}
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	p := startFlow(b, fmt.Sprintf(`
pipeline "p" {
  source "feed" {
    kind = "websocket"
    url  = %q
  }
  sink "out" {
    from = feed
    kind = "discard"
  }
}`, "ws"+strings.TrimPrefix(srv.URL, "http")), map[string]flowruntime.Sink{"out": count})
	for count.n.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if err := p.stop(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSSESink writes b.N records, 256 per Write, to an sse sink with
// one client reading the stream.
func BenchmarkSSESink(b *testing.B) {
	n := optest.Build(b, optest.Stage(b, "sink", "sse", "browsers",
		M{"listen": "127.0.0.1:0", "client_queue": 1 << 16, "replay": 1000}), optest.Env(nil))
	s := n.Sink.(*web.SSESink)
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	c := newClient(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, stream := openSSE(b, ctx, c, "http://"+s.Addr()+"/events", "")
	defer resp.Body.Close()
	for s.Stats().Clients != 1 {
		time.Sleep(time.Millisecond)
	}
	batch := make([]flowruntime.Record, 256)
	for i := range batch {
		batch[i] = flowruntime.Record{Fields: M{"id": int64(i), "name": "event", "value": int64(2 * i)}}
	}
	got := make(chan int, 1)
	go func() {
		n := 0
		for n < b.N {
			if _, err := stream.next(); err != nil {
				break
			}
			n++
		}
		got <- n
	}()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += len(batch) {
		if err := s.Write(ctx, batch[:min(len(batch), b.N-sent)]); err != nil {
			b.Fatal(err)
		}
		// Keep the client's queue from overflowing: wait while it is
		// more than 8 batches behind.
		for s.Stats().Sent < int64(sent-8*len(batch)) {
			time.Sleep(50 * time.Microsecond)
		}
	}
	if n := <-got; n != b.N {
		b.Fatalf("the client read %d events of %d", n, b.N)
	}
	b.StopTimer()
	if st := s.Stats(); st.Dropped != 0 {
		b.Errorf("%d events dropped", st.Dropped)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
