package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/flowrun/flowrun/operators/supervisor"
	"github.com/flowrun/flowrun/runtime/state"
)

// stateVerbs are the sub-commands of `flowrun state`.
func stateVerbs() []verb {
	return []verb{
		{"show", "print what each pipeline keeps in DIR", cmdStateShow},
		{"reset", "forget the state in DIR, of every pipeline or of one", cmdStateReset},
	}
}

// cmdState is the "state" verb: it works on a state dir (`flowrun run
// --state-dir DIR`) through its sub-commands show and reset.
func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, "flowrun state", stateVerbs(), stateUsage, args, stdout, stderr)
}

const (
	stateShowUsage  = "flowrun state show [--format text|json] DIR"
	stateResetUsage = "flowrun state reset [--pipeline NAME] DIR"
)

func stateUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: "+stateShowUsage)
	fmt.Fprintln(w, "       "+stateResetUsage)
	fmt.Fprintln(w)
	writeVerbs(w, stateVerbs())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "DIR is the state dir of `flowrun run --state-dir DIR`; see docs/state.md.")
}

// stateFlagSet returns the flag set of the state sub-command name, whose
// usage line is usage.
func stateFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: "+usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses the flags of fs among args, before and after
// the positional arguments (`state reset DIR --pipeline P` as well as
// `state reset --pipeline P DIR`), and returns the positional ones. After
// "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// stateDirArg parses the arguments of a state sub-command, which takes
// exactly one DIR. On a usage error it returns the exit code to return.
func stateDirArg(fs *flag.FlagSet, args []string, stderr io.Writer) (string, int, bool) {
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", exitOK, false
		}
		return "", exitUsage, false
	}
	if len(positional) != 1 {
		if len(positional) == 0 {
			fmt.Fprintf(stderr, "flowrun state %s: no DIR given\n", fs.Name())
		} else {
			fmt.Fprintf(stderr, "flowrun state %s: want one DIR, got %d arguments\n", fs.Name(), len(positional))
		}
		fs.Usage()
		return "", exitUsage, false
	}
	return filepath.Clean(positional[0]), exitOK, true
}

// checkStateDir tells whether dir is an existing directory, so that a
// mistyped DIR is an error rather than an empty state.
func checkStateDir(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("state dir %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("state dir %s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
	return nil
}

// cmdStateShow is `flowrun state show DIR`: per pipeline, the sequence and
// age of its last snapshot and each stage's state. A pipeline whose
// snapshot cannot be used is reported, naming the file, and makes the exit
// 1; the others are shown all the same. It reads without the lock, so it
// works while a run uses DIR.
func cmdStateShow(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := stateFlagSet("show", stateShowUsage, stderr)
	format := fs.String("format", "text", "output `format`: text or json")
	dir, code, ok := stateDirArg(fs, args, stderr)
	if !ok {
		return code
	}
	switch *format {
	case "text", "json":
	default:
		fmt.Fprintf(stderr, "flowrun state show: unknown format %q: want text or json\n", *format)
		return exitUsage
	}
	if err := checkStateDir(dir); err != nil {
		fmt.Fprintf(stderr, "flowrun state show: %v\n", err)
		return exitFail
	}
	kept, err := state.List(dir)
	if err != nil {
		fmt.Fprintf(stderr, "flowrun state show: %v\n", err)
		return exitFail
	}
	now := time.Now()
	if *format == "json" {
		err = writeStateJSON(stdout, dir, kept, now)
	} else {
		err = writeStateText(stdout, stderr, dir, kept, now)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flowrun state show: %v\n", err)
		return exitFail
	}
	for _, p := range kept {
		if p.Err != nil {
			return exitFail
		}
	}
	return exitOK
}

// maxStateText is how much of one stage's state the text output shows.
const maxStateText = 200

// writeStateText writes kept for a reader: a line per pipeline, then a line
// per stage. Unusable snapshots go to stderr, each with how to reset it.
func writeStateText(stdout, stderr io.Writer, dir string, kept []state.PipelineState, now time.Time) error {
	if len(kept) == 0 {
		_, err := fmt.Fprintf(stdout, "no state kept in %s\n", dir)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, p := range kept {
		if p.Err != nil {
			fmt.Fprintf(stderr, "flowrun state show: pipeline %q: %v (%s)\n", p.Pipeline, p.Err, supervisor.ResetHint(dir, p.Pipeline))
			continue
		}
		s := p.Snapshot
		fmt.Fprintf(tw, "pipeline %q: sequence %d, saved %s (%s)\n", p.Pipeline, s.Sequence, age(now.Sub(s.Time)), s.Time.Local().Format("2006-01-02 15:04:05 MST"))
		if len(s.Stages) == 0 {
			fmt.Fprintln(tw, "  no stage keeps state")
		}
		for _, name := range s.StageNames() {
			fmt.Fprintf(tw, "  %s\t%s\n", name, stateText(s.Stages[name]))
		}
		// Each pipeline's stages are aligned on their own.
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// stateText renders one stage's state on one line: compact JSON, or the
// length of a state that is not JSON; a long one is cut.
func stateText(blob []byte) string {
	var c bytes.Buffer
	if !json.Valid(blob) || json.Compact(&c, blob) != nil {
		return fmt.Sprintf("(%d bytes, not JSON)", len(blob))
	}
	s := c.String()
	if len(s) <= maxStateText {
		return s
	}
	cut := maxStateText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes; --format json shows it whole)", s[:cut], len(s))
}

// age renders how long ago d was, to the second under an hour and to the
// minute above: "3s ago", "5m12s ago", "2h7m ago", "3d4h ago".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future (the clock was set back)"
	case d < time.Second:
		return "just now"
	case d < time.Hour:
		return d.Round(time.Second).String() + " ago"
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s") + " ago"
	}
	days := d / (24 * time.Hour)
	hours := (d - days*24*time.Hour).Round(time.Hour) / time.Hour
	return fmt.Sprintf("%dd%dh ago", days, hours)
}

// The JSON output of `flowrun state show --format json`.
type (
	stateDirJSON struct {
		Dir       string              `json:"dir"`
		Pipelines []statePipelineJSON `json:"pipelines"`
	}
	statePipelineJSON struct {
		Pipeline string `json:"pipeline"`
		File     string `json:"file"`
		// Error is set, alone, when the snapshot file cannot be used.
		Error      string           `json:"error,omitempty"`
		Hint       string           `json:"hint,omitempty"`
		Sequence   uint64           `json:"sequence,omitempty"`
		Time       *time.Time       `json:"time,omitempty"`
		AgeSeconds *float64         `json:"age_seconds,omitempty"`
		Stages     []stageStateJSON `json:"stages,omitempty"`
	}
	// stageStateJSON is one stage's state: State when it is JSON (as
	// nearly every stage's is), else StateBase64.
	stageStateJSON struct {
		Stage       string          `json:"stage"`
		State       json.RawMessage `json:"state,omitempty"`
		StateBase64 string          `json:"state_base64,omitempty"`
	}
)

func writeStateJSON(w io.Writer, dir string, kept []state.PipelineState, now time.Time) error {
	out := stateDirJSON{Dir: dir, Pipelines: []statePipelineJSON{}}
	for _, p := range kept {
		pj := statePipelineJSON{Pipeline: p.Pipeline, File: p.File}
		if p.Err != nil {
			pj.Error = p.Err.Error()
			pj.Hint = supervisor.ResetHint(dir, p.Pipeline)
			out.Pipelines = append(out.Pipelines, pj)
			continue
		}
		s := p.Snapshot
		t := s.Time.UTC()
		secs := math.Round(now.Sub(s.Time).Seconds()*1000) / 1000
		pj.Sequence, pj.Time, pj.AgeSeconds = s.Sequence, &t, &secs
		pj.Stages = []stageStateJSON{}
		for _, name := range s.StageNames() {
			blob := s.Stages[name]
			st := stageStateJSON{Stage: name}
			if json.Valid(blob) {
				st.State = blob
			} else {
				st.StateBase64 = base64.StdEncoding.EncodeToString(blob)
			}
			pj.Stages = append(pj.Stages, st)
		}
		out.Pipelines = append(out.Pipelines, pj)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// cmdStateReset is `flowrun state reset DIR [--pipeline NAME]`: it removes
// the state of every pipeline in DIR, or of the one named, so that their
// next run starts afresh. It takes DIR's lock, so it refuses while a run
// uses DIR.
func cmdStateReset(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := stateFlagSet("reset", stateResetUsage, stderr)
	only := fs.String("pipeline", "", "forget only the state of the pipeline `NAME`")
	dir, code, ok := stateDirArg(fs, args, stderr)
	if !ok {
		return code
	}
	pipelineGiven := false
	fs.Visit(func(f *flag.Flag) { pipelineGiven = pipelineGiven || f.Name == "pipeline" })
	if pipelineGiven && *only == "" {
		fmt.Fprintln(stderr, "flowrun state reset: --pipeline needs a pipeline NAME")
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "flowrun state reset: %v\n", err)
		return exitFail
	}
	if err := checkStateDir(dir); err != nil {
		return fail(err)
	}
	d, err := state.Open(dir)
	if errors.Is(err, state.ErrLocked) {
		return fail(fmt.Errorf("%w: stop it before resetting the state, which it keeps saving", err))
	}
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	kept, err := state.List(dir)
	if err != nil {
		return fail(err)
	}
	var names []string
	for _, p := range kept {
		names = append(names, p.Pipeline)
	}
	if *only != "" {
		pdir := filepath.Dir(d.Pipeline(*only).File())
		if _, err := os.Stat(pdir); errors.Is(err, os.ErrNotExist) {
			kept := "no pipeline keeps state there"
			if len(names) > 0 {
				kept = "it keeps the state of " + quotedList(names)
			}
			return fail(fmt.Errorf("no state of pipeline %q in %s (%s)", *only, dir, kept))
		}
		names = []string{*only}
	}
	if len(names) == 0 {
		fmt.Fprintf(stdout, "no state kept in %s: nothing to reset\n", dir)
		return exitOK
	}
	for _, name := range names {
		if err := d.Reset(name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "reset pipeline %q: its next run starts afresh\n", name)
	}
	if err := d.Close(); err != nil {
		return fail(err)
	}
	return exitOK
}

// quotedList renders names as "a", "b" and "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
