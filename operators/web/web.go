package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flowrun/flowrun/runtime/onerror"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind {
	return []*operators.Kind{
		httpSourceKind, httpSinkKind,
		wsSourceKind, wsSinkKind,
		sseSourceKind, sseSinkKind,
	}
}

// maxBatch is the most records a source hands to Emit at once.
const maxBatch = 256

// headerOption is the headers option of the clients and the http sink.
var headerOption = planner.OptionSpec{Name: "headers", Type: planner.Value,
	Doc: "Request headers as an object of name = value, e.g. { Authorization = \"Bearer ...\" }."}

// headers turns the headers option into an http.Header.
func headers(o planner.Options) http.Header {
	h := http.Header{}
	m, _ := o["headers"].(map[string]any)
	for k, v := range m {
		switch x := v.(type) {
		case nil:
		case string:
			h.Set(k, x)
		default:
			h.Set(k, fmt.Sprint(x))
		}
	}
	return h
}

// checkHeaders reports a headers option that is not an object of scalars.
func checkHeaders(p *operators.Problems, o planner.Options) {
	v, ok := o["headers"]
	if !ok || v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.Add("headers", "the headers must be an object of name = value, not %T", v)
		return
	}
	for k, v := range m {
		switch v.(type) {
		case map[string]any, []any:
			p.Add("headers", "the header %q must be a string, number or bool", k)
		}
		if strings.ContainsAny(k, " :\r\n") || k == "" {
			p.Add("headers", "the header name %q is not valid", k)
		}
	}
}

// checkURL reports a url option that does not use one of schemes.
func checkURL(p *operators.Problems, o planner.Options, schemes ...string) {
	u := o.String("url")
	for _, s := range schemes {
		if strings.HasPrefix(u, s+"://") && len(u) > len(s)+3 {
			return
		}
	}
	p.Add("url", "the url %q must start with %s:// and name a host", u, strings.Join(schemes, ":// or "))
}

// checkListen reports a listen option that is not host:port.
func checkListen(p *operators.Problems, o planner.Options) {
	if _, _, err := net.SplitHostPort(o.String("listen")); err != nil {
		p.Add("listen", "the listen address %q must be host:port (port 0 picks a free port): %v", o.String("listen"), err)
	}
}

// checkPath reports a path option that does not start with a slash.
func checkPath(p *operators.Problems, o planner.Options) {
	if !strings.HasPrefix(o.String("path"), "/") {
		p.Add("path", "the path %q must start with /", o.String("path"))
	}
}

// serverOptions are the options of every kind that runs a server.
func serverOptions(path string) []planner.OptionSpec {
	return []planner.OptionSpec{
		{Name: "listen", Type: planner.String, Default: "127.0.0.1:8080",
			Doc: "The address the server listens on, host:port; port 0 picks a free port, logged at info level."},
		{Name: "path", Type: planner.String, Default: path,
			Doc: "The URL path served."},
		{Name: "shutdown_timeout", Type: planner.Duration, Default: 5 * time.Second,
			Doc: "How long stopping waits for open requests and connected clients to finish before closing them."},
	}
}

// reconnectOptions are the options of the reconnecting clients.
func reconnectOptions() []planner.OptionSpec {
	return []planner.OptionSpec{
		{Name: "reconnect_initial", Type: planner.Duration, Default: 100 * time.Millisecond,
			Doc: "The wait before the first reconnection; doubled after each failed one, with jitter."},
		{Name: "reconnect_max", Type: planner.Duration, Default: 10 * time.Second,
			Doc: "The longest wait between reconnections."},
		{Name: "reconnect_reset", Type: planner.Duration, Default: 30 * time.Second,
			Doc: "A connection that stayed up this long counts as healthy: the next wait starts again at reconnect_initial."},
	}
}

func checkReconnect(p *operators.Problems, o planner.Options) {
	p.MinDuration(o, "reconnect_initial", 0, true)
	p.MinDuration(o, "reconnect_max", 0, true)
	p.MinDuration(o, "reconnect_reset", 0, true)
	if o.Duration("reconnect_max") < o.Duration("reconnect_initial") {
		p.Add("reconnect_max", "the reconnect_max (%s) must be at least the reconnect_initial (%s)",
			o.Duration("reconnect_max"), o.Duration("reconnect_initial"))
	}
}

// reconnect is a client's reconnection policy: exponential backoff with
// jitter, reset after a healthy period.
type reconnect struct {
	initial, max, reset time.Duration
	attempt             int
}

func newReconnect(o planner.Options) reconnect {
	return reconnect{
		initial: o.Duration("reconnect_initial"),
		max:     o.Duration("reconnect_max"),
		reset:   o.Duration("reconnect_reset"),
	}
}

// next returns the wait before the next connection attempt, given how long
// the last connection stayed up (0 when it never came up): initial doubled
// per consecutive failure, capped at max, with "equal jitter" (uniform in
// [d/2, d]).
func (r *reconnect) next(up time.Duration) time.Duration {
	if up >= r.reset {
		r.attempt = 0
	}
	r.attempt++
	return onerror.Backoff(r.initial, r.max, r.attempt)
}

// errStopped ends a connection because the source stops.
var errStopped = errors.New("stopped")

// fatalError ends the source instead of reconnecting.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// run calls session until ctx ends, a session ends with errStopped (run
// returns nil) or with a fatalError (run returns its error). After any
// other end it calls lost with the error and the wait, and waits as the
// policy says before the next session; up reports whether the session's
// connection was established, so that a long one resets the backoff.
func (r *reconnect) run(ctx context.Context, clock flowruntime.Clock,
	session func(context.Context) (up bool, err error), lost func(err error, wait time.Duration)) error {
	for {
		began := clock.Now()
		up, err := session(ctx)
		if ctx.Err() != nil || errors.Is(err, errStopped) {
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		var lived time.Duration
		if up {
			lived = clock.Now().Sub(began)
		}
		wait := r.next(lived)
		lost(err, wait)
		if clock.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// server is the listening half shared by the kinds that serve: it binds
// when started, records the bound address and shuts down gracefully.
type server struct {
	listen  string
	log     hclog.Logger
	timeout time.Duration

	ready chan struct{}
	mu    sync.Mutex
	addr  string
	srv   *http.Server
	done  chan struct{}
	err   error
}

func newServer(o planner.Options, log hclog.Logger) server {
	return server{
		listen:  o.String("listen"),
		log:     log,
		timeout: o.Duration("shutdown_timeout"),
		ready:   make(chan struct{}),
	}
}

// start binds the address and serves h in the background.
func (s *server) start(h http.Handler) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.srv = srv
	s.done = make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	s.log.Info("listening", "addr", s.addr)
	close(s.ready)
	return nil
}

// Addr returns the address the server is bound to, or "" before it is.
func (s *server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Ready is closed once the server listens.
func (s *server) Ready() <-chan struct{} { return s.ready }

// stop shuts the server down: it stops accepting, waits up to the shutdown
// timeout for open requests, then calls onTimeout (when not nil) and closes
// what is left. Hijacked connections (websockets) are the caller's to close.
func (s *server) stop(onTimeout func()) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn("shutdown timed out, closing open connections", "timeout", s.timeout)
		if onTimeout != nil {
			onTimeout()
		}
		srv.Close()
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("serve on %s: %w", s.addr, s.err)
	}
	return nil
}
