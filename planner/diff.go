package planner

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Change says how a pipeline or a stage differs between two plans.
type Change int

const (
	// Unchanged: present in both plans and structurally equal.
	Unchanged Change = iota
	// Added: only in the new plan.
	Added
	// Removed: only in the old plan.
	Removed
	// Changed: in both plans, but not equal.
	Changed
)

// String returns "unchanged", "added", "removed" or "changed".
func (c Change) String() string {
	switch c {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return "unchanged"
}

// Symbol returns the mark of the change in a plan-style diff: "+", "-", "~",
// or " " when unchanged.
func (c Change) Symbol() string {
	switch c {
	case Added:
		return "+"
	case Removed:
		return "-"
	case Changed:
		return "~"
	}
	return " "
}

// Changes is the difference between two plans, pipeline by pipeline.
type Changes struct {
	// Pipelines lists every pipeline of either plan: those of the new plan
	// in its order, then those only in the old plan in theirs.
	Pipelines []PipelineChange
}

// PipelineChange is how one pipeline differs between two plans.
type PipelineChange struct {
	Name   string
	Change Change
	// Old and New are the pipeline in each plan; Old is nil when Added and
	// New is nil when Removed.
	Old, New *Pipeline
	// Stages lists the stages that differ (never Unchanged ones) when
	// Change is Changed: those of the new version in topological order,
	// then the removed ones.
	Stages []StageChange
	// Other describes differences that are not about one stage.
	Other []string
}

// StageChange is how one stage differs between two versions of a pipeline.
type StageChange struct {
	Name   string
	Change Change
}

// String renders the stage change as "+name", "-name" or "~name".
func (s StageChange) String() string { return s.Change.Symbol() + s.Name }

// Summary renders the stage changes as "~name +name -name", or "" when
// there are none.
func (p PipelineChange) Summary() string {
	parts := make([]string, 0, len(p.Stages)+len(p.Other))
	for _, s := range p.Stages {
		parts = append(parts, s.String())
	}
	parts = append(parts, p.Other...)
	return strings.Join(parts, " ")
}

// Diff compares two plans pipeline by pipeline, by name. Two pipelines are
// equal when they declare the same stages (name, block, kind, implicit,
// every option rendered as .flow text, error policy), joined by the same
// edges (ends, capacity, bytes, when_full, dead letter), in files of the
// same directory (relative paths resolve against it), and every variable
// their expressions may read has the same value. Positions in the files,
// comments and formatting do not count. old may be nil (everything is
// Added).
func Diff(old, new *Plan) Changes {
	var ch Changes
	oldByName := map[string]*Pipeline{}
	var oldVars, newVars map[string]any
	if old != nil {
		oldVars = old.Vars
		for _, p := range old.Pipelines {
			oldByName[p.Name] = p
		}
	}
	seen := map[string]bool{}
	if new != nil {
		newVars = new.Vars
		for _, p := range new.Pipelines {
			seen[p.Name] = true
			o, ok := oldByName[p.Name]
			if !ok {
				ch.Pipelines = append(ch.Pipelines, PipelineChange{Name: p.Name, Change: Added, New: p})
				continue
			}
			ch.Pipelines = append(ch.Pipelines, diffPipeline(o, p, oldVars, newVars))
		}
	}
	if old != nil {
		for _, p := range old.Pipelines {
			if !seen[p.Name] {
				ch.Pipelines = append(ch.Pipelines, PipelineChange{Name: p.Name, Change: Removed, Old: p})
			}
		}
	}
	return ch
}

func diffPipeline(o, n *Pipeline, oldVars, newVars map[string]any) PipelineChange {
	pc := PipelineChange{Name: n.Name, Old: o, New: n}
	if od, nd := filepath.Dir(o.Range.Filename), filepath.Dir(n.Range.Filename); od != nd {
		pc.Other = append(pc.Other, fmt.Sprintf("directory %s -> %s", od, nd))
	}
	oldStages := map[string]*Stage{}
	for _, s := range o.Stages {
		oldStages[s.Name] = s
	}
	inNew := map[string]bool{}
	for _, s := range n.Stages {
		inNew[s.Name] = true
		os, ok := oldStages[s.Name]
		switch {
		case !ok:
			pc.Stages = append(pc.Stages, StageChange{Name: s.Name, Change: Added})
		case stageKey(os, oldVars) != stageKey(s, newVars):
			pc.Stages = append(pc.Stages, StageChange{Name: s.Name, Change: Changed})
		}
	}
	for _, s := range o.Stages {
		if !inNew[s.Name] {
			pc.Stages = append(pc.Stages, StageChange{Name: s.Name, Change: Removed})
		}
	}
	if len(pc.Stages) > 0 || len(pc.Other) > 0 {
		pc.Change = Changed
	}
	return pc
}

// stageKey renders everything about a stage that a run depends on: block,
// kind, options, policy and edges, plus the variables its expressions may
// read.
func stageKey(s *Stage, vars map[string]any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s implicit=%t\n", s.Block, s.Kind, s.Name, s.Implicit)
	names := make([]string, 0, len(s.Options))
	for n := range s.Options {
		names = append(names, n)
	}
	sort.Strings(names)
	exprs := false
	for _, n := range names {
		v := s.Options[n]
		if fields, ok := v.([]Field); ok {
			fmt.Fprintf(&b, "%s {\n", n)
			for _, f := range fields {
				fmt.Fprintf(&b, "  %s = %s\n", f.Name, f.Expr.Source)
				exprs = exprs || strings.Contains(f.Expr.Source, "var.")
			}
			b.WriteString("}\n")
			continue
		}
		text := FormatValue(v)
		fmt.Fprintf(&b, "%s = %s\n", n, text)
		exprs = exprs || strings.Contains(text, "var.")
	}
	fmt.Fprintf(&b, "on_error %s\n", s.OnError)
	for _, e := range s.Inputs {
		fmt.Fprintf(&b, "<- %s %s\n", e.From.Name, e.Label())
	}
	for _, e := range s.Outputs {
		fmt.Fprintf(&b, "-> %s %s\n", e.To.Name, e.Label())
	}
	if exprs {
		// Expressions have var.NAME patched in as a constant: a stage whose
		// expressions mention var. depends on the values of the variables.
		names := make([]string, 0, len(vars))
		for n := range vars {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "var %s = %s\n", n, FormatValue(vars[n]))
		}
	}
	return b.String()
}

// String renders the changes as a plan-style diff, one line per pipeline:
// the mark, the name and, for a changed one, its stage changes.
func (c Changes) String() string {
	var b strings.Builder
	for _, p := range c.Pipelines {
		fmt.Fprintf(&b, "%s %s", p.Change.Symbol(), p.Name)
		if s := p.Summary(); s != "" {
			fmt.Fprintf(&b, " (%s)", s)
		}
		b.WriteString("\n")
	}
	return b.String()
}
