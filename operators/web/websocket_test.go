package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flowrun/flowrun/operators/web"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// feed is a websocket server for the source's tests: each connection runs
// the session function for its number (from 1).
type feed struct {
	*httptest.Server
	conns   atomic.Int64
	headers chan http.Header
}

func newFeed(t *testing.T, session func(ctx context.Context, n int, c *websocket.Conn)) *feed {
	f := &feed{headers: make(chan http.Header, 16)}
	var wg sync.WaitGroup
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.conns.Add(1))
		select {
		case f.headers <- r.Header.Clone():
		default:
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			if n > 0 {
				t.Logf("accept %d: %v", n, err)
			}
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		// The session ends when the client goes away: reading notices.
		session(c.CloseRead(r.Context()), n, c)
	}))
	t.Cleanup(func() {
		f.CloseClientConnections()
		f.Close()
		wg.Wait()
	})
	return f
}

func wsURL(s *httptest.Server) string { return "ws" + strings.TrimPrefix(s.URL, "http") }

func sendIDs(ctx context.Context, c *websocket.Conn, from, to int) error {
	for i := from; i < to; i++ {
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"id": %d}`, i)); err != nil {
			return err
		}
	}
	return nil
}

// TestWebSocketSourceReconnects: the server sends records 0..49 and drops
// the connection mid-stream, refuses the next two handshakes (503), then
// comes back and sends 50..99 (as one array frame and single frames); the
// source reconnects with backoff and every record arrives.
func TestWebSocketSourceReconnects(t *testing.T) {
	f := newFeed(t, func(ctx context.Context, n int, c *websocket.Conn) {
		switch n {
		case 1:
			sendIDs(ctx, c, 0, 50)
			c.CloseNow() // no close frame: the connection just ends
		default:
			c.Write(ctx, websocket.MessageBinary, []byte(`[{"id": 50}, {"id": 51}]`))
			sendIDs(ctx, c, 52, 100)
			<-ctx.Done()
		}
	})
	var refused atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Connections 2 and 3 are refused before the handshake.
		if f.conns.Load() == 1 && refused.Add(1) <= 2 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	mem := memory()
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "feed" {
    kind              = "websocket"
    url               = %q
    headers           = { "X-Token" = "abc" }
    reconnect_initial = "10ms"
    reconnect_max     = "50ms"
  }
  sink "out" {
    from = feed
    kind = "discard"
  }
}`, wsURL(proxy)), map[string]flowruntime.Sink{"out": mem})
	eventually(t, "100 records", func() bool { return len(mem.Records()) >= 100 })
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := ids(t, mem.Fields()); !slices.Equal(got, seq(100)) {
		t.Errorf("got ids %v, want 0..99 in order", got)
	}
	if n := refused.Load(); n < 2 {
		t.Errorf("%d refused handshakes, want 2", n)
	}
	src := p.node("feed").Source.(*web.WebSocketSource)
	if n := src.Connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	if h := <-f.headers; h.Get("X-Token") != "abc" {
		t.Errorf("X-Token header %q, want abc", h.Get("X-Token"))
	}
	for i, r := range mem.Records() {
		if r.Meta.Source != "feed" || r.Meta.Position != int64(i) {
			t.Errorf("record %d meta %+v", i, r.Meta)
		}
	}
}

// TestWebSocketSourceBackpressure: while the pipeline is held up the source
// stops reading, so the server's writes block (its write times out) instead
// of the source buffering without bound.
func TestWebSocketSourceBackpressure(t *testing.T) {
	var written atomic.Int64
	blocked := make(chan struct{})
	big := strings.Repeat("x", 16<<10)
	f := newFeed(t, func(ctx context.Context, n int, c *websocket.Conn) {
		for i := 0; ; i++ {
			wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := c.Write(wctx, websocket.MessageText, fmt.Appendf(nil, `{"id": %d, "pad": %q}`, i, big))
			cancel()
			if err != nil {
				close(blocked)
				return
			}
			written.Add(1)
		}
	})
	gate := make(chan struct{})
	held := &gatedSink{gate: gate}
	p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  edge_capacity = 64
  source "feed" {
    kind = "websocket"
    url  = %q
  }
  sink "out" {
    from = feed
    kind = "discard"
  }
}`, wsURL(f.Server)), map[string]flowruntime.Sink{"out": held})
	select {
	case <-blocked:
	case <-time.After(15 * time.Second):
		t.Fatal("the server's writes never blocked")
	}
	// Written frames sit in the sink's one pending Write, on the edge, in
	// the source's read-ahead and in the socket buffers: a bound, not all.
	if n := written.Load(); n > 2000 {
		t.Errorf("%d frames of 16 KiB written before the server blocked", n)
	}
	if st := p.ex.Stats(); st.PeakInFlight > st.Capacity() {
		t.Errorf("peak in flight %d over the bound %d", st.PeakInFlight, st.Capacity())
	}
	close(gate)
	if err := p.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// gatedSink holds its writes until gate is closed.
type gatedSink struct {
	gate chan struct{}
	n    atomic.Int64
}

func (g *gatedSink) Write(ctx context.Context, recs []flowruntime.Record) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.n.Add(int64(len(recs)))
	return nil
}

func (g *gatedSink) Close() error { return nil }

// dial connects a websocket client to url; a small client has a 4 KiB
// receive buffer, so that it holds little when it does not read.
func dial(t *testing.T, url string, small bool) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &net.Dialer{}
	if small {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}
	}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	return c
}

// TestWebSocketSinkBroadcast: every connected client gets every record as
// a JSON text frame; when the pipeline ends the clients get a close frame.
func TestWebSocketSinkBroadcast(t *testing.T) {
	p := startFlow(t, `
pipeline "p" {
  source "in" {
    kind   = "http"
    listen = "127.0.0.1:0"
  }
  sink "clients" {
    from   = in
    kind   = "websocket"
    listen = "127.0.0.1:0"
    path   = "/live"
  }
}`, nil)
	src := p.node("in").Source.(*web.HTTPSource)
	ws := p.node("clients").Sink.(*web.WebSocketSink)
	url := "ws://" + addrOf(t, ws) + "/live"
	a, b := dial(t, url, false), dial(t, url, false)
	eventually(t, "two clients", func() bool { return ws.Stats().Clients == 2 })
	c := newClient(t)
	if status, body := post(t, c, "http://"+addrOf(t, src)+"/ingest", "application/x-ndjson", ndjson(0, 20)); status != 200 {
		t.Fatalf("POST: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, conn := range []*websocket.Conn{a, b} {
		for i := range 20 {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
			if want := fmt.Sprintf(`{"id":%d}`, i); typ != websocket.MessageText || string(data) != want {
				t.Fatalf("frame %d: %v %s, want text %s", i, typ, data, want)
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- p.stop() }()
	for _, conn := range []*websocket.Conn{a, b} {
		_, _, err := conn.Read(ctx)
		if st := websocket.CloseStatus(err); st != websocket.StatusGoingAway {
			t.Errorf("after the end: %v, want a going-away close", err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := ws.Stats(); st.Sent != 40 || st.Dropped != 0 || st.Disconnected != 0 {
		t.Errorf("stats %+v, want 40 sent", st)
	}
}

// TestWebSocketSinkSlowClient: a client that does not read fills its queue;
// drop_oldest drops the oldest messages (it then reads the newest),
// disconnect closes it. Either way a reading client gets everything and the
// pipeline never waits.
func TestWebSocketSinkSlowClient(t *testing.T) {
	for _, policy := range []string{"drop_oldest", "disconnect"} {
		t.Run(policy, func(t *testing.T) {
			p := startFlow(t, fmt.Sprintf(`
pipeline "p" {
  source "in" {
    kind           = "http"
    listen         = "127.0.0.1:0"
    max_body_bytes = 100000000
  }
  sink "clients" {
    from         = in
    kind         = "websocket"
    listen       = "127.0.0.1:0"
    client_queue  = 32
    slow_client   = %q
    write_timeout = "60s"
  }
}`, policy), nil)
			src := p.node("in").Source.(*web.HTTPSource)
			ws := p.node("clients").Sink.(*web.WebSocketSink)
			url := "ws://" + addrOf(t, ws) + "/"
			slow, fast := dial(t, url, true), dial(t, url, false)
			eventually(t, "two clients", func() bool { return ws.Stats().Clients == 2 })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			const total, per = 1024, 8
			var fastGot []int64
			readDone := make(chan error, 1)
			go func() {
				for len(fastGot) < total {
					_, data, err := fast.Read(ctx)
					if err != nil {
						readDone <- err
						return
					}
					var id int64
					fmt.Sscanf(string(data), `{"id":%d`, &id)
					fastGot = append(fastGot, id)
				}
				readDone <- nil
			}()
			// 1024 records of 8 KiB: more than the slow client's socket
			// buffers (the server's send buffer grows to 4 MiB) and queue
			// hold; sent 8 at a time, so that a client that reads keeps up.
			pad := strings.Repeat("x", 8<<10)
			c := newClient(t)
			for i := 0; i < total; i += per {
				var b strings.Builder
				for j := i; j < i+per; j++ {
					fmt.Fprintf(&b, "{\"id\": %d, \"pad\": %q}\n", j, pad)
				}
				if status, body := post(t, c, "http://"+addrOf(t, src)+"/ingest", "application/x-ndjson", b.String()); status != 200 {
					t.Fatalf("POST: %d %s", status, body)
				}
			}
			if err := <-readDone; err != nil {
				t.Fatalf("fast client: %v", err)
			}
			if !slices.Equal(fastGot, seq(total)) {
				t.Errorf("the fast client got %d records, want all %d in order", len(fastGot), total)
			}
			st := ws.Stats()
			switch policy {
			case "drop_oldest":
				if st.Dropped == 0 || st.Disconnected != 0 {
					t.Fatalf("stats %+v: want drops, no disconnections", st)
				}
				// The slow client now reads: it gets a gapped but ordered
				// stream ending with the newest record.
				var got []int64
				for {
					_, data, err := slow.Read(ctx)
					if err != nil {
						t.Fatalf("slow client after %d frames: %v", len(got), err)
					}
					var id int64
					fmt.Sscanf(string(data), `{"id":%d`, &id)
					got = append(got, id)
					if id == total-1 {
						break
					}
				}
				if !slices.IsSorted(got) || len(got) >= total {
					t.Errorf("the slow client got %d frames %v..., want fewer than %d in order", len(got), got[:min(5, len(got))], total)
				}
			case "disconnect":
				if st.Disconnected != 1 || st.Dropped != 0 {
					t.Fatalf("stats %+v: want one disconnection, no drops", st)
				}
				var err error
				for err == nil {
					_, _, err = slow.Read(ctx)
				}
				if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
					t.Errorf("slow client ended with %v, want a policy-violation close", err)
				}
			}
			// The clients leave without the close handshake.
			slow.CloseNow()
			fast.CloseNow()
			if err := p.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
		})
	}
}
