package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rogpeppe/go-internal/diff"

	"github.com/flowrun/flowrun/lang"
	"github.com/flowrun/flowrun/lang/diag"
	"github.com/flowrun/flowrun/lang/format"
)

// cmdFmt is the "fmt" verb: it prints FILE|DIR... in the canonical layout.
// With -w it rewrites the files that change; with --check it changes
// nothing, prints a diff for each file that is not formatted and exits 1
// if there is one. A file that does not parse is reported and left alone
// (exit 1); a usage error exits 2.
func cmdFmt(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.Bool("w", false, "rewrite each file in place when its layout changes")
	check := fs.Bool("check", false, "change nothing; print a diff for each unformatted file and exit 1 if there is one")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowrun fmt [-w | --check] FILE|DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *write && *check {
		fmt.Fprintln(stderr, "flowrun fmt: -w and --check cannot be used together")
		fs.Usage()
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "flowrun fmt: no FILE or DIR given")
		fs.Usage()
		return exitUsage
	}
	files, err := flowFiles(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
		return exitFail
	}
	code := exitOK
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
			code = exitFail
			continue
		}
		f, ds := lang.Parse(path, src)
		if ds.HasErrors() {
			if err := diag.WriteText(stderr, ds, map[string][]byte{path: src}); err != nil {
				fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
			}
			code = exitFail
			continue
		}
		out := format.Format(f)
		switch {
		case *check:
			if !bytes.Equal(src, out) {
				if _, err := stdout.Write(diff.Diff(path+".orig", src, path, out)); err != nil {
					fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
				}
				code = exitFail
			}
		case *write:
			if bytes.Equal(src, out) {
				continue
			}
			if err := replaceFile(path, out); err != nil {
				fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
				code = exitFail
			}
		default:
			if _, err := stdout.Write(out); err != nil {
				fmt.Fprintf(stderr, "flowrun fmt: %v\n", err)
				return exitFail
			}
		}
	}
	return code
}

// replaceFile replaces the content of path with data, keeping its
// permissions. It writes a temporary file next to it and renames it over
// path, so a failure leaves the original untouched.
func replaceFile(path string, data []byte) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), info.Mode().Perm()); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rewriting %s: %w", path, err)
	}
	return nil
}
