// Package top is the model of `flowrun top ADDR`: a terminal dashboard
// (bubbletea) of a running flowrun that polls the admin server's
// GET /api/v1/pipelines and shows, per pipeline and stage, the rates, the
// counts, the errors, the busy share, a fill bar per edge and the stage
// named as the bottleneck.
//
// It reads the JSON through engine/admin's types (admin.Pipeline, Stage,
// Edge), so that the server and this client share one definition. It must
// not import lang, planner, runtime or an operator family: all it knows of
// a run is what the admin server answers.
package top
