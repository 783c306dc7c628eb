// Package graph renders planned pipelines as diagrams: Graphviz dot and
// mermaid flowcharts (which GitHub renders in Markdown). Each diagram shows
// every stage with its block type and kind, every edge with its capacity and
// its lossy or dead-letter mark, and states the pipeline's memory bound.
//
// graph imports the planner only; it must not import lang, the runtime or
// the operators.
package graph
