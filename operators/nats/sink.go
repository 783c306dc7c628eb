package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "nats",
		Doc: "Publishes each record to a NATS subject and, with JetStream, waits until the stream stored it, with a message id for de-duplication.",
		Options: []planner.OptionSpec{
			urlOption,
			{Name: "subject", Type: planner.Expr, Required: true,
				Doc: "The subject published to: a string (\"events.out\") or an expression of the record (\"events.\" + kind). A record whose subject is not a string is an error no retry can cure."},
			{Name: "msg_id", Type: planner.Expr,
				Doc: "The Nats-Msg-Id header, by which JetStream drops a message published twice within the stream's duplicate window. By default \"PIPELINE.SOURCE.POSITION\" of the source message the record came from, right when each source message yields at most one record; nil publishes without an id."},
			{Name: "codec", Type: planner.Enum, Enum: []string{"json", "lines"}, Default: "json",
				Doc: "json publishes each record as one JSON object with sorted keys; lines publishes the string of one field."},
			{Name: "field", Type: planner.String, Default: "line",
				Doc: "For lines: the field published; a record without it is published as JSON."},
			{Name: "timeout", Type: planner.Duration, Default: 5 * time.Second,
				Doc: "How long a batch waits for JetStream's acknowledgements (or, in core NATS, for the server to take it) before it fails and is retried."},
			jetstreamOption("Wait for JetStream to store each message. false publishes with core NATS: a record counts as written once the server took it, whether or not anyone received it."),
		},
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkURL(&p, o)
			p.MinDuration(o, "timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		o := st.Options
		s := &Sink{
			url:       o.String("url"),
			name:      "flowrun " + env.Pipeline + "/" + st.Name,
			pipeline:  env.Pipeline,
			subject:   o.Expr("subject"),
			msgID:     o.Expr("msg_id"),
			lines:     o.String("codec") == "lines",
			field:     o.String("field"),
			timeout:   o.Duration("timeout"),
			jetstream: o.Bool("jetstream"),
			clock:     env.Clock,
		}
		if s.field == "" {
			s.field = "line"
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// Sink is the nats sink. With JetStream a Write publishes its records
// asynchronously and returns once the stream acknowledged every one; any
// failure fails the whole batch, which the runtime retries, and the message
// ids keep the retried messages that were already stored from being stored
// twice.
type Sink struct {
	url, name, pipeline string
	subject, msgID      *expression.Program
	lines               bool
	field               string
	timeout             time.Duration
	jetstream           bool
	clock               flowruntime.Clock

	nc     *natsgo.Conn
	js     jetstream.JetStream
	run    expression.Runner
	enc    codec.Encoder
	idBuf  []byte
	arenaN int
}

// Open connects to the server when the pipeline starts.
func (s *Sink) Open(context.Context) error {
	nc, err := connect(s.url, s.name, s.timeout)
	if err != nil {
		return err
	}
	s.nc = nc
	if s.jetstream {
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(s.timeout))
		if err != nil {
			nc.Close()
			return fmt.Errorf("jetstream: %w", err)
		}
		s.js = js
	}
	return nil
}

// Write publishes recs and waits for them to be stored.
func (s *Sink) Write(ctx context.Context, recs []flowruntime.Record) error {
	if s.nc == nil {
		if err := s.Open(ctx); err != nil {
			return err
		}
	}
	// The payloads live in one buffer per batch: asynchronous publishes may
	// send a message again after Write returned, so it is never reused.
	arena := make([]byte, 0, max(s.arenaN, 256*len(recs)))
	var futures []jetstream.PubAckFuture
	if s.jetstream {
		futures = make([]jetstream.PubAckFuture, 0, len(recs))
	}
	// Everything is worked out before anything is published, so a record
	// that can never be published fails its batch with nothing sent.
	msgs := make([]natsgo.Msg, len(recs))
	ids := make([]string, len(recs))
	for i := range recs {
		subject, err := s.subjectOf(&recs[i])
		if err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		start := len(arena)
		if arena, err = s.encode(arena, recs[i].Fields); err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		msgs[i] = natsgo.Msg{Subject: subject, Data: arena[start:len(arena):len(arena)]}
		if s.jetstream {
			if ids[i], err = s.idOf(&recs[i]); err != nil {
				return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
			}
		}
	}
	for i := range msgs {
		if !s.jetstream {
			if err := s.nc.PublishMsg(&msgs[i]); err != nil {
				return fmt.Errorf("publish record %d: %w", i, err)
			}
			continue
		}
		var opts []jetstream.PublishOpt
		if ids[i] != "" {
			opts = append(opts, jetstream.WithMsgID(ids[i]))
		}
		f, err := s.js.PublishMsgAsync(&msgs[i], opts...)
		if err != nil {
			return fmt.Errorf("publish record %d: %w", i, err)
		}
		futures = append(futures, f)
	}
	s.arenaN = max(s.arenaN, len(arena))
	if !s.jetstream {
		if err := s.nc.FlushTimeout(s.timeout); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		return nil
	}
	timeout := s.clock.After(s.timeout)
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish record %d to %q: %w", i, f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("publish: no acknowledgement for %d of %d messages after %s", len(futures)-i, len(futures), s.timeout)
		}
	}
	return nil
}

func (s *Sink) subjectOf(rec *flowruntime.Record) (string, error) {
	v, err := s.run.Run(s.subject, rec.Fields)
	if err != nil {
		return "", fmt.Errorf("subject: %w", err)
	}
	subj, ok := v.(string)
	if !ok || subj == "" {
		return "", fmt.Errorf("subject: %s yielded %v (%T), not a subject", s.subject, v, v)
	}
	return subj, nil
}

// idOf returns the message id of rec, or "" for none.
func (s *Sink) idOf(rec *flowruntime.Record) (string, error) {
	if s.msgID == nil {
		b := append(s.idBuf[:0], s.pipeline...)
		b = append(b, '.')
		b = append(b, rec.Meta.Source...)
		b = append(b, '.')
		b = strconv.AppendInt(b, rec.Meta.Position, 10)
		s.idBuf = b
		return string(b), nil
	}
	v, err := s.run.Run(s.msgID, rec.Fields)
	if err != nil {
		return "", fmt.Errorf("msg_id: %w", err)
	}
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	}
	return "", fmt.Errorf("msg_id: %s yielded %T, not a string", s.msgID, v)
}

func (s *Sink) encode(dst []byte, fields map[string]any) ([]byte, error) {
	if s.lines {
		return s.enc.AppendField(dst, fields, s.field)
	}
	return s.enc.AppendObject(dst, fields)
}

// Close waits for what was published to reach the server and closes the
// connection.
func (s *Sink) Close() error {
	if s.nc == nil {
		return nil
	}
	defer s.nc.Close()
	if err := s.nc.FlushTimeout(s.timeout); err != nil && !errors.Is(err, natsgo.ErrConnectionClosed) {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}
