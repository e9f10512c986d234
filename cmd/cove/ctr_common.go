package main

// Helpers shared by the container verbs (ctr_*.go): opening the engine,
// finding containers, and exiting with the container's own code.

import (
	"errors"
	"fmt"
	"os"

	"cove/internal/engine"
	"cove/internal/engine/container"
)

// openEngine opens the engine over --root, with runtime state under
// COVE_RUNROOT (default /run/cove).
func openEngine() (*engine.Engine, error) {
	return engine.New(engine.Config{Root: global.root, RunRoot: os.Getenv("COVE_RUNROOT")})
}

// lookup finds one container by id, prefix or name.
func lookup(e *engine.Engine, arg string) (*container.Record, error) {
	r, err := e.Containers.Lookup(arg)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// engineExit turns an engine error carrying a docker exit code (126, 127)
// into the CLI's exitError.
func engineExit(err error) error {
	var ee *engine.ExitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.Code, err: ee.Err}
	}
	return err
}

// forEach runs fn on each named container, printing each name on success
// (as docker does); it fails if any failed.
func forEach(e *engine.Engine, args []string, quiet bool, fn func(*container.Record) error) error {
	var failed error
	for _, a := range args {
		r, err := lookup(e, a)
		if err == nil {
			err = fn(r)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			failed = fmt.Errorf("%d of %d containers failed", countFailed(failed)+1, len(args))
			continue
		}
		if !quiet {
			fmt.Println(a)
		}
	}
	return failed
}

func countFailed(err error) int {
	if err == nil {
		return 0
	}
	var n, m int
	fmt.Sscanf(err.Error(), "%d of %d", &n, &m)
	return n
}
