package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var sseSinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "sse",
		Doc: "Serves records to browsers as Server-Sent Events (text/event-stream): id is a sequence number, event a name, data the record as JSON; a reconnecting client resumes after its Last-Event-ID from a bounded replay buffer.",
		Options: append(append(serverOptions("/events"), broadcastOptions()...),
			planner.OptionSpec{Name: "event", Type: planner.Expr,
				Doc: "The event name: a fixed name (\"update\") or an expression over the record's fields (type); default \"message\"."},
			planner.OptionSpec{Name: "heartbeat", Type: planner.Duration, Default: 15 * time.Second,
				Doc: "How often an idle stream gets a comment line, so proxies keep it open and clients notice a dead server."},
			planner.OptionSpec{Name: "replay", Type: planner.Int, Default: int64(1000),
				Doc: "How many recent events are kept for clients that reconnect with Last-Event-ID; 0 keeps none."},
			planner.OptionSpec{Name: "write_timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "How long writing to a client may take before the client is disconnected."},
		),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkListen(&p, o)
			checkPath(&p, o)
			checkBroadcast(&p, o)
			p.Min(o, "replay", 0)
			p.MinDuration(o, "heartbeat", 0, true)
			p.MinDuration(o, "write_timeout", 0, true)
			p.MinDuration(o, "shutdown_timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &SSESink{
			server:       newServer(st.Options, env.Logger),
			hub:          newHub(st.Options, env.Logger),
			path:         st.Options.String("path"),
			event:        st.Options.Expr("event"),
			heartbeat:    st.Options.Duration("heartbeat"),
			writeTimeout: st.Options.Duration("write_timeout"),
			replay:       make([]event, int(st.Options.Int("replay"))),
			clock:        env.Clock,
			log:          env.Logger,
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// event is one encoded event kept for replay.
type event struct {
	id  int64
	msg []byte
}

// SSESink is the sse sink: a server of text/event-stream responses. Every
// record becomes one event sent to every client connected at the time and
// kept in a bounded replay buffer; a client that reconnects with
// Last-Event-ID first gets the buffered events after that id. Event ids
// start at the microseconds since the Unix epoch when the sink opened and
// grow by one per event, so they keep growing across restarts of the
// pipeline. Write only queues: a record counts as finished once it is
// buffered and queued for the clients connected then.
type SSESink struct {
	server
	hub          *hub
	path         string
	event        *expression.Program
	heartbeat    time.Duration
	writeTimeout time.Duration
	clock        flowruntime.Clock
	log          hclog.Logger
	enc          codec.Encoder
	run          expression.Runner

	// replay is a ring of the last events, guarded by hub.mu like nextID.
	replay      []event
	rHead, rLen int
	nextID      int64
	conns       sync.WaitGroup
	abort       chan struct{}
	closeOnce   sync.Once
}

var _ flowruntime.Opener = (*SSESink)(nil)

// Open starts the server.
func (s *SSESink) Open(context.Context) error {
	s.abort = make(chan struct{})
	s.nextID = s.clock.Now().UnixMicro()
	mux := http.NewServeMux()
	mux.HandleFunc(s.path, s.serve)
	return s.start(mux)
}

// Stats returns the sink's client counters.
func (s *SSESink) Stats() BroadcastStats { return s.hub.stats() }

// Write turns each record into an event, keeps it for replay and queues it
// for every connected client. It never waits for a client.
func (s *SSESink) Write(_ context.Context, recs []flowruntime.Record) error {
	type pending struct {
		name string
		data []byte
	}
	evs := make([]pending, 0, len(recs))
	for i := range recs {
		name := "message"
		if s.event != nil {
			v, err := s.run.Run(s.event, recs[i].Fields)
			if err != nil {
				return onerror.Permanent(fmt.Errorf("record %d: event: %w", i, err))
			}
			switch x := v.(type) {
			case string:
				name = x
			case nil:
			default:
				name = fmt.Sprint(x)
			}
			if strings.ContainsAny(name, "\r\n") {
				return onerror.Permanent(fmt.Errorf("record %d: the event name %q holds a line break", i, name))
			}
		}
		data, err := s.enc.AppendObject(nil, recs[i].Fields)
		if err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		evs = append(evs, pending{name, data})
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	for _, e := range evs {
		id := s.nextID
		s.nextID++
		msg := make([]byte, 0, len(e.data)+len(e.name)+40)
		msg = append(msg, "id: "...)
		msg = strconv.AppendInt(msg, id, 10)
		msg = append(msg, "\nevent: "...)
		msg = append(msg, e.name...)
		msg = append(msg, "\ndata: "...)
		msg = append(msg, e.data...)
		msg = append(msg, "\n\n"...)
		if len(s.replay) > 0 {
			if s.rLen == len(s.replay) {
				s.replay[s.rHead] = event{id, msg}
				s.rHead = (s.rHead + 1) % len(s.replay)
			} else {
				s.replay[(s.rHead+s.rLen)%len(s.replay)] = event{id, msg}
				s.rLen++
			}
		}
		s.hub.publishLocked(msg)
	}
	return nil
}

// since returns the buffered events after id, oldest first. It is called
// with hub.mu held.
func (s *SSESink) since(id int64, remote string) [][]byte {
	if s.rLen == 0 || id >= s.nextID-1 {
		return nil
	}
	first := s.replay[s.rHead].id
	if id < first-1 {
		s.log.Warn("client resumes before the replay buffer: some events are lost to it",
			"client", remote, "last_event_id", id, "oldest_buffered", first)
	}
	var out [][]byte
	for i := 0; i < s.rLen; i++ {
		if e := s.replay[(s.rHead+i)%len(s.replay)]; e.id > id {
			out = append(out, e.msg)
		}
	}
	return out
}

func (s *SSESink) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	s.conns.Add(1)
	defer s.conns.Done()
	rc := http.NewResponseController(w)
	var backlog [][]byte
	var resume bool
	var last int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			resume, last = true, n
		}
	}
	c, ok := s.hub.add(r.RemoteAddr, func() {
		if resume {
			backlog = s.since(last, r.RemoteAddr)
		}
	})
	if !ok {
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	defer s.hub.remove(c)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// write writes msgs, of which events are events (the rest comments).
	write := func(msgs [][]byte, events int) bool {
		if len(msgs) == 0 {
			return true
		}
		rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
		for _, m := range msgs {
			if _, err := w.Write(m); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					s.hub.stalled(c, err)
				} else {
					s.log.Debug("client write failed", "client", c.addr, "error", err)
				}
				return false
			}
		}
		if err := rc.Flush(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.hub.stalled(c, err)
			} else {
				s.log.Debug("client flush failed", "client", c.addr, "error", err)
			}
			return false
		}
		s.hub.sent.Add(int64(events))
		return true
	}
	// An opening comment sends the headers at once.
	if !write([][]byte{[]byte(": ok\n\n")}, 0) {
		return
	}
	if !write(backlog, len(backlog)) {
		return
	}
	backlog = nil
	beat := time.NewTimer(s.heartbeat)
	defer beat.Stop()
	var msgs [][]byte
	for {
		select {
		case <-c.wake:
		case <-beat.C:
			if !write([][]byte{[]byte(": heartbeat\n\n")}, 0) {
				return
			}
			beat.Reset(s.heartbeat)
			continue
		case <-r.Context().Done():
			return
		case <-s.abort:
			return
		}
		beat.Reset(s.heartbeat)
		var kicked, closing bool
		msgs, kicked, closing = c.take(msgs[:0])
		if kicked {
			return
		}
		if !write(msgs, len(msgs)) {
			return
		}
		clear(msgs)
		if closing {
			return
		}
	}
}

// Close lets every client receive what is queued for it (up to the shutdown
// timeout), ends the streams and stops the server.
func (s *SSESink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.abort == nil {
			return
		}
		// Every handler sends what is queued and returns; Shutdown waits
		// for them, and after the timeout they are told to stop at once.
		s.hub.close()
		err = s.stop(func() { close(s.abort) })
		s.conns.Wait()
		st := s.hub.stats()
		s.log.Info("sse sink closed", "sent", st.Sent, "dropped", st.Dropped, "disconnected", st.Disconnected)
	})
	return err
}
