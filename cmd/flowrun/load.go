package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/ast"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/operators/all"
	"github.com/flowrun/flowrun/planner"
)

// loaded is the result of loading FILE|DIR arguments: the files in order,
// their sources, the plan and every diagnostic of parsing and planning.
type loaded struct {
	files   []string
	sources map[string][]byte
	plan    *planner.Plan
	diags   diag.Diagnostics
}

// load expands args into .flow files, parses each and plans them together
// with the registry of every kind. The error is for files that cannot be
// found or read; problems in the files are diagnostics.
func load(args []string, vars map[string]string) (*loaded, error) {
	files, err := flowFiles(args)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .flow files in %s", strings.Join(args, " "))
	}
	l := &loaded{files: files, sources: make(map[string][]byte, len(files))}
	parsed := make([]*ast.File, 0, len(files))
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		l.sources[name] = src
		f, ds := lang.Parse(name, src)
		l.diags = append(l.diags, ds...)
		parsed = append(parsed, f)
	}
	plan, ds := planner.Build(parsed, all.Registry(), vars)
	l.plan = plan
	l.diags = sortByFile(append(l.diags, ds...), files)
	return l, nil
}

// loadPlan loads FILE|DIR arguments: it returns the plan, the source of
// every file by name (for rendering diagnostics), the diagnostics of parsing
// and planning, and an error when a file cannot be found or read. The plan
// is usable only when the diagnostics have no errors.
func loadPlan(args []string, vars map[string]string) (*planner.Plan, map[string][]byte, diag.Diagnostics, error) {
	l, err := load(args, vars)
	if err != nil {
		return nil, nil, nil, err
	}
	return l.plan, l.sources, l.diags, nil
}

// sortByFile orders diagnostics by the order of files, then by position;
// diagnostics about no file (--var flags) come first.
func sortByFile(ds diag.Diagnostics, files []string) diag.Diagnostics {
	order := make(map[string]int, len(files))
	for i, f := range files {
		order[f] = i + 1
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Subject, ds[j].Subject
		if order[a.Filename] != order[b.Filename] {
			return order[a.Filename] < order[b.Filename]
		}
		return a.Start.Byte < b.Start.Byte
	})
	return ds
}

// varFlags is the repeatable --var NAME=VALUE flag.
type varFlags map[string]string

// String renders the flags as NAME=VALUE pairs, sorted.
func (v varFlags) String() string {
	pairs := make([]string, 0, len(v))
	for k, val := range v {
		pairs = append(pairs, k+"="+val)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, " ")
}

// Set records one NAME=VALUE pair.
func (v varFlags) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return errors.New("want NAME=VALUE")
	}
	v[strings.TrimSpace(k)] = val
	return nil
}
