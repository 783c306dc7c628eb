package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// TestMain fails the package's tests if any goroutine outlives them; every
// test shuts its embedded server down before it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer starts a NATS server with JetStream (file storage in a
// temporary directory) on a random port of 127.0.0.1 and returns its URL;
// it is shut down when the test ends.
func startServer(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s.ClientURL()
}

// client is a test's own connection to the server.
type client struct {
	t  testing.TB
	nc *natsgo.Conn
	js jetstream.JetStream
}

func dial(t testing.TB, url string) *client {
	t.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, nc: nc, js: js}
}

// stream creates a stream named name over subjects.
func (c *client) stream(name string, subjects ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage}); err != nil {
		c.t.Fatalf("create stream %s: %v", name, err)
	}
}

// publish publishes n JSON messages {id: first+i} to subject and waits
// until the stream stored them all. Publishing with core NATS and waiting
// for the stream's count is several times faster than waiting for an
// acknowledgement per message.
func (c *client) publish(subject string, first, n int) {
	c.t.Helper()
	stream := c.streamOf(subject)
	want := c.count(stream) + n
	for i := first; i < first+n; i++ {
		if err := c.nc.Publish(subject, fmt.Appendf(nil, `{"id":%d}`, i)); err != nil {
			c.t.Fatalf("publish: %v", err)
		}
		if i%10000 == 9999 {
			if err := c.nc.FlushTimeout(30 * time.Second); err != nil {
				c.t.Fatalf("publish: %v", err)
			}
		}
	}
	if err := c.nc.FlushTimeout(30 * time.Second); err != nil {
		c.t.Fatalf("publish: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c.count(stream) < want {
		if time.Now().After(deadline) {
			c.t.Fatalf("publish: stream %s holds %d messages, want %d", stream, c.count(stream), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// streamOf returns the name of the stream that stores subject.
func (c *client) streamOf(subject string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name, err := c.js.StreamNameBySubject(ctx, subject)
	if err != nil {
		c.t.Fatalf("stream of %s: %v", subject, err)
	}
	return name
}

// count returns how many messages stream holds.
func (c *client) count(stream string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		c.t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		c.t.Fatalf("stream %s: %v", stream, err)
	}
	return int(info.State.Msgs)
}

// consumerInfo returns the state of the durable consumer of stream.
func (c *client) consumerInfo(stream, durable string) *jetstream.ConsumerInfo {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, stream, durable)
	if err != nil {
		c.t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		c.t.Fatalf("consumer %s: %v", durable, err)
	}
	return info
}

// acked returns how far the durable consumer of stream is acknowledged
// (its acknowledgement floor), 0 while it does not exist.
func (c *client) acked(stream, durable string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, stream, durable)
	if err != nil {
		return 0
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

// read returns the decoded payloads of every message stream holds, with
// their subjects and message ids.
func (c *client) read(stream string) []stored {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := c.count(stream)
	cons, err := c.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		c.t.Fatalf("read %s: %v", stream, err)
	}
	var out []stored
	for len(out) < want {
		batch, err := cons.Fetch(min(want-len(out), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			c.t.Fatalf("read %s: %v", stream, err)
		}
		for m := range batch.Messages() {
			var fields map[string]any
			if err := json.Unmarshal(m.Data(), &fields); err != nil {
				c.t.Fatalf("read %s: message %q: %v", stream, m.Data(), err)
			}
			out = append(out, stored{subject: m.Subject(), id: m.Headers().Get(jetstream.MsgIDHeader), fields: fields})
		}
		if err := batch.Error(); err != nil {
			c.t.Fatalf("read %s: %v", stream, err)
		}
	}
	return out
}

type stored struct {
	subject, id string
	fields      map[string]any
}

// ids counts how often each id field occurs in msgs.
func ids(msgs []stored) map[int]int {
	seen := map[int]int{}
	for _, m := range msgs {
		id, _ := m.fields["id"].(float64)
		seen[int(id)]++
	}
	return seen
}

// missing lists the ids in [0, n) absent from seen, at most ten.
func missing(seen map[int]int, n int) []int {
	var out []int
	for i := 0; i < n && len(out) < 10; i++ {
		if seen[i] == 0 {
			out = append(out, i)
		}
	}
	return out
}

// start plans src (a .flow file with --var values vars), builds its
// pipeline named name and starts it, returning the execution and its graph; the execution is killed when the test
// ends if it still runs.
func start(t testing.TB, src, name string, vars map[string]string) (*flowruntime.Execution, *flowruntime.Graph) {
	t.Helper()
	for k, v := range vars {
		src = strings.ReplaceAll(src, "${"+k+"}", v)
	}
	p := optest.Plan(t, src, name)
	g, err := all.Registry().BuildGraph(p, operators.BuildEnv{Clock: flowruntime.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	ex := optest.Start(t, g)
	return ex, g
}
