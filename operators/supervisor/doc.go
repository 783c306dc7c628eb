// Package supervisor runs the pipelines of a plan and hot-reloads them: it
// applies a new plan by diffing it against the running one (planner.Diff),
// leaves unchanged pipelines alone, drains removed ones, starts added ones
// and hands a changed pipeline over from its old version to its new one at a
// source checkpoint (runtime.Checkpointer, runtime.Resumer), so that no
// record is lost or processed twice. It also watches .flow files and
// directories (fsnotify) and turns their changes into debounced reloads.
//
// It imports planner, operators and runtime. It must not import lang (the
// caller passes a Load function that parses and plans), operators/all (the
// caller passes the registry) or any operator family package.
package supervisor
