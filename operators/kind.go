package operators

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kind is one kind of stage: the schema the planner checks its options
// against and the function that builds its runtime value.
type Kind struct {
	Schema planner.Schema
	// Build turns a planned stage of this kind into a node with exactly one
	// of Source, Processor, Caller, Sink, Fanout or Merge set. Name and
	// OnError are filled in by the registry. The registry runs Schema.Check
	// first, so Build sees only options the planner accepts; every check
	// that can be made from the file belongs in Check, not Build. Build must
	// not start anything: files are opened and processes started when the
	// node runs.
	Build func(st *planner.Stage, env BuildEnv) (*flowruntime.Node, error)
}

// BuildEnv is what building a stage may use from the outside world.
type BuildEnv struct {
	// Pipeline names the pipeline being built.
	Pipeline string
	// Clock is the time operators use; tests pass a virtual clock.
	Clock flowruntime.Clock
	// Logger is the stage's logger (named after the stage by the registry).
	Logger hclog.Logger
	// Stdin is read by the stdin source; Stdout is written by the stdout
	// sink. Make Stdin a source.Feed shared by every build (one per
	// process), so that a hot reload's new version reads on exactly after
	// the lines the old one finished; a stdin source given another reader
	// reads it on its own and loses what it read ahead when it stops.
	Stdin  io.Reader
	Stdout io.Writer
	// Dir resolves relative file paths; "" means the working directory.
	Dir string
	// Resume is true when the pipeline continues an earlier run of itself
	// (a hot reload hands it over): sinks keep what that run wrote, so a
	// file sink appends instead of truncating.
	Resume bool
	// KeepsState is true when the pipeline's state is kept in a state dir
	// (flowrun run --state-dir), so that positions survive a restart.
	KeepsState bool
}

// Path resolves a file path option against Dir.
func (e BuildEnv) Path(p string) string {
	if e.Dir == "" || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Dir, p)
}

type kindKey struct{ block, kind string }

// Registry holds every known kind. It implements planner.Registry.
type Registry struct {
	kinds map[kindKey]*Kind
}

var _ planner.Registry = (*Registry)(nil)

// NewRegistry returns a registry holding kinds.
func NewRegistry(kinds ...*Kind) (*Registry, error) {
	r := &Registry{kinds: make(map[kindKey]*Kind)}
	for _, k := range kinds {
		if err := r.Register(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds a kind; a kind registered twice is an error.
func (r *Registry) Register(k *Kind) error {
	if k == nil || k.Schema.Block == "" || k.Schema.Kind == "" || k.Build == nil {
		return fmt.Errorf("register kind: block, kind and build are required")
	}
	key := kindKey{k.Schema.Block, k.Schema.Kind}
	if _, dup := r.kinds[key]; dup {
		return fmt.Errorf("register kind: %s %q registered twice", key.block, key.kind)
	}
	r.kinds[key] = k
	return nil
}

// Kind returns the kind registered for block and kind.
func (r *Registry) Kind(block, kind string) (*Kind, bool) {
	k, ok := r.kinds[kindKey{block, kind}]
	return k, ok
}

// Lookup returns the schema of a kind of the given block type.
func (r *Registry) Lookup(block, kind string) (*planner.Schema, bool) {
	k, ok := r.kinds[kindKey{block, kind}]
	if !ok {
		return nil, false
	}
	return &k.Schema, true
}

// Kinds lists, sorted, the kinds registered for a block type.
func (r *Registry) Kinds(block string) []string {
	var out []string
	for key := range r.kinds {
		if key.block == block {
			out = append(out, key.kind)
		}
	}
	sort.Strings(out)
	return out
}

// Blocks lists, sorted, every block type that has a registered kind.
func (r *Registry) Blocks() []string {
	seen := map[string]bool{}
	var out []string
	for key := range r.kinds {
		if !seen[key.block] {
			seen[key.block] = true
			out = append(out, key.block)
		}
	}
	sort.Strings(out)
	return out
}

// Build checks the options of one planned stage (Schema.Check) and builds
// it into a runtime node named after it, with its error policy.
// env.Logger is named after the stage.
func (r *Registry) Build(st *planner.Stage, env BuildEnv) (*flowruntime.Node, error) {
	k, ok := r.Kind(st.Block, st.Kind)
	if !ok {
		return nil, fmt.Errorf("stage %q: unknown %s kind %q", st.Name, st.Block, st.Kind)
	}
	if env.Logger == nil {
		env.Logger = hclog.NewNullLogger()
	}
	env.Logger = env.Logger.Named(st.Name)
	if env.Clock == nil {
		env.Clock = flowruntime.RealClock{}
	}
	if k.Schema.Check != nil {
		if err := k.Schema.Check(st.Options); err != nil {
			return nil, fmt.Errorf("stage %q (%s %s): %w", st.Name, st.Block, st.Kind, err)
		}
	}
	n, err := k.Build(st, env)
	if err != nil {
		return nil, fmt.Errorf("stage %q (%s %s): %w", st.Name, st.Block, st.Kind, err)
	}
	n.Name = st.Name
	n.OnError = st.OnError.Policy
	return n, nil
}
