package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

var wsSinkKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "sink", Kind: "websocket",
		Doc: "Serves a websocket endpoint that sends every record as a JSON text frame to every connected client, each with a bounded queue; a slow client never holds the pipeline back.",
		Options: append(append(serverOptions("/"), broadcastOptions()...),
			planner.OptionSpec{Name: "write_timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "How long writing one frame to a client may take before the client is disconnected."},
		),
		Check: func(o planner.Options) error {
			var p operators.Problems
			checkListen(&p, o)
			checkPath(&p, o)
			checkBroadcast(&p, o)
			p.MinDuration(o, "write_timeout", 0, true)
			p.MinDuration(o, "shutdown_timeout", 0, true)
			return p.Err()
		},
	},
	Build: func(st *planner.Stage, env operators.BuildEnv) (*flowruntime.Node, error) {
		s := &WebSocketSink{
			server:       newServer(st.Options, env.Logger),
			hub:          newHub(st.Options, env.Logger),
			path:         st.Options.String("path"),
			writeTimeout: st.Options.Duration("write_timeout"),
			log:          env.Logger,
		}
		return &flowruntime.Node{Sink: s}, nil
	},
}

// WebSocketSink is the websocket sink: a server that broadcasts every
// record, as a JSON text frame, to every client connected at the time.
// Write only queues: a record counts as finished once it is queued for the
// clients connected then (none may be), so delivery to clients is at most
// once.
type WebSocketSink struct {
	server
	hub          *hub
	path         string
	writeTimeout time.Duration
	log          hclog.Logger
	enc          codec.Encoder

	// conns are the handlers serving clients, waited for on Close.
	conns sync.WaitGroup
	// abort ends every client at once, after the shutdown timeout.
	abort     chan struct{}
	closeOnce sync.Once
}

var _ flowruntime.Opener = (*WebSocketSink)(nil)

// Open starts the server.
func (s *WebSocketSink) Open(context.Context) error {
	s.abort = make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc(s.path, s.serve)
	return s.start(mux)
}

// Stats returns the sink's client counters.
func (s *WebSocketSink) Stats() BroadcastStats { return s.hub.stats() }

func (s *WebSocketSink) serve(w http.ResponseWriter, r *http.Request) {
	s.conns.Add(1)
	defer s.conns.Done()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("websocket handshake failed", "client", r.RemoteAddr, "error", err)
		return
	}
	defer conn.CloseNow()
	c, ok := s.hub.add(r.RemoteAddr, nil)
	if !ok {
		conn.Close(websocket.StatusGoingAway, "server closing")
		return
	}
	defer s.hub.remove(c)
	// Clients send nothing: reading only answers pings and notices a close.
	ctx := conn.CloseRead(context.Background())
	var msgs [][]byte
	for {
		select {
		case <-c.wake:
		case <-ctx.Done():
			return
		case <-s.abort:
			return
		}
		var kicked, closing bool
		msgs, kicked, closing = c.take(msgs[:0])
		if kicked {
			conn.Close(websocket.StatusPolicyViolation, "too slow: queue full")
			return
		}
		for i, m := range msgs {
			if err := s.write(ctx, conn, m); err != nil {
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					s.hub.stalled(c, err)
				} else {
					s.log.Debug("client write failed", "client", c.addr, "error", err)
				}
				return
			}
			msgs[i] = nil
		}
		s.hub.sent.Add(int64(len(msgs)))
		if closing {
			conn.Close(websocket.StatusGoingAway, "end of stream")
			return
		}
	}
}

func (s *WebSocketSink) write(ctx context.Context, conn *websocket.Conn, m []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.writeTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, m)
}

// Write queues every record for every connected client. It never waits for
// a client.
func (s *WebSocketSink) Write(_ context.Context, recs []flowruntime.Record) error {
	msgs := make([][]byte, 0, len(recs))
	for i := range recs {
		b, err := s.enc.AppendObject(nil, recs[i].Fields)
		if err != nil {
			return onerror.Permanent(fmt.Errorf("record %d: %w", i, err))
		}
		msgs = append(msgs, b)
	}
	s.hub.mu.Lock()
	for _, m := range msgs {
		s.hub.publishLocked(m)
	}
	s.hub.mu.Unlock()
	return nil
}

// Close stops accepting clients, lets every client receive what is queued
// for it (up to the shutdown timeout) and closes the connections.
func (s *WebSocketSink) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.abort == nil {
			return
		}
		// Shutdown returns once every handler has returned or taken over
		// its connection (and so is counted in conns).
		err = s.stop(nil)
		s.hub.close()
		done := make(chan struct{})
		go func() { s.conns.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(s.timeout):
			s.log.Warn("clients did not finish in time, closing them", "timeout", s.timeout)
			close(s.abort)
			<-done
		}
		st := s.hub.stats()
		s.log.Info("websocket sink closed", "sent", st.Sent, "dropped", st.Dropped, "disconnected", st.Disconnected)
	})
	return err
}
