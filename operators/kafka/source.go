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
		Doc: "Reads a topic as a member of a consumer group shared by every process running the pipeline, committing offsets only once their records are finished.",
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
			lenient:    st.OnError.Mode == "skip" || st.OnError.Mode == "dead_letter",
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
	lenient         bool
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

	received, skipped, dropped atomic.Int64
}

// Run polls the group's records until ctx ends.
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
		recs, done, err := s.collect(fetches)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			if done != nil {
				done()
			}
			if failed && s.clock.Sleep(ctx, 250*time.Millisecond) != nil {
				return nil
			}
			continue
		}
		if err := out.Emit(ctx, recs, done); err != nil {
			return nil
		}
	}
}

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

// collect turns a poll's records into a batch, skipping the records of
// partitions no longer owned, and returns the callback that marks every
// partition's part of the batch finished.
func (s *Source) collect(fetches kgo.Fetches) ([]flowruntime.Record, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []flowruntime.Record
	var dones []func()
	var ferr error
	now := s.clock.Now()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 || ferr != nil {
			return
		}
		st := s.parts[topicPartition{p.Topic, p.Partition}]
		if st == nil || st.revoked {
			s.dropped.Add(int64(len(p.Records)))
			return
		}
		if st.done == nil {
			st.done = flowruntime.NewCheckpoint(p.Records[0].Offset)
			st.committed = p.Records[0].Offset
		}
		for _, r := range p.Records {
			s.received.Add(1)
			fields, err := s.decode(r.Value)
			if err != nil {
				err = fmt.Errorf("%s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
				if !s.lenient {
					ferr = err
					return
				}
				s.skipped.Add(1)
				s.log.Warn("skipping undecodable record", "error", err)
				continue
			}
			if s.metaField != "" {
				var key any
				if r.Key != nil {
					key = string(r.Key)
				}
				fields[s.metaField] = map[string]any{
					"topic": r.Topic, "partition": int64(r.Partition), "offset": r.Offset, "key": key,
				}
			}
			recs = append(recs, flowruntime.Record{
				Fields: fields,
				Meta:   flowruntime.Meta{Source: s.stage, Position: r.Offset, Time: now},
			})
		}
		dones = append(dones, st.done.Track(p.Records[len(p.Records)-1].Offset+1))
	})
	if ferr != nil {
		return nil, nil, ferr
	}
	if len(dones) == 0 {
		return recs, nil, nil
	}
	return recs, func() {
		for _, d := range dones {
			d()
		}
	}, nil
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
