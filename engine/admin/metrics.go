package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/flowrun/flowrun/operators/supervisor"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// The label sets: a stage is named by its pipeline and its name, an edge by
// its pipeline and its two ends. Every label value is a pipeline or stage
// name, a counter name an operator chose, or one of a fixed set of words:
// never record data.
var (
	stageLabels = []string{"pipeline", "stage"}
	edgeLabels  = []string{"pipeline", "from", "to"}
)

func stageDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flowrun_stage_"+name, help, stageLabels, nil)
}

func edgeDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flowrun_edge_"+name, help, edgeLabels, nil)
}

// collector is the prometheus.Collector of flowrun's own series: at each
// scrape it reads the stats of every pipeline in place (runtime.Stats), so
// that the pipelines pay nothing per record for them.
type collector struct {
	sup *supervisor.Supervisor

	stageInfo, recordsIn, recordsOut, errors, retries, skipped, deadLettered, dropped, busy, tapDropped *prometheus.Desc
	operator, writeSeconds                                                                              *prometheus.Desc
	queued, capacity, queuedBytes, capacityBytes                                                        *prometheus.Desc
	inFlight, status, reloads, ready                                                                    *prometheus.Desc
}

func newCollector(sup *supervisor.Supervisor) *collector {
	return &collector{
		sup: sup,
		stageInfo: prometheus.NewDesc("flowrun_stage_info", "A stage of a pipeline in place, with its runtime kind (source, processor, caller, sink, fanout, merge); always 1.",
			[]string{"pipeline", "stage", "kind"}, nil),
		recordsIn:    stageDesc("records_in_total", "Records the stage received."),
		recordsOut:   stageDesc("records_out_total", "Records the stage emitted; for a sink, records written."),
		errors:       stageDesc("errors_total", "Records the stage gave up on after their retries (skipped, dead-lettered, or failing the run)."),
		retries:      stageDesc("retries_total", "Retry attempts (per record; per batch for a sink)."),
		skipped:      stageDesc("skipped_total", "Records the stage's on_error = skip policy skipped."),
		deadLettered: stageDesc("dead_lettered_total", "Records the stage sent to its dead-letter stage."),
		dropped:      stageDesc("dropped_total", "Records dropped on the stage's lossy input edge (a lossy fanout branch) because it was full."),
		busy:         stageDesc("busy_seconds_total", "Time the stage spent working: processors, callers (call time over concurrency) and sinks (write time) only."),
		tapDropped:   stageDesc("tap_dropped_total", "Records a tap on the stage did not sample because the tap's buffer was full."),
		operator: prometheus.NewDesc("flowrun_stage_operator_total", "A counter the stage's operator keeps itself (the http source's answers by status, ...), named by the counter label.",
			[]string{"pipeline", "stage", "counter"}, nil),
		writeSeconds:  prometheus.NewDesc("flowrun_sink_write_seconds", "Time of each Write call of a sink (one batch; a retry is another call).", stageLabels, nil),
		queued:        edgeDesc("queued_records", "Records on the edge: queued, or being processed by its consumer."),
		capacity:      edgeDesc("capacity_records", "The edge's capacity in records (its credits)."),
		queuedBytes:   edgeDesc("queued_bytes", "Estimated bytes on an edge that limits bytes (edge_bytes)."),
		capacityBytes: edgeDesc("capacity_bytes", "The byte limit of an edge that limits bytes (edge_bytes)."),
		inFlight:      prometheus.NewDesc("flowrun_pipeline_in_flight_records", "Records on the pipeline's edges now.", []string{"pipeline"}, nil),
		status: prometheus.NewDesc("flowrun_pipeline_status", "1 for the pipeline's status (running, draining, finished, failed), 0 for the others.",
			[]string{"pipeline", "status"}, nil),
		reloads: prometheus.NewDesc("flowrun_reloads_total", "Reloads (SIGHUP or --watch) by result: applied, rejected (invalid files, nothing changed) or failed (a pipeline could not start).",
			[]string{"result"}, nil),
		ready: prometheus.NewDesc("flowrun_ready", "1 while /readyz answers 200: every pipeline started and the run is not stopping.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.stageInfo, c.recordsIn, c.recordsOut, c.errors, c.retries, c.skipped, c.deadLettered,
		c.dropped, c.busy, c.tapDropped, c.operator, c.writeSeconds, c.queued, c.capacity, c.queuedBytes, c.capacityBytes,
		c.inFlight, c.status, c.reloads, c.ready} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, name := range c.sup.Pipelines() {
		ex, ok := c.sup.Execution(name)
		if !ok {
			continue
		}
		st := ex.Stats()
		if status, ok := c.sup.Status(name); ok {
			for s := supervisor.Running; s <= supervisor.Failed; s++ {
				v := 0.0
				if s == status {
					v = 1
				}
				gauge(c.status, v, name, s.String())
			}
		}
		gauge(c.inFlight, float64(st.InFlight), name)
		for _, n := range st.Nodes {
			gauge(c.stageInfo, 1, name, n.Name, n.Kind.String())
			counter(c.recordsIn, n.In, name, n.Name)
			counter(c.recordsOut, n.Out, name, n.Name)
			counter(c.errors, n.Errors, name, n.Name)
			counter(c.retries, n.Retries, name, n.Name)
			counter(c.skipped, n.Skipped, name, n.Name)
			counter(c.deadLettered, n.DeadLettered, name, n.Name)
			counter(c.dropped, n.Dropped, name, n.Name)
			counter(c.tapDropped, n.TapDropped, name, n.Name)
			if flowruntime.BusyMeasured(n.Kind) {
				ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, n.Busy.Seconds(), name, n.Name)
			}
			for _, own := range n.Own {
				counter(c.operator, own.Value, name, n.Name, own.Name)
			}
			if n.Kind == flowruntime.KindSink {
				ch <- histogram(c.writeSeconds, n.Writes, name, n.Name)
			}
		}
		for _, e := range st.Edges {
			gauge(c.queued, float64(e.Fill), name, e.From, e.To)
			gauge(c.capacity, float64(e.Capacity), name, e.From, e.To)
			if e.Bytes > 0 {
				gauge(c.queuedBytes, float64(e.FillBytes), name, e.From, e.To)
				gauge(c.capacityBytes, float64(e.Bytes), name, e.From, e.To)
			}
		}
	}
	r := c.sup.Reloads()
	counter(c.reloads, r.Applied, "applied")
	counter(c.reloads, r.Rejected, "rejected")
	counter(c.reloads, r.Failed, "failed")
	ready := 0.0
	if c.sup.Ready() {
		ready = 1
	}
	gauge(c.ready, ready)
}

// histogram turns a runtime histogram of durations into a Prometheus one
// in seconds.
func histogram(d *prometheus.Desc, h flowruntime.Histogram, labels ...string) prometheus.Metric {
	bounds := h.Bounds
	if bounds == nil {
		bounds = flowruntime.WriteBuckets
	}
	cum := flowruntime.Histogram{Bounds: bounds, Counts: h.Counts}.Cumulative()
	buckets := make(map[float64]uint64, len(bounds))
	for i, b := range bounds {
		buckets[b.Seconds()] = cum[i]
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

// newRegistry returns the registry /metrics serves: flowrun's series and
// the Go runtime and process collectors.
func newRegistry(sup *supervisor.Supervisor) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(sup), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
