package postgres

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/flowrun/flowrun/planner"
	"github.com/flowrun/flowrun/planner/expression"
	"github.com/flowrun/flowrun/runtime/onerror"
	"github.com/flowrun/flowrun/runtime/overflow"
)

// A restored sink skips as many records as its progress row counts beyond
// the snapshot. That is right only when the records reaching it after the
// restart are those of the killed run in the same order; when another
// order or another set of records may come, skipping could drop a record
// never written, so the sink skips nothing (and writes the records after
// the snapshot again: at least once).
//
// This is a property of the plan in front of the sink; it lives here, next
// to its one user, and belongs in the planner if another sink needs it.

// nowCall matches a call of now() in an expression's source text. A match
// inside a string literal only makes the check more careful.
var nowCall = regexp.MustCompile(`\bnow\s*\(`)

// replayOrder reports whether the records reaching the sink st come again
// in the same order, and the same ones, when its sources read again from a
// snapshot's positions; when not, why says which stage prevents it. It
// knows the stage kinds of this repository and takes any other for one
// that does not.
func replayOrder(st *planner.Stage) (ok bool, why string) {
	seen := map[*planner.Stage]bool{}
	var walk func(s *planner.Stage) string
	walk = func(s *planner.Stage) string {
		if seen[s] {
			return ""
		}
		seen[s] = true
		if why := reorders(s); why != "" {
			return why
		}
		for _, e := range s.Inputs {
			switch {
			case e.DeadLetter:
				return fmt.Sprintf("stage %q takes the dead letters of %q, which depend on failures", s.Name, e.From.Name)
			case e.WhenFull != overflow.Block:
				return fmt.Sprintf("the branch from %q to %q drops records when it is full", e.From.Name, s.Name)
			}
			if why := walk(e.From); why != "" {
				return why
			}
		}
		return ""
	}
	why = walk(st)
	return why == "", why
}

// reorders says why stage s may change the order or the set of the
// records it passes on between two runs over the same input, or "".
func reorders(s *planner.Stage) string {
	if len(s.Inputs) > 1 || s.Block == "merge" {
		return fmt.Sprintf("stage %q merges several streams, in an order that changes from run to run", s.Name)
	}
	o := s.Options
	switch s.Block {
	case "source":
		// A source's expressions (a generate template) shape its records,
		// not which come or in what order.
		if s.Kind == "file" && o.Bool("follow") && strings.ContainsAny(o.String("path"), "*?[") {
			return fmt.Sprintf("file source %q follows several files, whose new lines interleave by time", s.Name)
		}
		return ""
	case "sink", "filter", "map", "take", "skip", "throttle":
	case "fanout":
		if o.String("mode") == "round_robin" {
			return fmt.Sprintf("fanout %q deals records round robin", s.Name)
		}
	case "buffered":
		if !o.Bool("ordered") {
			return fmt.Sprintf("buffered %q emits results as they finish (ordered = false)", s.Name)
		}
		if s.OnError.Mode == onerror.Skip || s.OnError.DeadLetter != "" {
			return fmt.Sprintf("buffered %q gives up on records whose calls fail (on_error), which may differ from run to run", s.Name)
		}
	case "batch":
		if o.Duration("timeout") > 0 {
			return fmt.Sprintf("batch %q emits on a timeout", s.Name)
		}
	case "reduce", "window":
		if o.Duration("every") > 0 {
			return fmt.Sprintf("%s %q emits by the clock (every)", s.Block, s.Name)
		}
	case "dedupe":
		if o.Duration("ttl") > 0 {
			return fmt.Sprintf("dedupe %q forgets keys by the clock (ttl)", s.Name)
		}
	default:
		return fmt.Sprintf("stage %q (%s) is not known to keep the order of its records", s.Name, s.Block)
	}
	for name, v := range o {
		if callsNow(v) {
			return fmt.Sprintf("stage %q calls now() in %s", s.Name, name)
		}
	}
	return ""
}

// callsNow reports whether an option value holds an expression calling
// now().
func callsNow(v any) bool {
	switch x := v.(type) {
	case *expression.Program:
		return x != nil && nowCall.MatchString(x.Source)
	case []planner.Field:
		for _, f := range x {
			if callsNow(f.Expr) {
				return true
			}
		}
	}
	return false
}
