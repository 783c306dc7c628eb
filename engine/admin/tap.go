package admin

import (
	"net/http"
	"strconv"

	"github.com/flowrun/flowrun/operators/codec"
	"github.com/flowrun/flowrun/operators/supervisor"
)

// Limits of /api/v1/tap.
const (
	// DefaultTapLimit is the records a tap returns when limit is not given.
	DefaultTapLimit = 10
	// MaxTapLimit is the most records one tap request may ask for.
	MaxTapLimit = 100000
	// maxTapBuffer bounds the records a tap keeps while the client reads.
	maxTapBuffer = 256
)

// tap answers GET /api/v1/tap?pipeline=P&stage=S&limit=N: up to N records
// as they leave stage S of pipeline P, as newline-delimited JSON (one
// record's fields a line, as a file sink writes them), each line flushed
// as it is written. The response ends after N records, when the pipeline
// ends, or when the client goes away. pipeline may be left out when one
// pipeline runs.
func (s *Server) tap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pipeline, stage := q.Get("pipeline"), q.Get("stage")
	limit := DefaultTapLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxTapLimit {
			apiError(w, http.StatusBadRequest, "limit %q is not a number from 1 to %d", v, MaxTapLimit)
			return
		}
		limit = n
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
	for sent := 0; sent < limit; {
		select {
		case rec := <-t.Records():
			line, err = enc.AppendObject(line[:0], rec.Fields)
			if err != nil {
				continue // not JSON (a NaN): not shown
			}
			if _, err := w.Write(append(line, '\n')); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
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
