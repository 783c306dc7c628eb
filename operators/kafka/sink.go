package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "kafka",
		Doc: "Produces each record to a Kafka topic with an idempotent producer and waits until the brokers acknowledged the batch.",
		Options: []planner.OptionSpec{
			brokersOption,
			topicOption("The topic written."),
			{Name: "key", Type: planner.Expr,
				Doc: "The record key, an expression of the record (records with equal keys go to one partition, in order); none by default."},
			codecOption,
			{Name: "field", Type: planner.String, Default: "line",
				Doc: "For lines: the field written as the value; a record without it is written as JSON."},
			{Name: "timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "How long a batch waits for the brokers' acknowledgements before it fails and is retried."},
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkCommon(&p, o)
			p.MinDuration(o, "timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		o := st.Options
		brokers, _ := o["brokers"].([]string)
		s := &Sink{
			brokers: brokers,
			id:      "flowrun-" + env.Pipeline + "-" + st.Name,
			topic:   o.String("topic"),
			key:     o.Expr("key"),
			lines:   o.String("codec") == "lines",
			field:   o.String("field"),
			timeout: o.Duration("timeout"),
		}
		if s.field == "" {
			s.field = "line"
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// Sink is the kafka sink. The producer is idempotent (franz-go's default:
// acks from all in-sync replicas, sequence numbers per partition), so the
// client's own retries never write a record twice; a batch the runtime
// retries after a failure may be written again.
type Sink struct {
	brokers []string
	id      string
	topic   string
	key     *expression.Program
	lines   bool
	field   string
	timeout time.Duration

	cl  *kgo.Client
	run expression.Runner
	enc codec.Encoder
}

// Open creates the producer when the pipeline starts.
func (s *Sink) Open(context.Context) error {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(s.brokers...),
		kgo.ClientID(s.id),
		kgo.DefaultProduceTopic(s.topic),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(s.timeout),
	)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	s.cl = cl
	return nil
}

// Write produces recs and waits for every acknowledgement.
func (s *Sink) Write(ctx context.Context, recs []flowruntime.Record) error {
	if s.cl == nil {
		if err := s.Open(ctx); err != nil {
			return err
		}
	}
	out := make([]*kgo.Record, len(recs))
	for i := range recs {
		r := &kgo.Record{}
		value, err := s.encode(nil, recs[i].Fields)
		if err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		r.Value = value
		if s.key != nil {
			k, err := s.keyOf(&recs[i])
			if err != nil {
				return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
			}
			r.Key = k
		}
		out[i] = r
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", s.topic, err)
	}
	return nil
}

func (s *Sink) keyOf(rec *flowruntime.Record) ([]byte, error) {
	v, err := s.run.Run(s.key, rec.Fields)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	}
	b, err := s.enc.Append(nil, v)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return b, nil
}

func (s *Sink) encode(dst []byte, fields map[string]any) ([]byte, error) {
	if s.lines {
		return s.enc.AppendField(dst, fields, s.field)
	}
	return s.enc.AppendObject(dst, fields)
}

// Close flushes what is buffered and closes the producer.
func (s *Sink) Close() error {
	if s.cl == nil {
		return nil
	}
	defer s.cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}
