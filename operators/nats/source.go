package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "nats",
		Doc: "Reads messages from a JetStream durable pull consumer shared by every process running the pipeline, acknowledging each once its records are finished; with jetstream = false, from a lossy core NATS subscription. A message it cannot decode follows on_error as {line, subject, sequence} (no sequence with core NATS): skipped or dead-lettered, it is acknowledged like a finished one; under stop (the default) every message before it is written, then the run fails naming the message's sequence and subject, and it stays unacknowledged, so JetStream delivers it again.",
		Options: []planner.OptionSpec{
			urlOption,
			{Name: "stream", Type: planner.String,
				Doc: "The JetStream stream read; required unless jetstream = false."},
			{Name: "durable", Type: planner.String,
				Doc: "The durable consumer's name; required unless jetstream = false. Every process using the same name shares the messages, and the consumer keeps what is acknowledged across restarts."},
			{Name: "subject", Type: planner.String,
				Doc: "Only messages on this subject (wildcards allowed) are read: the consumer's filter. With jetstream = false it is the subject subscribed to, and required."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "How a message is decoded: json takes its payload as one JSON object, lines gives {line: \"payload\"}."},
			{Name: "batch", Type: planner.Int, Default: int64(256),
				Doc: "The most messages asked for by one pull. The next pull is sent only once the pipeline took the previous one (Emit returned)."},
			{Name: "max_wait", Type: planner.Duration, Default: time.Second,
				Doc: "How long one pull waits for messages before the source asks again."},
			{Name: "ack_wait", Type: planner.Duration, Default: 30 * time.Second,
				Doc: "How long JetStream waits for a message's acknowledgement before delivering it again, to this process or another. Messages still in the pipeline are reported in progress every ack_wait/2, so only a process that died lets them go."},
			{Name: "max_ack_pending", Type: planner.Int, Default: int64(0),
				Doc: "The most messages delivered and not yet acknowledged: the consumer's limit, over all processes, and each process's own. 0 ties it to the capacity of the source's output edge (edge_capacity, 1024 by default); it should not exceed that capacity."},
			{Name: "deliver", Type: planner.Enum, Enum: []string{"all", "new"}, Default: "all",
				Doc: "Where a consumer that does not exist yet starts: at the stream's first message (all) or with messages stored from now on (new)."},
			{Name: "metadata_field", Type: planner.String, Default: "",
				Doc: "When set, each record gets this field holding the message's {subject, stream, sequence, delivered} (sequence and delivered only with JetStream)."},
			{Name: "queue", Type: planner.String, Default: "",
				Doc: "With jetstream = false: the queue group, so that several processes share the subject's messages instead of each receiving all of them."},
			jetstreamOption("Read through JetStream (at-least-once). false subscribes with core NATS, which is lossy: messages published while no process is subscribed, or dropped when the process falls behind, are gone."),
		},
		Check: checkSource,
	},
	Build: buildSource,
}

func checkSource(o planner.Options) error {
	var p operators.Problems
	checkURL(&p, o)
	checkSubject(&p, "subject", o.String("subject"), true)
	if o.Bool("jetstream") {
		if o.String("stream") == "" {
			p.Add("stream", "the stream is required: name the JetStream stream to read")
		}
		switch d := o.String("durable"); {
		case d == "":
			p.Add("durable", "the durable is required: every process of the pipeline uses this consumer name")
		case strings.ContainsAny(d, ".*> \t\r\n"):
			p.Add("durable", "the durable %q must not contain dots, wildcards or white space", d)
		}
		if o.String("queue") != "" {
			p.Add("queue", "the queue is for jetstream = false: processes share a durable consumer instead")
		}
	} else {
		if o.String("subject") == "" {
			p.Add("subject", "the subject is required with jetstream = false: name the subject to subscribe to")
		}
		for _, name := range []string{"stream", "durable"} {
			if o.String(name) != "" {
				p.Add(name, "the %s is for JetStream: remove it or set jetstream = true", name)
			}
		}
	}
	p.Min(o, "batch", 1)
	p.Min(o, "max_ack_pending", 0)
	p.MinDuration(o, "max_wait", 10*time.Millisecond, false)
	p.MinDuration(o, "ack_wait", time.Second, false)
	return p.Err()
}

func buildSource(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
	o := st.Options
	capacity := planner.DefaultEdgeCapacity
	if len(st.Outputs) > 0 && st.Outputs[0].Capacity > 0 {
		capacity = st.Outputs[0].Capacity
	}
	bound := int(o.Int("max_ack_pending"))
	switch {
	case bound == 0:
		bound = capacity
	case bound > capacity:
		env.Logger.Warn("max_ack_pending exceeds the capacity of the source's output edge: messages wait in this process rather than in the stream",
			"max_ack_pending", bound, "edge_capacity", capacity)
	}
	s := &Source{
		stage:      st.Name,
		pipeline:   env.Pipeline,
		url:        o.String("url"),
		stream:     o.String("stream"),
		durable:    o.String("durable"),
		subject:    o.String("subject"),
		codec:      o.String("codec"),
		batch:      int(o.Int("batch")),
		maxWait:    o.Duration("max_wait"),
		ackWait:    o.Duration("ack_wait"),
		bound:      bound,
		deliverNew: o.String("deliver") == "new",
		metaField:  o.String("metadata_field"),
		queue:      o.String("queue"),
		jetstream:  o.Bool("jetstream"),
		clock:      env.Clock,
		log:        env.Logger,
		held:       map[uint64][]jetstream.Msg{},
		room:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
	}
	if s.batch > s.bound {
		s.batch = s.bound
	}
	return &flowruntime.Node{Source: s}, nil
}

// Source is the nats source. With JetStream it pulls from a durable
// consumer: a pull asks for at most batch messages and never more than
// leaves max_ack_pending messages unacknowledged, the next pull is sent once
// Emit returned, and a message is acknowledged when the runtime reports
// every record derived from it finished. Messages still in the pipeline are
// reported in progress every ack_wait/2 so JetStream does not hand them to
// another process while this one lives. Close drains the connection.
type Source struct {
	stage, pipeline  string
	url              string
	stream, durable  string
	subject, queue   string
	codec            string
	batch, bound     int
	maxWait, ackWait time.Duration
	deliverNew       bool
	metaField        string
	jetstream        bool
	clock            flowruntime.Clock
	log              hclog.Logger
	dec              codec.Decoder
	// pullRedelivered and lastRedelivered describe the redelivered
	// messages of the current pull, logged once per pull.
	pullRedelivered int
	lastRedelivered uint64

	mu   sync.Mutex
	nc   *natsgo.Conn
	held map[uint64][]jetstream.Msg
	next uint64
	// heartbeat is the goroutine reporting held messages in progress.
	heartbeat sync.WaitGroup
	closed    bool

	// pending counts messages received and not yet acknowledged; room
	// wakes a Run waiting for pending to fall.
	pending atomic.Int64
	room    chan struct{}
	quit    chan struct{}

	received, acked, redelivered, skipped, dropped atomic.Int64
}

// Run reads messages until ctx ends.
func (s *Source) Run(ctx context.Context, out flowruntime.Emitter) error {
	nc, err := s.connect()
	if err != nil {
		return err
	}
	if !s.jetstream {
		return s.runCore(ctx, nc, out)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cons, err := s.consumer(ctx, js)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.startHeartbeat()
	backoff := 100 * time.Millisecond
	for {
		if err := s.waitForRoom(ctx); err != nil {
			return nil
		}
		n := min(s.batch, s.bound-int(s.pending.Load()))
		err := s.pull(ctx, cons, n, out)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, new(fatalError)):
			return err
		case err != nil:
			s.log.Warn("pull failed, trying again", "error", err, "backoff", backoff)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				if c, cerr := s.consumer(ctx, js); cerr == nil {
					cons = c
				}
			}
			if s.clock.Sleep(ctx, backoff) != nil {
				return nil
			}
			backoff = min(2*backoff, 5*time.Second)
		default:
			backoff = 100 * time.Millisecond
		}
	}
}

// linger is how long a pull's messages are gathered into one batch once
// none is ready at once: long enough for the rest of a pull in flight to
// arrive, short enough not to matter at low rates.
const linger = 2 * time.Millisecond

// fatalError is an error that ends the source (an undecodable message
// under on_error = stop) rather than one a later pull may not meet.
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

func (s *Source) connect() (*natsgo.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("source closed before it ran")
	}
	nc, err := connect(s.url, "flowrun "+s.pipeline+"/"+s.stage, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s.nc = nc
	return nc, nil
}

// consumer creates the durable consumer, or binds to it when it exists
// with the same configuration.
func (s *Source) consumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.durable,
		FilterSubject: s.subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.ackWait,
		MaxAckPending: s.bound,
		MaxWaiting:    512,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if s.deliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(cctx, s.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %q on stream %q: %w", s.durable, s.stream, err)
	}
	return cons, nil
}

// waitForRoom waits until fewer than bound messages are unacknowledged.
func (s *Source) waitForRoom(ctx context.Context) error {
	for int(s.pending.Load()) >= s.bound {
		select {
		case <-s.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pull sends one pull request for n messages and emits what it delivers.
// Records are emitted once no further message arrives within linger, so a
// partly filled pull does not hold back what already arrived.
func (s *Source) pull(ctx context.Context, cons jetstream.Consumer, n int, out flowruntime.Emitter) error {
	fctx, cancel := context.WithTimeout(ctx, s.maxWait)
	defer cancel()
	batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	msgs := batch.Messages()
	var recs []flowruntime.Record
	var got []jetstream.Msg
	flush := func() error {
		if len(got) == 0 {
			return nil
		}
		err := s.emit(ctx, out, recs, got)
		recs, got = nil, nil
		return err
	}
	for open := true; open; {
		var m jetstream.Msg
		select {
		case m, open = <-msgs:
		default:
			// Nothing ready: wait a moment for the rest of the pull,
			// then hand on what arrived rather than hold it back.
			select {
			case m, open = <-msgs:
			case <-s.clock.After(linger):
				if err := flush(); err != nil {
					return err
				}
				m, open = <-msgs
			}
		}
		if !open {
			break
		}
		s.pending.Add(1)
		s.received.Add(1)
		rec, ok, err := s.record(m)
		var bad *badMessage
		switch {
		case errors.As(err, &bad):
			// The messages before it are handed on first: under stop
			// they are written before the run fails.
			if err := flush(); err != nil {
				return err
			}
			if err := s.reject(ctx, out, bad); err != nil {
				return err
			}
			// Skipped or dead-lettered: finished, so it is not
			// delivered again.
			s.skipped.Add(1)
			s.ack(m)
			s.release(1)
			continue
		case err != nil:
			return err
		case !ok:
			continue
		}
		recs = append(recs, rec)
		got = append(got, m)
	}
	if err := flush(); err != nil {
		return err
	}
	if s.pullRedelivered > 0 {
		s.log.Info("messages delivered again", "count", s.pullRedelivered, "last_sequence", s.lastRedelivered,
			"redelivered_total", s.redelivered.Load())
		s.pullRedelivered = 0
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("pull: %w", err)
	}
	return nil
}

// record decodes one JetStream message; ok is false when it was skipped
// (it had no metadata; it is acknowledged then). A message that cannot be
// decoded gives a *badMessage error.
func (s *Source) record(m jetstream.Msg) (flowruntime.Record, bool, error) {
	md, err := m.Metadata()
	if err != nil {
		s.ack(m)
		s.release(1)
		s.log.Warn("skipping a message without JetStream metadata", "subject", m.Subject(), "error", err)
		return flowruntime.Record{}, false, nil
	}
	if md.NumDelivered > 1 {
		s.redelivered.Add(1)
		s.pullRedelivered++
		s.lastRedelivered = md.Sequence.Stream
	}
	fields, err := s.decode(m.Data())
	if err != nil {
		return flowruntime.Record{}, false, &badMessage{
			rec: flowruntime.Record{
				Fields: map[string]any{"line": string(m.Data()), "subject": m.Subject(), "sequence": int64(md.Sequence.Stream)},
				Meta:   flowruntime.Meta{Source: s.stage, Position: int64(md.Sequence.Stream), Time: s.clock.Now()},
			},
			err: fmt.Errorf("message %d on %q: %w", md.Sequence.Stream, m.Subject(), err),
		}
	}
	if s.metaField != "" {
		fields[s.metaField] = map[string]any{
			"subject":   m.Subject(),
			"stream":    md.Stream,
			"sequence":  int64(md.Sequence.Stream),
			"delivered": int64(md.NumDelivered),
		}
	}
	return flowruntime.Record{
		Fields: fields,
		Meta:   flowruntime.Meta{Source: s.stage, Position: int64(md.Sequence.Stream), Time: s.clock.Now()},
	}, true, nil
}

// badMessage is a message the source cannot decode: the record handed to
// the stage's on_error policy ({line, subject, sequence}) and its error.
type badMessage struct {
	rec flowruntime.Record
	err error
}

func (b *badMessage) Error() string { return b.err.Error() }

// reject hands bad to the stage's on_error policy (runtime.Reject). It
// returns nil when the policy lets the source go on, ctx's error when ctx
// ended, and otherwise the error that fails the run, as a fatalError.
func (s *Source) reject(ctx context.Context, out flowruntime.Emitter, bad *badMessage) error {
	if err := flowruntime.Reject(ctx, out, bad.rec, bad.err); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fatalError{err}
	}
	return nil
}

func (s *Source) decode(data []byte) (map[string]any, error) {
	if s.codec == "lines" {
		return map[string]any{"line": string(data)}, nil
	}
	return s.dec.DecodeObject(data)
}

// emit hands recs to the pipeline; msgs are acknowledged once they are all
// finished.
func (s *Source) emit(ctx context.Context, out flowruntime.Emitter, recs []flowruntime.Record, msgs []jetstream.Msg) error {
	s.mu.Lock()
	id := s.next
	s.next++
	s.held[id] = msgs
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		delete(s.held, id)
		s.mu.Unlock()
		for _, m := range msgs {
			s.ack(m)
		}
		s.acked.Add(int64(len(msgs)))
		s.release(len(msgs))
	}
	if err := out.Emit(ctx, recs, done); err != nil {
		// Not emitted: the messages stay unacknowledged and JetStream
		// delivers them again after ack_wait.
		s.mu.Lock()
		delete(s.held, id)
		s.mu.Unlock()
		s.release(len(msgs))
		return err
	}
	return nil
}

func (s *Source) ack(m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		s.log.Debug("acknowledgement not sent; the message will be delivered again", "error", err)
	}
}

// release returns n messages' room to Run.
func (s *Source) release(n int) {
	s.pending.Add(-int64(n))
	select {
	case s.room <- struct{}{}:
	default:
	}
}

// startHeartbeat starts reporting held messages in progress every
// ack_wait/2, until Close.
func (s *Source) startHeartbeat() {
	s.heartbeat.Add(1)
	go func() {
		defer s.heartbeat.Done()
		for {
			select {
			case <-s.quit:
				return
			case <-s.clock.After(s.ackWait / 2):
			}
			s.mu.Lock()
			var msgs []jetstream.Msg
			for _, held := range s.held {
				msgs = append(msgs, held...)
			}
			s.mu.Unlock()
			for _, m := range msgs {
				_ = m.InProgress()
			}
		}
	}()
}

// runCore reads a core NATS subscription: nothing is acknowledged, and
// messages the subscription drops because the pipeline falls behind are
// counted and logged.
func (s *Source) runCore(ctx context.Context, nc *natsgo.Conn, out flowruntime.Emitter) error {
	var sub *natsgo.Subscription
	var err error
	if s.queue != "" {
		sub, err = nc.QueueSubscribeSync(s.subject, s.queue)
	} else {
		sub, err = nc.SubscribeSync(s.subject)
	}
	if err != nil {
		return fmt.Errorf("subscribe %q: %w", s.subject, err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(s.bound, 64<<20); err != nil {
		return fmt.Errorf("subscribe %q: %w", s.subject, err)
	}
	var pos int64
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscription %q: %w", s.subject, err)
		}
		var recs []flowruntime.Record
		for m != nil {
			pos++
			s.received.Add(1)
			fields, err := s.decode(m.Data)
			if err != nil {
				// The records before it are handed on first: under stop
				// they are written before the run fails.
				if len(recs) > 0 {
					if err := out.Emit(ctx, recs, nil); err != nil {
						return nil
					}
					recs = nil
				}
				bad := &badMessage{
					rec: flowruntime.Record{
						Fields: map[string]any{"line": string(m.Data), "subject": m.Subject},
						Meta:   flowruntime.Meta{Source: s.stage, Position: pos, Time: s.clock.Now()},
					},
					err: fmt.Errorf("message %d on %q: %w", pos, m.Subject, err),
				}
				if err := s.reject(ctx, out, bad); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				s.skipped.Add(1)
			} else {
				if s.metaField != "" {
					fields[s.metaField] = map[string]any{"subject": m.Subject}
				}
				recs = append(recs, flowruntime.Record{
					Fields: fields,
					Meta:   flowruntime.Meta{Source: s.stage, Position: pos, Time: s.clock.Now()},
				})
			}
			m = nil
			if n, _, _ := sub.Pending(); n > 0 && len(recs) < s.batch {
				if m, err = sub.NextMsg(time.Second); err != nil {
					m = nil
				}
			}
		}
		if d, err := sub.Dropped(); err == nil && int64(d) > s.dropped.Load() {
			s.log.Warn("core NATS dropped messages: the pipeline fell behind", "dropped_total", d)
			s.dropped.Store(int64(d))
		}
		if len(recs) > 0 {
			if err := out.Emit(ctx, recs, nil); err != nil {
				return nil
			}
		}
	}
}

// Position is what a nats source reports as its checkpoint. JetStream
// keeps the consumer's real position (its acknowledgement floor); these are
// this process's counts.
type Position struct {
	Stream      string `json:"stream,omitempty"`
	Durable     string `json:"durable,omitempty"`
	Received    int64  `json:"received"`
	Acked       int64  `json:"acked"`
	Redelivered int64  `json:"redelivered"`
	// Skipped counts the undecodable messages on_error skipped or
	// dead-lettered (and that were acknowledged, with JetStream).
	Skipped int64 `json:"skipped"`
	Dropped int64 `json:"dropped,omitempty"`
	Pending int64 `json:"pending"`
}

// Checkpoint returns the source's counts ([Position]).
func (s *Source) Checkpoint() any {
	return Position{
		Stream: s.stream, Durable: s.durable,
		Received: s.received.Load(), Acked: s.acked.Load(), Redelivered: s.redelivered.Load(),
		Skipped: s.skipped.Load(), Dropped: s.dropped.Load(), Pending: s.pending.Load(),
	}
}

// Close stops reporting messages in progress and drains the connection, so
// every acknowledgement sent reaches the server. Messages whose records did
// not finish stay unacknowledged and are delivered again.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	nc := s.nc
	s.mu.Unlock()
	close(s.quit)
	s.heartbeat.Wait()
	if nc == nil {
		return nil
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
		s.log.Warn("acknowledgements may not have reached the server", "error", err)
	}
	nc.Close()
	return nil
}
