package admin

import (
	"net/http"
	"strconv"

	"golang.org/x/time/rate"

	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/operators/supervisor"
)

// Limits of /api/v1/tap.
const (
	// DefaultTapLimit is the records a tap returns when limit is not given.
	DefaultTapLimit = 10
	// MaxTapLimit is the most records one tap request may ask for.
	MaxTapLimit = 100000
	// DefaultTapRate is the most records per second a tap sends when rate
	// is not given; MaxTapRate the most it may be given.
	DefaultTapRate = 1000
	MaxTapRate     = 100000
	// maxTapBuffer bounds the samples a tap keeps while the client reads.
	maxTapBuffer = 64
)

// tap answers GET /api/v1/tap?pipeline=P&stage=S&limit=N&rate=R: up to N
// records as they leave stage S of pipeline P, at most R a second, as
// newline-delimited JSON (one record's fields a line, as a file sink writes
// them), flushed whenever the tap has nothing more to send at once. The
// response ends after N records, when the pipeline ends, or when the
// client goes away. pipeline may be left out when one pipeline runs.
//
// While the tap waits (for its rate, or for the client to read) its buffer
// fills and the stage drops the samples it offers, which costs it nothing:
// the rate bounds the work a tap makes, however fast the pipeline.
func (s *Server) tap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pipeline, stage := q.Get("pipeline"), q.Get("stage")
	limit, ok := intParam(w, q.Get("limit"), "limit", DefaultTapLimit, MaxTapLimit)
	if !ok {
		return
	}
	perSecond, ok := intParam(w, q.Get("rate"), "rate", DefaultTapRate, MaxTapRate)
	if !ok {
		return
	}
	if pipeline == "" {
		if names := s.sup.Pipelines(); len(names) == 1 {
			pipeline = names[0]
		} else {
			apiError(w, http.StatusBadRequest, "pipeline is required (pipelines: %v)", names)
			return
		}
	}
	if stage == "" {
		apiError(w, http.StatusBadRequest, "stage is required")
		return
	}
	ex, ok := s.sup.Execution(pipeline)
	if !ok {
		apiError(w, http.StatusNotFound, "no pipeline %q (pipelines: %v)", pipeline, s.sup.Pipelines())
		return
	}
	if st, _ := s.sup.Status(pipeline); st == supervisor.Finished || st == supervisor.Failed {
		apiError(w, http.StatusConflict, "pipeline %q has %s", pipeline, st)
		return
	}
	t, err := ex.Tap(stage, min(limit, maxTapBuffer))
	if err != nil {
		apiError(w, http.StatusNotFound, "%v", err)
		return
	}
	defer t.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	var enc codec.Encoder
	var line []byte
	// A tenth of a second's worth at once, so that a request after another
	// gets no more than its rate either.
	pace := rate.NewLimiter(rate.Limit(perSecond), max(1, min(limit, perSecond/10)))
	for sent := 0; sent < limit; {
		if len(t.Records()) == 0 || pace.Tokens() < 1 {
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err := pace.Wait(r.Context()); err != nil {
			return
		}
		select {
		case rec := <-t.Records():
			line, err = enc.AppendObject(line[:0], rec.Fields)
			if err != nil {
				continue // not JSON (a NaN): not shown
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return
			}
			sent++
		case <-t.Done():
			if len(t.Records()) == 0 {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
	s.log.Debug("tap served", "pipeline", pipeline, "stage", stage, "records", limit, "not_sampled", t.Dropped())
}

// intParam reads the query parameter name, v, as a number from 1 to most,
// def when v is empty; it answers 400 and returns false when it is not one.
func intParam(w http.ResponseWriter, v, name string, def, most int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		apiError(w, http.StatusBadRequest, "%s %q is not a number from 1 to %d", name, v, most)
		return 0, false
	}
	return n, true
}
