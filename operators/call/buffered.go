package call

import (
	"errors"
	"time"

	"github.com/flowrun/flowrun/operators"
	"github.com/flowrun/flowrun/planner"
	flowruntime "github.com/flowrun/flowrun/runtime"
)

// Kinds returns every kind of this package.
func Kinds() []*operators.Kind { return []*operators.Kind{bufferedKind} }

var errPending = errors.New("this kind cannot be built yet")

var bufferedKind = &operators.Kind{
	Schema: planner.Schema{
		Block: "buffered", Kind: "buffered",
		Doc: "Runs a command or an HTTP request per record, several at once, and merges the result into the record.",
		Options: []planner.OptionSpec{
			{Name: "call", Type: planner.Enum, Enum: []string{"exec", "http"}, Required: true,
				Doc: "What is called per record: exec runs command, http sends a request to url."},
			{Name: "command", Type: planner.StringList,
				Doc: "For exec: the program and its arguments; it reads the record as JSON on stdin and writes the result on stdout."},
			{Name: "url", Type: planner.Expr,
				Doc: "For http: an expression yielding the request URL, e.g. \"http://geo/\" + ip."},
			{Name: "method", Type: planner.String, Default: "GET",
				Doc: "For http: the request method."},
			{Name: "body", Type: planner.Expr,
				Doc: "For http: an expression yielding the request body (a string is sent as is, anything else as JSON); by default methods other than GET and HEAD send the record as JSON."},
			{Name: "headers", Type: planner.Value,
				Doc: "For http: an object of request headers, e.g. {Authorization = \"Bearer ...\"}."},
			{Name: "response", Type: planner.Enum, Enum: []string{"auto", "json", "text"}, Default: "auto",
				Doc: "How the output is read: json must parse, text is kept as a trimmed string, auto parses JSON and falls back to text."},
			{Name: "as", Type: planner.String, Default: "result",
				Doc: "The field that receives the result."},
			{Name: "timeout", Type: planner.Duration, Default: 10 * time.Second,
				Doc: "The longest one call may take; a slower call fails and on_error applies."},
			{Name: "concurrency", Type: planner.Int, Default: int64(10),
				Doc: "How many calls run at once."},
			{Name: "ordered", Type: planner.Bool, Default: true,
				Doc: "Emit results in input order; false emits each as soon as it is done."},
		},
		InFlight: func(o planner.Options) int { return int(o.Int("concurrency")) },
	},
	Build: func(*planner.Stage, operators.BuildEnv) (*flowruntime.Node, error) { return nil, errPending },
}
