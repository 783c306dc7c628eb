package web_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/web"
)

// TestLiveEventsPipeline runs pipelines/live_events.flow with its upstream
// feeds replaced by local websocket servers and its listeners by free
// ports: every record of both feeds reaches an SSE client and a websocket
// client, normalised.
func TestLiveEventsPipeline(t *testing.T) {
	src, err := os.ReadFile("../../pipelines/live_events.flow")
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	prices := newFeed(t, func(ctx context.Context, n int, c *websocket.Conn) {
		select {
		case <-start:
			sendIDs(ctx, c, 0, 10)
		case <-ctx.Done():
		}
		<-ctx.Done()
	})
	trades := newFeed(t, func(ctx context.Context, n int, c *websocket.Conn) {
		select {
		case <-start:
			sendIDs(ctx, c, 100, 110)
		case <-ctx.Done():
		}
		<-ctx.Done()
	})
	flow := strings.NewReplacer(
		"ws://127.0.0.1:9001/prices", wsURL(prices.Server),
		"ws://127.0.0.1:9002/trades", wsURL(trades.Server),
		`"127.0.0.1:8080"`, `"127.0.0.1:0"`,
		`"127.0.0.1:8081"`, `"127.0.0.1:0"`,
	).Replace(string(src))
	if flow == string(src) {
		t.Fatal("the example's addresses changed: update this test")
	}
	p := startFlowNamed(t, flow, "live_events")
	sse := p.node("browsers").Sink.(*web.SSESink)
	ws := p.node("clients").Sink.(*web.WebSocketSink)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, stream := openSSE(t, ctx, newClient(t), "http://"+addrOf(t, sse)+"/events", "")
	defer resp.Body.Close()
	conn := dial(t, "ws://"+addrOf(t, ws)+"/live", false)
	eventually(t, "both clients", func() bool { return sse.Stats().Clients == 1 && ws.Stats().Clients == 1 })
	close(start)

	want := append(seq(10), 100, 101, 102, 103, 104, 105, 106, 107, 108, 109)
	var viaSSE, viaWS []int64
	for range 20 {
		ev, err := stream.next()
		if err != nil {
			t.Fatal(err)
		}
		var id, received int64
		if _, err := fmt.Sscanf(ev.Data, `{"id":%d,"received":%d}`, &id, &received); err != nil || received < 1e9 {
			t.Fatalf("event data %s: want id and received (unix seconds)", ev.Data)
		}
		viaSSE = append(viaSSE, id)
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscanf(string(data), `{"id":%d,"received":%d}`, &id, &received); err != nil {
			t.Fatalf("frame %s: want id and received", data)
		}
		viaWS = append(viaWS, id)
	}
	slices.Sort(viaSSE)
	slices.Sort(viaWS)
	if !slices.Equal(viaSSE, want) || !slices.Equal(viaWS, want) {
		t.Errorf("sse got %v, websocket got %v, want %v", viaSSE, viaWS, want)
	}
	conn.CloseNow()
}

// startFlowNamed is startFlow for a pipeline not named "p".
func startFlowNamed(t *testing.T, src, name string) *pipe {
	t.Helper()
	return startPlanned(t, optest.Plan(t, src, name), nil)
}
