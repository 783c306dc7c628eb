package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/operators/supervisor"
	flowruntime "github.com/flowrun/flowrun/runtime"
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
	// tapTick is how often a tap sends what it holds.
	tapTick = 50 * time.Millisecond
)

// tap answers GET /api/v1/tap?pipeline=P&stage=S&limit=N&rate=R: up to N
// records as they leave stage S of pipeline P, at most R a second, as
// newline-delimited JSON (one record's fields a line, as a file sink writes
// them), sent every tapTick, what the tap holds up to the rate. The
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
	// Every tick the tap sends what it holds, up to a tick's share of its
	// rate, in one write: one wake-up and one flush a tick, however many
	// records.
	tick := time.NewTicker(tapTick)
	defer tick.Stop()
	perTick := float64(perSecond) * tapTick.Seconds()
	allowance := 0.0
	var enc codec.Encoder
	var buf []byte
	sent := 0
	// send writes up to quota records of what the tap holds.
	send := func(quota int) bool {
		buf = buf[:0]
		for n := 0; n < quota && sent < limit; n++ {
			var rec flowruntime.Record
			select {
			case rec = <-t.Records():
			default:
				n = quota
				continue
			}
			line, err := enc.AppendObject(buf, rec.Fields)
			if err != nil {
				continue // not JSON (a NaN): not shown
			}
			buf = append(line, '\n')
			sent++
		}
		if len(buf) == 0 {
			return true
		}
		if _, err := w.Write(buf); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for sent < limit {
		select {
		case <-tick.C:
			// What the rate allows this tick; what it leaves unused is
			// not saved up beyond one tick.
			allowance = min(allowance+perTick, max(perTick, 1))
			quota := int(allowance)
			allowance -= float64(quota)
			if !send(quota) {
				return
			}
		case <-t.Done():
			// The pipeline has ended: what the tap holds goes at once.
			send(limit)
			return
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
