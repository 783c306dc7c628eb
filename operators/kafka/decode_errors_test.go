package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/kafka"
	"github.com/flowrun/flowrun/operators/sink"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// produceTo writes values to partition part of topic, in order, keyed
// k<offset> when the partition starts empty.
func produceTo(t testing.TB, broker, topic string, part int32, first int, values ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i, v := range values {
		recs = append(recs, &kgo.Record{Partition: part, Key: fmt.Appendf(nil, "k%d", first+i), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// decodeRun is one run of a kafka source "in" in group "g", with its
// records and its dead letter's in memory sinks.
type decodeRun struct {
	ex           *flowruntime.Execution
	src          *kafka.Source
	out, rejects *sink.Memory
}

func startDecodeRun(t *testing.T, broker, onError string) *decodeRun {
	t.Helper()
	policy := fmt.Sprintf("on_error = %q", onError)
	rejects := ""
	if onError == "dead_letter" {
		policy += "\n    dead_letter = rejects"
		rejects = `
  sink "rejects" {
    kind = "discard"
  }`
	}
	flow := fmt.Sprintf(`
pipeline "p" {
  source "in" {
    kind            = "kafka"
    brokers         = %q
    topic           = "in"
    group           = "g"
    commit_interval = "50ms"
    session_timeout = "2s"
    %s
  }
  sink "out" {
    from = in
    kind = "discard"
  }%s
}
`, broker, policy, rejects)
	g, err := all.Registry().BuildGraph(optest.Plan(t, flow, "p"), operators.BuildEnv{Clock: flowruntime.RealClock{}, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	r := &decodeRun{out: &sink.Memory{}, rejects: &sink.Memory{}}
	for _, n := range g.Nodes {
		switch n.Name {
		case "in":
			r.src = n.Source.(*kafka.Source)
		case "out":
			n.Sink = r.out
		case "rejects":
			n.Sink = r.rejects
		}
	}
	r.ex = optest.Start(t, g)
	return r
}

// memIDs returns the id fields of what m holds, in order.
func memIDs(t testing.TB, m *sink.Memory) []int64 {
	t.Helper()
	var out []int64
	for _, f := range m.Fields() {
		id, ok := f["id"].(int64)
		if !ok {
			t.Fatalf("record without an integer id: %v", f)
		}
		out = append(out, id)
	}
	return out
}

// committed returns the source's committed offset of in/0.
func committed(src *kafka.Source) int64 {
	for _, p := range src.Checkpoint().([]kafka.Position) {
		if p.Topic == "in" && p.Partition == 0 {
			return p.Offset
		}
	}
	return -1
}

// TestUndecodableRecords: a record that is not JSON at offset 2 of in/0,
// between good ones, follows on_error. stop writes the records before it,
// commits up to it and fails the run with a record error, so the next run
// reads it again; skip and dead_letter count it, dead_letter hands it on as
// {line, topic, partition, offset, key}, and both commit past it, so the
// next run does not see it again.
func TestUndecodableRecords(t *testing.T) {
	for _, tc := range []struct {
		onError string
		fails   bool
		want    []int64
		// wantCommit is the offset committed at the end of the first run;
		// wantNext the ids the next run (under skip) writes.
		wantCommit int64
		wantNext   []int64
	}{
		{onError: "stop", fails: true, want: []int64{0, 1}, wantCommit: 2, wantNext: []int64{3, 4}},
		{onError: "skip", want: []int64{0, 1, 3}, wantCommit: 4, wantNext: []int64{4}},
		{onError: "dead_letter", want: []int64{0, 1, 3}, wantCommit: 4, wantNext: []int64{4}},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			broker := cluster(t)
			produceTo(t, broker, "in", 0, 0, `{"id":0}`, `{"id":1}`, `not json`, `{"id":3}`)
			r := startDecodeRun(t, broker, tc.onError)
			var err error
			if tc.fails {
				select {
				case <-r.ex.Done():
				case <-time.After(30 * time.Second):
					t.Fatal("the run did not fail on the undecodable record")
				}
				err = r.ex.Wait()
			} else {
				optest.Eventually(t, 30*time.Second, "the good records written", func() bool { return len(r.out.Records()) >= len(tc.want) })
				optest.Eventually(t, 10*time.Second, "the commit past the last record", func() bool { return committed(r.src) >= tc.wantCommit })
				r.ex.Stop()
				err = r.ex.Wait()
			}
			if got := memIDs(t, r.out); !slices.Equal(got, tc.want) {
				t.Errorf("written ids %v, want %v", got, tc.want)
			}
			st, _ := r.ex.Stats().Node("in")
			skipped, dead := int64(0), int64(0)
			switch tc.onError {
			case "skip":
				skipped = 1
			case "dead_letter":
				dead = 1
			}
			if st.Errors != 1 || st.Skipped != skipped || st.DeadLettered != dead {
				t.Errorf("source counters errors %d, skipped %d, dead-lettered %d; want 1, %d, %d",
					st.Errors, st.Skipped, st.DeadLettered, skipped, dead)
			}
			const where = "in/0 offset 2"
			if tc.fails {
				var se *flowruntime.StageError
				if !errors.As(err, &se) || !se.HasRecord || se.Stage != "in" || se.Position != 2 || !strings.Contains(err.Error(), where) {
					t.Fatalf("Wait = %v, want the record error of stage in at offset 2, naming %s", err, where)
				}
			} else if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if got := committed(r.src); got != tc.wantCommit {
				t.Errorf("committed offset of in/0 is %d, want %d", got, tc.wantCommit)
			}
			if tc.onError == "dead_letter" {
				dl := r.rejects.Fields()
				if len(dl) != 1 {
					t.Fatalf("dead letter holds %v, want one record", dl)
				}
				if msg, _ := dl[0]["error"].(string); !strings.Contains(msg, where) {
					t.Errorf("dead letter's error %q, want one naming %s", msg, where)
				}
				delete(dl[0], "error")
				want := map[string]any{"line": "not json", "topic": "in", "partition": int64(0), "offset": int64(2), "key": "k2", "stage": "in"}
				if diff := cmp.Diff(want, dl[0]); diff != "" {
					t.Errorf("dead-lettered record (-want +got):\n%s", diff)
				}
			}

			// The next run of the group starts at the committed offset.
			produceTo(t, broker, "in", 0, 4, `{"id":4}`)
			next := startDecodeRun(t, broker, "skip")
			optest.Eventually(t, 30*time.Second, "the next run's records", func() bool { return len(next.out.Records()) >= len(tc.wantNext) })
			optest.Eventually(t, 10*time.Second, "the next run's commit", func() bool { return committed(next.src) >= 5 })
			next.ex.Stop()
			if err := next.ex.Wait(); err != nil {
				t.Fatalf("next run: Wait: %v", err)
			}
			if got := memIDs(t, next.out); !slices.Equal(got, tc.wantNext) {
				t.Errorf("the next run wrote ids %v, want %v", got, tc.wantNext)
			}
		})
	}
}
