// Package admin is the admin server of `flowrun run --admin ADDR`: what a
// person or a monitoring system sees of a running flowrun. It serves
//
//   - GET /metrics: Prometheus exposition (prometheus/client_golang) of
//     every pipeline's stage and edge counters, read from runtime.Stats at
//     scrape time, the reloads, and the Go runtime and process collectors;
//   - GET /healthz: 200 while the server serves;
//   - GET /readyz: 200 once every pipeline has started, 503 before and
//     once the run is stopping;
//   - GET /api/v1/pipelines: JSON of every pipeline: its state, stages
//     (counts, rates, busy share), edges (queued, capacity) and bottleneck,
//     from a sampler that reads the stats every second;
//   - GET /api/v1/tap: newline-delimited JSON of records sampled as they
//     leave a stage (runtime.Execution.Tap).
//
// docs/observability.md documents every endpoint and series, and the rule
// that names a pipeline's bottleneck.
//
// It reads the pipelines through operators/supervisor and runtime only: it
// must not import lang, planner or an operator family, and nothing below
// cmd imports it but engine/top, the client of `flowrun top`, which reads
// /api/v1/pipelines into this package's Pipeline, Stage and Edge.
package admin
