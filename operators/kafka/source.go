package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sourceKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "source", Kind: "kafka",
		Doc: "Reads a topic as a member of a consumer group shared by every process running the pipeline, committing offsets only once their records are finished. A record it cannot decode follows on_error as {line, topic, partition, offset, key}: skipped or dead-lettered, its offset is committed like a finished one's; under stop (the default) every record before it is written, then the run fails naming TOPIC/PARTITION offset OFFSET, and the next run reads it again.",
		Options: []planner.OptionSpec{
			brokersOption,
			topicOption("The topic read."),
			{Name: "group", Type: planner.String, Required: true,
				Doc: "The consumer group: every process using it shares the topic's partitions (cooperative-sticky), and its committed offsets survive restarts."},
			codecOption,
			{Name: "batch", Type: planner.Int, Default: int64(256),
				Doc: "The most records taken from the client at once. The next poll waits until the pipeline took the previous batch."},
			{Name: "start_at", Type: planner.Enum, Enum: []string{"beginning", "end"}, Default: "beginning",
				Doc: "Where a partition without a committed offset starts: its first record or only records produced from now on."},
			{Name: "commit_interval", Type: planner.Duration, Default: time.Second,
				Doc: "How often the offsets of finished records are committed (also when a partition is revoked and when the source closes)."},
			{Name: "revoke_wait", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "When a rebalance takes a partition away, how long to wait for its records in flight to finish before committing; what is unfinished then is read again by the new owner."},
			{Name: "session_timeout", Type: planner.Duration, Default: 45 * time.Second,
				Doc: "How long the group waits for a member that stopped heartbeating (a killed process) before giving its partitions to the others."},
			{Name: "fetch_max_bytes", Type: planner.Int, Default: int64(8 << 20),
				Doc: "The most bytes one fetch brings back; with the batch it bounds what the client holds while the pipeline is busy."},
			{Name: "metadata_field", Type: planner.String, Default: "",
				Doc: "When set, each record gets this field holding the Kafka record's {topic, partition, offset, key}."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkCommon(&p, o)
			if o.String("group") == "" {
				p.Add("group", "the group is required: every process of the pipeline uses this group id")
			}
			p.Min(o, "batch", 1)
			p.Min(o, "fetch_max_bytes", 1024)
			p.MinDuration(o, "commit_interval", 10*time.Millisecond, false)
			p.MinDuration(o, "revoke_wait", 0, false)
			p.MinDuration(o, "session_timeout", time.Second, false)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		o := st.Options
		brokers, _ := o["brokers"].([]string)
		s := &Source{
			stage:      st.Name,
			pipeline:   env.Pipeline,
			brokers:    brokers,
			topic:      o.String("topic"),
			group:      o.String("group"),
			lines:      o.String("codec") == "lines",
			batch:      int(o.Int("batch")),
			atEnd:      o.String("start_at") == "end",
			interval:   o.Duration("commit_interval"),
			revokeWait: o.Duration("revoke_wait"),
			session:    o.Duration("session_timeout"),
			fetchMax:   int32(min(o.Int("fetch_max_bytes"), 1<<30)),
			metaField:  o.String("metadata_field"),
			clock:      env.Clock,
			log:        env.Logger,
			parts:      map[topicPartition]*partition{},
			committed:  map[topicPartition]int64{},
			quit:       make(chan struct{}),
		}
		return &flowruntime.Node{Source: s}, nil
	},
}

type topicPartition struct {
	topic string
	part  int32
}

// partition is the state of one partition this member owns.
type partition struct {
	// done tracks which offsets are finished; nil until the first record.
	done *flowruntime.Checkpoint
	// committed is the offset last committed.
	committed int64
	// revoked is set when a rebalance takes the partition away: its
	// records are no longer emitted.
	revoked bool
}

// Source is the kafka source: a consumer-group member that commits only
// finished offsets. Close commits what is finished and leaves the group.
type Source struct {
	stage, pipeline string
	brokers         []string
	topic, group    string
	lines           bool
	batch           int
	atEnd           bool
	interval        time.Duration
	revokeWait      time.Duration
	session         time.Duration
	fetchMax        int32
	metaField       string
	clock           flowruntime.Clock
	log             hclog.Logger
	dec             codec.Decoder

	mu    sync.Mutex
	cl    *kgo.Client
	parts map[topicPartition]*partition
	// committed keeps the last offset committed for every partition ever
	// owned, for Checkpoint.
	committed map[topicPartition]int64
	closed    bool
	quit      chan struct{}
	committer sync.WaitGroup

	received, dropped atomic.Int64
}

// Run polls the group's records until ctx ends. It returns the error of
// an undecodable record when the stage's on_error policy stops the run.
func (s *Source) Run(ctx context.Context, out flowruntime.Emitter) error {
	cl, err := s.open()
	if err != nil {
		return err
	}
	for {
		fetches := cl.PollRecords(ctx, s.batch)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		failed := false
		fetches.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			s.log.Warn("fetch failed; the client retries", "topic", topic, "partition", part, "error", err)
		})
		got, err := s.deliver(ctx, out, fetches)
		switch {
		case errors.Is(err, errStopped):
			return nil
		case err != nil:
			return err
		}
		if got == 0 && failed && s.clock.Sleep(ctx, 250*time.Millisecond) != nil {
			return nil
		}
	}
}

// errStopped ends Run quietly: ctx ended while a batch was handed on.
var errStopped = errors.New("stopped")

// open creates the client and starts the periodic commits.
func (s *Source) open() (*kgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("source closed before it ran")
	}
	reset := kgo.NewOffset().AtStart()
	if s.atEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.brokers...),
		kgo.ClientID("flowrun-"+s.pipeline+"-"+s.stage),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topic),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(s.session),
		kgo.HeartbeatInterval(min(3*time.Second, s.session/3)),
		kgo.FetchMaxBytes(s.fetchMax),
		kgo.FetchMaxPartitionBytes(min(s.fetchMax, 1<<20)),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.cl = cl
	s.committer.Add(1)
	go func() {
		defer s.committer.Done()
		for {
			select {
			case <-s.quit:
				return
			case <-s.clock.After(s.interval):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.commit(ctx, nil); err != nil {
				s.log.Warn("commit failed; trying again at the next interval", "error", err)
			}
			cancel()
		}
	}()
	return cl, nil
}

// deliver emits a poll's records, skipping those of partitions no longer
// owned, in one batch whose done callback marks every partition's part of
// it finished. An undecodable record splits the batch: the records before
// it are emitted first, then it goes to the stage's on_error policy
// (runtime.Reject). When the policy lets the source go on (skip,
// dead_letter) the record counts as finished at once, so its offset is
// committed; when it stops the run, deliver returns its error and nothing
// from the record on is marked finished, so the next run reads it again.
// deliver returns how many records it read.
func (s *Source) deliver(ctx context.Context, out flowruntime.Emitter, fetches kgo.Fetches) (int, error) {
	var b batch
	read := 0
	now := s.clock.Now()
	var parts []kgo.FetchTopicPartition
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			parts = append(parts, p)
		}
	})
	for _, p := range parts {
		done := s.owned(p)
		if done == nil {
			continue
		}
		// from is the index of the first record not yet tracked.
		from := 0
		for i, r := range p.Records {
			read++
			s.received.Add(1)
			fields, err := s.decode(r.Value)
			if err == nil {
				b.recs = append(b.recs, s.record(r, fields, now))
				continue
			}
			if i > from {
				b.dones = append(b.dones, done.Track(r.Offset))
			}
			if err := b.emit(ctx, out); err != nil {
				return read, err
			}
			if err := s.reject(ctx, out, r, err, now); err != nil {
				return read, err
			}
			done.Track(r.Offset + 1)()
			from = i + 1
		}
		if from < len(p.Records) {
			b.dones = append(b.dones, done.Track(p.Records[len(p.Records)-1].Offset+1))
		}
	}
	return read, b.emit(ctx, out)
}

// owned returns the checkpoint of p's partition, or nil (counting p's
// records dropped) when this member no longer owns it.
func (s *Source) owned(p kgo.FetchTopicPartition) *flowruntime.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.parts[topicPartition{p.Topic, p.Partition}]
	if st == nil || st.revoked {
		s.dropped.Add(int64(len(p.Records)))
		return nil
	}
	if st.done == nil {
		st.done = flowruntime.NewCheckpoint(p.Records[0].Offset)
		st.committed = p.Records[0].Offset
	}
	return st.done
}

// record makes the record of a decoded Kafka record.
func (s *Source) record(r *kgo.Record, fields map[string]any, now time.Time) flowruntime.Record {
	if s.metaField != "" {
		var key any
		if r.Key != nil {
			key = string(r.Key)
		}
		fields[s.metaField] = map[string]any{
			"topic": r.Topic, "partition": int64(r.Partition), "offset": r.Offset, "key": key,
		}
	}
	return flowruntime.Record{
		Fields: fields,
		Meta:   flowruntime.Meta{Source: s.stage, Position: r.Offset, Time: now},
	}
}

// reject hands r, whose value failed to decode with err, to the stage's
// on_error policy as the record {line, topic, partition, offset, key (when
// set)}. It returns nil when the policy lets the source go on, errStopped
// when ctx ended, and otherwise the error that fails the run, naming
// TOPIC/PARTITION offset OFFSET.
func (s *Source) reject(ctx context.Context, out flowruntime.Emitter, r *kgo.Record, err error, now time.Time) error {
	fields := map[string]any{
		"line": string(r.Value), "topic": r.Topic, "partition": int64(r.Partition), "offset": r.Offset,
	}
	if r.Key != nil {
		fields["key"] = string(r.Key)
	}
	rec := flowruntime.Record{
		Fields: fields,
		Meta:   flowruntime.Meta{Source: s.stage, Position: r.Offset, Time: now},
	}
	err = fmt.Errorf("%s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
	if err := flowruntime.Reject(ctx, out, rec, err); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return err
	}
	return nil
}

// batch is the part of a poll not emitted yet: its records and the
// callbacks that mark their partitions' offsets finished.
type batch struct {
	recs  []flowruntime.Record
	dones []func()
}

// emit hands the batch on and empties it; errStopped means ctx ended, and
// the batch's offsets are then never marked finished.
func (b *batch) emit(ctx context.Context, out flowruntime.Emitter) error {
	recs, dones := b.recs, b.dones
	b.recs, b.dones = nil, nil
	if len(recs) == 0 {
		for _, d := range dones {
			d()
		}
		return nil
	}
	var done func()
	if len(dones) > 0 {
		done = func() {
			for _, d := range dones {
				d()
			}
		}
	}
	if err := out.Emit(ctx, recs, done); err != nil {
		return errStopped
	}
	return nil
}

func (s *Source) decode(value []byte) (map[string]any, error) {
	if s.lines {
		return map[string]any{"line": string(value)}, nil
	}
	return s.dec.DecodeObject(value)
}

func (s *Source) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			s.parts[topicPartition{topic, p}] = &partition{committed: -1}
		}
	}
	s.log.Info("partitions assigned", "partitions", describe(assigned))
}

// revoked stops emitting the revoked partitions' records, waits up to
// revoke_wait for those in flight to finish, and commits what is finished.
func (s *Source) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	var keys []topicPartition
	var states []*partition
	s.mu.Lock()
	for topic, parts := range revoked {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if st := s.parts[tp]; st != nil {
				st.revoked = true
				keys = append(keys, tp)
				states = append(states, st)
			}
		}
	}
	closing := s.closed
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	if !closing {
		deadline := s.clock.Now().Add(s.revokeWait)
		for s.clock.Now().Before(deadline) && outstanding(states) > 0 {
			if s.clock.Sleep(ctx, 5*time.Millisecond) != nil {
				break
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.commit(cctx, keys); err != nil {
		s.log.Warn("commit of revoked partitions failed; their new owner reads again from the last commit", "error", err)
	}
	s.mu.Lock()
	for _, tp := range keys {
		delete(s.parts, tp)
	}
	s.mu.Unlock()
	s.log.Info("partitions revoked", "partitions", describe(revoked), "unfinished_batches", outstanding(states))
}

// lost forgets partitions taken away without a chance to commit.
func (s *Source) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range lost {
		for _, p := range parts {
			if st := s.parts[topicPartition{topic, p}]; st != nil {
				st.revoked = true
				delete(s.parts, topicPartition{topic, p})
			}
		}
	}
	s.log.Warn("partitions lost; their unfinished records are read again by their new owner", "partitions", describe(lost))
}

func outstanding(states []*partition) int {
	n := 0
	for _, st := range states {
		if st.done != nil {
			n += st.done.Outstanding()
		}
	}
	return n
}

func describe(m map[string][]int32) string {
	var parts []string
	for topic, ps := range m {
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("%s/%d", topic, p))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// commit commits, for the partitions in only (every owned one when nil),
// the offset before which every record is finished, when it moved.
func (s *Source) commit(ctx context.Context, only []topicPartition) error {
	s.mu.Lock()
	cl := s.cl
	offsets := map[string]map[int32]kgo.EpochOffset{}
	type move struct {
		tp topicPartition
		st *partition
		to int64
	}
	var moves []move
	consider := func(tp topicPartition, st *partition) {
		if st == nil || st.done == nil {
			return
		}
		to := st.done.Committed()
		if to <= st.committed {
			return
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.part] = kgo.EpochOffset{Epoch: -1, Offset: to}
		moves = append(moves, move{tp, st, to})
	}
	if only == nil {
		for tp, st := range s.parts {
			if !st.revoked {
				consider(tp, st)
			}
		}
	} else {
		for _, tp := range only {
			consider(tp, s.parts[tp])
		}
	}
	s.mu.Unlock()
	if cl == nil || len(moves) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit: %w", cerr)
	}
	s.mu.Lock()
	for _, m := range moves {
		m.st.committed = max(m.st.committed, m.to)
		s.committed[m.tp] = max(s.committed[m.tp], m.to)
	}
	s.mu.Unlock()
	return nil
}

// Position is the committed offset of one partition: every record before
// Offset is finished.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Checkpoint returns the last offset this source committed for every
// partition it owned ([]Position, by topic and partition).
func (s *Source) Checkpoint() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Position, 0, len(s.committed))
	for tp, off := range s.committed {
		out = append(out, Position{Topic: tp.topic, Partition: tp.part, Offset: off})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// Received is how many records the source read, skipped ones included.
func (s *Source) Received() int64 { return s.received.Load() }

// Close stops the periodic commits, commits what is finished and leaves
// the group, whose other members then read the rest.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cl := s.cl
	s.mu.Unlock()
	close(s.quit)
	s.committer.Wait()
	if cl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.commit(ctx, nil)
	cl.Close()
	if err != nil {
		return fmt.Errorf("final commit: %w", err)
	}
	return nil
}
