package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowrun/flowrun/operators/supervisor"
)

// Config is what a Server serves and how.
type Config struct {
	// Supervisor runs the pipelines the server shows.
	Supervisor *supervisor.Supervisor
	// Logger receives the line naming the bound address; nil logs nothing.
	Logger hclog.Logger
	// Interval is how often the sampler reads the stats (DefaultInterval
	// when zero) and Window how many intervals the rates and busy shares
	// span (DefaultWindow when zero).
	Interval time.Duration
	Window   int
}

// Server is a running admin server.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	sampler *sampler
	sup     *supervisor.Supervisor
	log     hclog.Logger
	stop    chan struct{}
	done    chan struct{}
}

// CheckAddr checks an address given to --admin and returns the one to
// listen on: HOST:PORT, where HOST is an IP address or a host name and PORT
// a number from 0 to 65535 (0 picks a free port). An empty host means
// 127.0.0.1, never every interface: listening on all of them takes saying
// so (0.0.0.0:PORT or [::]:PORT).
func CheckAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address %q: %w (want HOST:PORT, as 127.0.0.1:9180)", addr, unwrapAddrError(err))
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("admin address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// unwrapAddrError keeps the reason of a *net.AddrError, whose own message
// repeats the address.
func unwrapAddrError(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return errors.New(ae.Err)
	}
	return err
}

// Listen checks addr (see CheckAddr), binds it and starts serving and
// sampling. It logs the address it bound, the real port when addr asked
// for port 0.
func Listen(addr string, cfg Config) (*Server, error) {
	if cfg.Supervisor == nil {
		return nil, errors.New("admin: no supervisor")
	}
	bind, err := CheckAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("admin server: cannot listen on %s: %w", bind, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	s := &Server{
		ln:      ln,
		sampler: newSampler(cfg.Supervisor, cfg.Interval, cfg.Window),
		sup:     cfg.Supervisor,
		log:     cfg.Logger,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.srv = &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		s.sampler.run(s.stop)
	}()
	go func() { _ = s.srv.Serve(ln) }()
	s.log.Info("admin server listening", "addr", ln.Addr().String(),
		"endpoints", "/metrics /healthz /readyz /api/v1/pipelines /api/v1/tap")
	return s, nil
}

// Addr returns the address the server is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server: requests under way (a tap) get up to a second
// to end, then their connections are closed.
func (s *Server) Close() error {
	close(s.stop)
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	return err
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(newRegistry(s.sup), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.sup.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /api/v1/pipelines", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.sampler.pipelines())
	})
	mux.HandleFunc("GET /api/v1/tap", s.tap)
	return mux
}

// writeJSON answers v as indented JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError answers {"error": msg} with status code.
func apiError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
