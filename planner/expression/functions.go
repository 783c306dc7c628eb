package expression

import "os"

// function is one of flowrun's own expression functions.
type function struct {
	name string
	doc  string
	fn   func(args ...any) (any, error)
	// types are the accepted signatures, for the type checker.
	types []any
}

// functions are added to expr's builtins in every expression.
var functions = []function{
	{
		name:  "env",
		doc:   `env(name) returns the environment variable name, or nil when it is unset: env("HOST") ?? "local".`,
		fn:    envFunc,
		types: []any{new(func(string) any)},
	},
}

func envFunc(args ...any) (any, error) {
	name, _ := args[0].(string)
	if v, ok := os.LookupEnv(name); ok {
		return v, nil
	}
	return nil, nil
}
