package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/kafka"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// cluster starts a kfake cluster with topics in and out of four partitions
// each; it is closed when the test ends.
func cluster(t testing.TB) string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.SeedTopics(4, "in", "out"),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// produce writes n JSON records {id: i}, keyed by id, to topic.
func produce(t testing.TB, broker, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Key: fmt.Append(nil, i), Value: fmt.Appendf(nil, `{"id":%d}`, i)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	if first != nil {
		t.Fatalf("produce: %v", first)
	}
}

// reader consumes topic from its start, without a group, and counts the
// ids and the process tags of its records.
type reader struct {
	mu      sync.Mutex
	ids     map[int]int
	process map[string]int
	total   int
}

func read(t testing.TB, broker, topic string) *reader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{ids: map[int]int{}, process: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fetches.EachRecord(func(rec *kgo.Record) {
				var v struct {
					ID      int    `json:"id"`
					Process string `json:"process"`
				}
				if err := json.Unmarshal(rec.Value, &v); err != nil {
					t.Errorf("record %q: %v", rec.Value, err)
					return
				}
				r.mu.Lock()
				r.ids[v.ID]++
				r.process[v.Process]++
				r.total++
				r.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return r
}

func (r *reader) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

const relay = `
pipeline "p" {
  source "in" {
    kind            = "kafka"
    brokers         = "${broker}"
    topic           = "in"
    group           = "relay"
    commit_interval = "100ms"
    session_timeout = "2s"
    revoke_wait     = "5s"
  }
  map "tag" {
    from = in
    set {
      process = "${process}"
    }
  }
  throttle "pace" {
    from  = tag
    rate  = ${rate}
    burst = 256
  }
  sink "out" {
    from    = pace
    kind    = "kafka"
    brokers = "${broker}"
    topic   = "out"
    key     = string(id)
  }
}
`

// start builds relay for one process, paced at 4,000 records/s so that
// both members get records, and starts it; it is killed when the test
// ends if it still runs.
func start(t testing.TB, broker, process string) (*flowruntime.Execution, *kafka.Source) {
	t.Helper()
	src := strings.NewReplacer("${broker}", broker, "${process}", process, "${rate}", "4000").Replace(relay)
	g, err := all.Registry().BuildGraph(optest.Plan(t, src, "p"), operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var source *kafka.Source
	for _, n := range g.Nodes {
		if s, ok := n.Source.(*kafka.Source); ok {
			source = s
		}
	}
	ex := optest.Start(t, g)
	return ex, source
}

// TestTwoMembersOneKilled: member a starts alone, b joins (a's partitions
// are rebalanced cooperatively), b is killed with records in flight, and a
// ends up with every partition: every record arrives at least once, and
// the group's committed offsets reach the end of every partition.
func TestTwoMembersOneKilled(t *testing.T) {
	broker := cluster(t)
	const n = 20000
	produce(t, broker, "in", n)
	out := read(t, broker, "out")

	a, srcA := start(t, broker, "a")
	optest.Eventually(t, 30*time.Second, "a's first records", func() bool { return out.distinct() > 0 })
	b, srcB := start(t, broker, "b")
	optest.Eventually(t, 30*time.Second, "b's first records", func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.process["b"] > 0
	})
	b.Kill()
	_ = b.Wait()
	t.Logf("b killed after reading %d records; %d distinct ids written so far", srcB.Received(), out.distinct())

	optest.Eventually(t, 60*time.Second, "every id written", func() bool { return out.distinct() >= n })
	var ends int64
	optest.Eventually(t, 20*time.Second, "a's commits reaching the end of every partition", func() bool {
		ends = 0
		for _, p := range srcA.Checkpoint().([]kafka.Position) {
			ends += p.Offset
		}
		return ends == n
	})
	a.Stop()
	if err := a.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	for i := range n {
		if out.ids[i] == 0 {
			t.Fatalf("id %d never written", i)
		}
	}
	t.Logf("all %d records written: %d in out, %d duplicates; a wrote %d, b %d; a's commits %v",
		n, out.total, out.total-len(out.ids), out.process["a"], out.process["b"], srcA.Checkpoint())
}

func TestSchemaChecks(t *testing.T) {
	for _, tc := range []struct{ name, options, want string }{
		{"group", `topic = "in"`, "needs the option group"},
		{"broker", `topic = "in"
    group = "g"
    brokers = "kafka://x:9092"`, "must be host:port"},
		{"topic", `topic = "a b"
    group = "g"`, "must be 1 to 249 letters"},
		{"batch", `topic = "in"
    group = "g"
    batch = 0`, "batch must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.options
			if !strings.Contains(opts, "brokers") {
				opts += "\n    brokers = \"127.0.0.1:9092\""
			}
			src := "pipeline \"p\" {\n  source \"s\" {\n    kind = \"kafka\"\n    " + opts + "\n  }\n  sink \"o\" {\n    from = s\n    kind = \"discard\"\n  }\n}\n"
			diags := optest.PlanDiagnostics(t, src)
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("diagnostics = %v, want one saying %q", diags, tc.want)
			}
		})
	}
}

// TestLinesKeysAndMetadata: the lines codec, the metadata field and the
// sink's key, one member alone.
func TestLinesKeysAndMetadata(t *testing.T) {
	broker := cluster(t)
	produce(t, broker, "in", 100)
	flow := strings.ReplaceAll(`
pipeline "p" {
  source "in" {
    kind           = "kafka"
    brokers        = ["${broker}"]
    topic          = "in"
    group          = "lines"
    codec          = "lines"
    metadata_field = "kafka"
  }
  map "m" {
    from = in
    set {
      line = kafka.key + "@" + string(kafka.partition) + ":" + string(kafka.offset)
      key  = kafka.key
    }
  }
  sink "out" {
    from    = m
    kind    = "kafka"
    brokers = "${broker}"
    topic   = "out"
    codec   = "lines"
    key     = key
  }
}
`, "${broker}", broker)
	g, err := all.Registry().BuildGraph(optest.Plan(t, flow, "p"), operators.BuildEnv{Clock: flowruntime.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := flowruntime.Start(context.Background(), g, flowruntime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ex.Stop()
		if err := ex.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]string{}
	for len(got) < 100 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of 100 records", len(got))
		}
		fetches.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = fmt.Sprintf("%s|%d", r.Value, r.Partition) })
	}
	for key, value := range got {
		// The value names the key, partition and offset the record was
		// read from; produced with the same key, it went to the same
		// partition of out.
		var k string
		var from, offset, to int
		if _, err := fmt.Sscanf(strings.NewReplacer("@", " ", ":", " ", "|", " ").Replace(value), "%s %d %d %d", &k, &from, &offset, &to); err != nil || k != key || from != to {
			t.Fatalf("record with key %q in partition %d has value %q, want %q@%d:offset", key, to, value, key, to)
		}
	}
}
