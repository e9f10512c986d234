package main

// The command-line frame every cove verb plugs into: global flags, a
// registry of commands (each file adds its own with register), error
// reporting and exit codes. Verbs follow docker/podman flag names.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, as docker and podman use them.
const (
	exitOK          = 0
	exitEngineError = 125 // cove itself failed (bad flags, engine errors)
)

// globals are the flags every verb sees.
type globals struct {
	root     string // --root: the store directory
	logLevel string
}

var (
	global   globals
	builders []func() *cobra.Command
)

// register adds a command builder; files call it from init so the verb
// list is assembled in one place without a central switch.
func register(b func() *cobra.Command) { builders = append(builders, b) }

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "cove",
		Short:         "cove: a daemonless container engine",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Positional verbs only; unknown ones are usage errors.
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&global.root, "root", defaultRoot(), "store directory (images, containers, metadata)")
	pf.StringVar(&global.logLevel, "log-level", "warn", "log level (debug, info, warn, error)")
	for _, b := range builders {
		root.AddCommand(b())
	}
	return root
}

func defaultRoot() string {
	if r := os.Getenv("COVE_ROOT"); r != "" {
		return r
	}
	return "/var/lib/cove"
}

// signalContext is cancelled on SIGINT/SIGTERM so transfers stop cleanly
// (partial downloads stay for a resume).
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func run(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	ctx, cancel := signalContext()
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitEngineError
}
