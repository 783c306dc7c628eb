package nats_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowrun/flowrun/operators/internal/optest"
	"github.com/flowrun/flowrun/operators/nats"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

const relay = `
pipeline "p" {
  source "in" {
    kind            = "nats"
    url             = "${url}"
    stream          = "IN"
    subject         = "in.>"
    durable         = "work"
    ack_wait        = "${ack_wait}"
    max_ack_pending = ${max_ack_pending}
    metadata_field  = "nats"
  }
  map "tag" {
    from = in
    set {
      seq     = nats.sequence
      process = "${process}"
      nats    = nil
    }
  }
  sink "out" {
    from    = tag
    kind    = "nats"
    url     = "${url}"
    subject = "out." + string(id % 2)
  }
}
`

// relayVars are the values of relay's placeholders.
func relayVars(url, process string) map[string]string {
	return map[string]string{"url": url, "process": process, "ack_wait": "5s", "max_ack_pending": "0"}
}

// position returns the counts of the nats source of g.
func position(t *testing.T, g *flowruntime.Graph) nats.Position {
	t.Helper()
	for _, n := range g.Nodes {
		if s, ok := n.Source.(*nats.Source); ok {
			return s.Checkpoint().(nats.Position)
		}
	}
	t.Fatal("no nats source in the graph")
	return nats.Position{}
}

func TestRelayAcknowledgesWhatWasStored(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("IN", "in.>")
	c.stream("OUT", "out.>")
	const n = 5000
	c.publish("in.a", 0, n)

	ex, g := start(t, relay, "p", relayVars(url, "one"))
	optest.Eventually(t, 30*time.Second, "every message relayed", func() bool { return c.count("OUT") >= n })
	optest.Eventually(t, 10*time.Second, "every message acknowledged", func() bool {
		info := c.consumerInfo("IN", "work")
		return info.NumAckPending == 0 && info.AckFloor.Stream == n
	})
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	msgs := c.read("OUT")
	if len(msgs) != n {
		t.Fatalf("OUT holds %d messages, want %d", len(msgs), n)
	}
	if m := missing(ids(msgs), n); len(m) > 0 {
		t.Fatalf("ids missing from OUT: %v", m)
	}
	for _, m := range msgs {
		id := int(m.fields["id"].(float64))
		seq := int(m.fields["seq"].(float64))
		if want := fmt.Sprintf("out.%d", id%2); m.subject != want {
			t.Fatalf("id %d published to %q, want %q", id, m.subject, want)
		}
		if want := fmt.Sprintf("p.in.%d", seq); m.id != want {
			t.Fatalf("id %d has message id %q, want %q", id, m.id, want)
		}
		if seq != id+1 || m.fields["process"] != "one" || m.fields["nats"] != nil {
			t.Fatalf("record %v: want seq = id+1, process = one and no nats field", m.fields)
		}
	}
	if pos := position(t, g); pos.Redelivered != 0 || pos.Received != n || pos.Acked != n || pos.Pending != 0 {
		t.Errorf("source counts %+v: want %d received and acknowledged, none redelivered or pending", pos, n)
	}
}

func TestMaxAckPendingDefaultsToEdgeCapacity(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("IN", "in.>")
	c.stream("OUT", "out.>")
	src := strings.Replace(relay, `pipeline "p" {`, `pipeline "p" {
  edge_capacity = 64`, 1)
	ex, _ := start(t, src, "p", relayVars(url, "one"))
	var got int
	optest.Eventually(t, 10*time.Second, "the consumer", func() bool {
		if info, err := c.js.Consumer(t.Context(), "IN", "work"); err == nil {
			got = info.CachedInfo().Config.MaxAckPending
			return true
		}
		return false
	})
	if got != 64 {
		t.Errorf("consumer max_ack_pending = %d, want the edge capacity 64", got)
	}
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// TestSlowSinkBoundsUnacknowledged samples the consumer while a throttled
// pipeline drains it: what is delivered and not acknowledged never exceeds
// max_ack_pending, and reaches it (the bound is what holds the source back).
func TestSlowSinkBoundsUnacknowledged(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("IN", "in.>")
	c.stream("OUT", "out.>")
	const n, bound = 3000, 100
	c.publish("in.a", 0, n)
	src := strings.Replace(relay, `  sink "out" {
    from    = tag`, `  throttle "slow" {
    from  = tag
    rate  = 2000
    per   = "1s"
    burst = 10
  }
  sink "out" {
    from    = slow`, 1)
	vars := relayVars(url, "slow")
	vars["max_ack_pending"] = fmt.Sprint(bound)
	// Messages in the pipeline are reported in progress every ack_wait/2;
	// a long ack_wait keeps a machine under load from starving that.
	vars["ack_wait"] = "30s"
	ex, g := start(t, src, "p", vars)
	optest.Eventually(t, 10*time.Second, "the consumer", func() bool {
		_, err := c.js.Consumer(t.Context(), "IN", "work")
		return err == nil
	})

	peak, samples := 0, 0
	for c.count("OUT") < n {
		info := c.consumerInfo("IN", "work")
		peak = max(peak, info.NumAckPending)
		samples++
		if info.NumAckPending > bound {
			t.Fatalf("%d messages unacknowledged, more than max_ack_pending = %d", info.NumAckPending, bound)
		}
		if samples > 2000 {
			t.Fatalf("still running after %d samples; OUT holds %d", samples, c.count("OUT"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d samples, peak of unacknowledged messages %d (bound %d)", samples, peak, bound)
	if peak < bound/2 {
		t.Errorf("peak of unacknowledged messages %d: the throttle should have held about %d", peak, bound)
	}
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if info, pos := c.consumerInfo("IN", "work"), position(t, g); pos.Redelivered != 0 || info.NumAckPending != 0 {
		t.Errorf("redelivered %d, unacknowledged %d; want 0 and 0: ack_wait passes only for messages of a dead process", pos.Redelivered, info.NumAckPending)
	}
}

// TestKilledExecutionIsRedelivered kills one execution with messages in
// flight; a second one on the same durable consumer gets them again.
func TestKilledExecutionIsRedelivered(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("IN", "in.>")
	c.stream("OUT", "out.>")
	const n = 20000
	c.publish("in.a", 0, n)
	vars := relayVars(url, "first")
	vars["ack_wait"] = "1s"
	first, _ := start(t, relay, "p", vars)
	optest.Eventually(t, 30*time.Second, "a quarter relayed", func() bool { return c.count("OUT") >= n/4 })
	first.Kill()
	if err := first.Wait(); !errors.Is(err, flowruntime.ErrKilled) {
		t.Fatalf("Wait after Kill = %v", err)
	}
	unacked := c.consumerInfo("IN", "work").NumAckPending

	vars["process"] = "second"
	second, g := start(t, relay, "p", vars)
	optest.Eventually(t, 60*time.Second, "every id relayed", func() bool { return c.count("OUT") >= n })
	optest.Eventually(t, 10*time.Second, "every message acknowledged", func() bool {
		return c.consumerInfo("IN", "work").AckFloor.Stream == n
	})
	second.Stop()
	if err := second.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	msgs := c.read("OUT")
	seen := ids(msgs)
	if m := missing(seen, n); len(m) > 0 {
		t.Fatalf("ids missing from OUT: %v", m)
	}
	redelivered := position(t, g).Redelivered
	t.Logf("killed with %d unacknowledged; %d redelivered; OUT holds %d messages for %d ids", unacked, redelivered, len(msgs), len(seen))
	if unacked > 0 && redelivered == 0 {
		t.Errorf("%d messages were unacknowledged at the kill but none was redelivered", unacked)
	}
}

// TestUndecodableMessages: a message that is not JSON (stream sequence 3,
// between good ones) follows on_error. stop writes the messages before it
// and fails the run with a record error, leaving it unacknowledged, so the
// next run gets it again; skip and dead_letter count it, dead_letter hands
// it on as {line, subject, sequence}, and both acknowledge it, so it is not
// delivered again.
func TestUndecodableMessages(t *testing.T) {
	const flow = `
pipeline "p" {
  source "in" {
    kind     = "nats"
    url      = "${url}"
    stream   = "IN"
    durable  = "work"
    ack_wait = "1s"
    on_error = "${on_error}"
    ${dead_letter}
  }
  sink "out" {
    from    = in
    kind    = "nats"
    url     = "${url}"
    subject = "out.x"
  }
  ${rejects}
}
`
	const rejects = `sink "rejects" {
    kind    = "nats"
    url     = "${url}"
    subject = "rejects.x"
  }`
	for _, tc := range []struct {
		onError string
		fails   bool
		// want are the ids written by the first run, wantNext those the
		// next run (under skip) adds.
		want, wantNext []int
	}{
		{onError: "stop", fails: true, want: []int{0, 1}, wantNext: []int{3, 4}},
		{onError: "skip", want: []int{0, 1, 3}, wantNext: []int{4}},
		{onError: "dead_letter", want: []int{0, 1, 3}, wantNext: []int{4}},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			url := startServer(t)
			c := dial(t, url)
			c.stream("IN", "in.>")
			c.stream("OUT", "out.>")
			c.stream("REJECTS", "rejects.>")
			for _, m := range []string{`{"id":0}`, `{"id":1}`, `not json`, `{"id":3}`} {
				if _, err := c.js.Publish(t.Context(), "in.a", []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			vars := map[string]string{"url": url, "on_error": tc.onError, "dead_letter": "", "rejects": ""}
			if tc.onError == "dead_letter" {
				vars["dead_letter"] = "dead_letter = rejects"
				vars["rejects"] = strings.ReplaceAll(rejects, "${url}", url)
			}
			ex, _ := start(t, flow, "p", vars)
			var err error
			if tc.fails {
				select {
				case <-ex.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the source did not fail on an undecodable message")
				}
				err = ex.Wait()
			} else {
				optest.Eventually(t, 10*time.Second, "the good messages relayed", func() bool { return c.count("OUT") >= len(tc.want) })
				optest.Eventually(t, 10*time.Second, "every message acknowledged", func() bool {
					return c.consumerInfo("IN", "work").AckFloor.Stream == 4
				})
				ex.Stop()
				err = ex.Wait()
			}
			if got := sortedIDs(c.read("OUT")); !slices.Equal(got, tc.want) {
				t.Errorf("OUT holds ids %v, want %v", got, tc.want)
			}
			st, _ := ex.Stats().Node("in")
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
			const where = `message 3 on "in.a"`
			if tc.fails {
				var se *flowruntime.StageError
				if !errors.As(err, &se) || !se.HasRecord || se.Stage != "in" || se.Position != 3 || !strings.Contains(err.Error(), where) {
					t.Fatalf("Wait = %v, want the record error of stage in at sequence 3, naming %s", err, where)
				}
				if floor := c.consumerInfo("IN", "work").AckFloor.Stream; floor != 2 {
					t.Errorf("acknowledged up to %d after the failed run, want 2 (the bad message unacknowledged)", floor)
				}
			} else if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if tc.onError == "dead_letter" {
				dl := c.read("REJECTS")
				if len(dl) != 1 {
					t.Fatalf("REJECTS holds %v, want one message", dl)
				}
				got := dl[0].fields
				if msg, _ := got["error"].(string); !strings.Contains(msg, where) {
					t.Errorf("dead letter's error %q, want one naming %s", msg, where)
				}
				delete(got, "error")
				want := map[string]any{"line": "not json", "subject": "in.a", "sequence": 3.0, "stage": "in"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("dead-lettered message (-want +got):\n%s", diff)
				}
			}

			// The next run gets what is unacknowledged again.
			if _, err := c.js.Publish(t.Context(), "in.a", []byte(`{"id":4}`)); err != nil {
				t.Fatal(err)
			}
			vars["on_error"], vars["dead_letter"], vars["rejects"] = "skip", "", ""
			next, _ := start(t, flow, "p", vars)
			optest.Eventually(t, 15*time.Second, "every message acknowledged", func() bool {
				return c.consumerInfo("IN", "work").AckFloor.Stream == 5
			})
			next.Stop()
			if err := next.Wait(); err != nil {
				t.Fatalf("next run: Wait: %v", err)
			}
			if got := sortedIDs(c.read("OUT")); !slices.Equal(got, append(tc.want, tc.wantNext...)) {
				t.Errorf("after the next run OUT holds ids %v, want %v", got, append(tc.want, tc.wantNext...))
			}
			// Only a message left unacknowledged comes again.
			wantAgain := int64(0)
			if tc.fails {
				wantAgain = 1
			}
			if st, _ := next.Stats().Node("in"); st.Skipped != wantAgain {
				t.Errorf("the next run skipped %d undecodable messages, want %d", st.Skipped, wantAgain)
			}
		})
	}
}

// TestUndecodableCoreMessages: with core NATS, a message that is not JSON
// follows on_error the same way: stop writes the messages before it and
// fails the run; skip and dead_letter go on, and dead_letter hands it on
// as {line, subject}.
func TestUndecodableCoreMessages(t *testing.T) {
	const flow = `
pipeline "p" {
  source "in" {
    kind      = "nats"
    url       = "${url}"
    jetstream = false
    subject   = "core.in"
    on_error  = "${on_error}"
    ${dead_letter}
  }
  sink "out" {
    from      = in
    kind      = "nats"
    url       = "${url}"
    jetstream = false
    subject   = "core.out"
  }
  ${rejects}
}
`
	for _, tc := range []struct {
		onError string
		fails   bool
		want    []int
	}{
		{onError: "stop", fails: true, want: []int{0, 1}},
		{onError: "skip", want: []int{0, 1, 3}},
		{onError: "dead_letter", want: []int{0, 1, 3}},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			url := startServer(t)
			c := dial(t, url)
			out, err := c.nc.SubscribeSync("core.out")
			if err != nil {
				t.Fatal(err)
			}
			rej, err := c.nc.SubscribeSync("core.rejects")
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"url": url, "on_error": tc.onError, "dead_letter": "", "rejects": ""}
			if tc.onError == "dead_letter" {
				vars["dead_letter"] = "dead_letter = rejects"
				vars["rejects"] = `sink "rejects" {
    kind      = "nats"
    url       = "` + url + `"
    jetstream = false
    subject   = "core.rejects"
  }`
			}
			ex, _ := start(t, flow, "p", vars)
			// Core NATS delivers only to subscribers present: ping until
			// the pipeline's subscription is live.
			optest.Eventually(t, 10*time.Second, "the subscription", func() bool {
				if err := c.nc.Publish("core.in", []byte(`{"id":-1}`)); err != nil {
					t.Fatal(err)
				}
				_, err := out.NextMsg(50 * time.Millisecond)
				return err == nil
			})
			for _, m := range []string{`{"id":0}`, `{"id":1}`, `not json`, `{"id":3}`} {
				if err := c.nc.Publish("core.in", []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			var got []int
			for len(got) < len(tc.want) {
				m, err := out.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatalf("after ids %v: %v", got, err)
				}
				var v struct{ ID int }
				if err := json.Unmarshal(m.Data, &v); err != nil {
					t.Fatalf("message %q: %v", m.Data, err)
				}
				if v.ID >= 0 {
					got = append(got, v.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("core.out got ids %v, want %v", got, tc.want)
			}
			if tc.fails {
				select {
				case <-ex.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the source did not fail on an undecodable message")
				}
				var se *flowruntime.StageError
				if err := ex.Wait(); !errors.As(err, &se) || !se.HasRecord || !strings.Contains(err.Error(), `on "core.in"`) {
					t.Fatalf("Wait = %v, want the record error of a message on core.in", err)
				}
				return
			}
			if tc.onError == "dead_letter" {
				m, err := rej.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatalf("dead letter: %v", err)
				}
				var dl map[string]any
				if err := json.Unmarshal(m.Data, &dl); err != nil {
					t.Fatalf("dead letter %q: %v", m.Data, err)
				}
				if msg, _ := dl["error"].(string); !strings.Contains(msg, `on "core.in"`) {
					t.Errorf("dead letter's error %q, want one naming core.in", msg)
				}
				delete(dl, "error")
				if diff := cmp.Diff(map[string]any{"line": "not json", "subject": "core.in", "stage": "in"}, dl); diff != "" {
					t.Errorf("dead-lettered message (-want +got):\n%s", diff)
				}
			}
			ex.Stop()
			if err := ex.Wait(); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			st, _ := ex.Stats().Node("in")
			if st.Errors != 1 || st.Skipped+st.DeadLettered != 1 {
				t.Errorf("source counters %+v, want one error, skipped or dead-lettered", st)
			}
		})
	}
}

// sortedIDs returns the id fields of msgs, in order.
func sortedIDs(msgs []stored) []int {
	var out []int
	for _, m := range msgs {
		out = append(out, int(m.fields["id"].(float64)))
	}
	slices.Sort(out)
	return out
}

func TestCoreNATS(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	const flow = `
pipeline "p" {
  source "in" {
    kind      = "nats"
    url       = "${url}"
    jetstream = false
    subject   = "core.in"
    queue     = "workers"
    codec     = "lines"
  }
  sink "out" {
    from      = in
    kind      = "nats"
    url       = "${url}"
    jetstream = false
    subject   = "core.out"
    codec     = "lines"
  }
}
`
	sub, err := c.nc.SubscribeSync("core.out")
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := start(t, flow, "p", map[string]string{"url": url})
	// Core NATS delivers only to subscribers present: ping until the
	// pipeline's subscription is live.
	optest.Eventually(t, 10*time.Second, "the subscription", func() bool {
		if err := c.nc.Publish("core.in", []byte("ping")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(50 * time.Millisecond)
		return err == nil && string(m.Data) == "ping"
	})
	for i := range 100 {
		if err := c.nc.Publish("core.in", fmt.Appendf(nil, "line %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < 100 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d lines: %v", len(got), err)
		}
		if s := string(m.Data); s != "ping" {
			got[s] = true
		}
	}
	if !got["line 0"] || !got["line 99"] {
		t.Errorf("lines received: %v", got)
	}
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// TestSinkMessageIDs publishes generated records whose message ids
// repeat: JetStream keeps one message per id.
func TestSinkMessageIDs(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("OUT", "out.>")
	flow := `
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 10
    template = {id: seq}
  }
  sink "out" {
    from    = gen
    kind    = "nats"
    url     = "${url}"
    subject = "out.ok"
    msg_id  = "id-" + string(id % 5)
  }
}
`
	ex, _ := start(t, flow, "p", map[string]string{"url": url})
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	msgs := c.read("OUT")
	var got []string
	for _, m := range msgs {
		got = append(got, fmt.Sprintf("%s:%v", m.id, m.fields["id"]))
	}
	if want := "id-0:0 id-1:1 id-2:2 id-3:3 id-4:4"; strings.Join(got, " ") != want {
		t.Errorf("OUT holds %q, want %q", strings.Join(got, " "), want)
	}
}

// TestSinkPermanentError: a record whose subject is not a string is
// dead-lettered at once, not retried, and the good records of its batch
// are published.
func TestSinkPermanentError(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("OUT", "out.>")
	rejects := filepath.Join(t.TempDir(), "rejects.jsonl")
	flow := `
pipeline "p" {
  source "gen" {
    kind     = "generate"
    count    = 4
    template = {id: seq, to: seq == 3 ? 42 : "out.ok"}
  }
  sink "out" {
    from        = gen
    kind        = "nats"
    url         = "${url}"
    subject     = to
    on_error    = "dead_letter"
    dead_letter = rejects
  }
  sink "rejects" {
    kind = "file"
    path = "${rejects}"
  }
}
`
	ex, _ := start(t, flow, "p", map[string]string{"url": url, "rejects": rejects})
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got := c.count("OUT"); got != 3 {
		t.Errorf("OUT holds %d messages, want the 3 good ones", got)
	}
	data, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), "\n"); lines != 1 || !strings.Contains(string(data), "to yielded 42 (int64), not a subject") {
		t.Errorf("rejects (%d lines) = %s", lines, data)
	}
	if st, _ := ex.Stats().Node("out"); st.Retries != 0 {
		t.Errorf("the sink retried %d times; a subject that is not a string is permanent", st.Retries)
	}
}

func TestSchemaChecks(t *testing.T) {
	for _, tc := range []struct {
		name, stage, want string
	}{
		{"durable required", `source "s" {
    kind   = "nats"
    stream = "IN"
  }`, "durable is required"},
		{"stream required", `source "s" {
    kind    = "nats"
    durable = "d"
  }`, "stream is required"},
		{"bad durable", `source "s" {
    kind    = "nats"
    stream  = "IN"
    durable = "a.b"
  }`, "must not contain dots"},
		{"core needs a subject", `source "s" {
    kind      = "nats"
    jetstream = false
  }`, "subject is required with jetstream = false"},
		{"core has no durable", `source "s" {
    kind      = "nats"
    jetstream = false
    subject   = "a"
    durable   = "d"
  }`, "durable is for JetStream"},
		{"bad url", `source "s" {
    kind    = "nats"
    url     = "http://x"
    stream  = "IN"
    durable = "d"
  }`, "must name a server as nats://"},
		{"bad subject", `source "s" {
    kind    = "nats"
    stream  = "IN"
    durable = "d"
    subject = "a..b"
  }`, "empty token"},
		{"short ack wait", `source "s" {
    kind     = "nats"
    stream   = "IN"
    durable  = "d"
    ack_wait = "10ms"
  }`, "ack_wait must be at least 1s"},
		{"batch", `source "s" {
    kind    = "nats"
    stream  = "IN"
    durable = "d"
    batch   = 0
  }`, "batch must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "pipeline \"p\" {\n  " + tc.stage + "\n  sink \"o\" {\n    from = s\n    kind = \"discard\"\n  }\n}\n"
			diags := optest.PlanDiagnostics(t, src)
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("diagnostics = %v, want one saying %q", diags, tc.want)
			}
		})
	}
}

func TestDeliverNew(t *testing.T) {
	url := startServer(t)
	c := dial(t, url)
	c.stream("IN", "in.>")
	c.stream("OUT", "out.>")
	c.publish("in.a", 0, 10)
	src := strings.Replace(relay, `metadata_field  = "nats"`, `metadata_field  = "nats"
    deliver         = "new"`, 1)
	ex, _ := start(t, src, "p", relayVars(url, "new"))
	optest.Eventually(t, 10*time.Second, "the consumer", func() bool {
		_, err := c.js.Consumer(t.Context(), "IN", "work")
		return err == nil
	})
	c.publish("in.a", 10, 5)
	optest.Eventually(t, 10*time.Second, "the new messages relayed", func() bool { return c.acked("IN", "work") == 15 })
	ex.Stop()
	if err := ex.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	seen := ids(c.read("OUT"))
	if len(seen) != 5 || seen[10] != 1 || seen[14] != 1 {
		t.Errorf("OUT holds ids %v, want only 10 to 14 (published after the consumer was made)", seen)
	}
}
