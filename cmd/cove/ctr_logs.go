package main

// `cove logs` and `cove exec`.

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"cove/internal/engine"
	"cove/internal/runtime/console"
)

func init() {
	register(newLogsCommand)
	register(newExecCommand)
}

// parseSince accepts RFC 3339 times, Unix seconds or durations (10m).
func parseSince(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q: want RFC 3339, Unix seconds or a duration", s)
}

func newLogsCommand() *cobra.Command {
	var o engine.LogOptions
	var tail, since, until string
	c := &cobra.Command{
		Use:   "logs [flags] CONTAINER",
		Short: "Show a container's output",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var err error
			o.Tail = -1
			if tail != "all" && tail != "" {
				if o.Tail, err = strconv.Atoi(tail); err != nil || o.Tail < 0 {
					return fmt.Errorf("--tail %q: want a number or all", tail)
				}
			}
			if o.Since, err = parseSince(since); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if o.Until, err = parseSince(until); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			return e.Logs(c.Context(), r, o, os.Stdout, os.Stderr)
		},
	}
	fs := c.Flags()
	fs.BoolVarP(&o.Follow, "follow", "f", false, "keep printing new output until the container stops")
	fs.BoolVarP(&o.Timestamps, "timestamps", "t", false, "prefix each line with its time")
	fs.StringVarP(&tail, "tail", "n", "all", "lines from the end")
	fs.StringVar(&since, "since", "", "only lines since (RFC 3339, Unix seconds, or duration like 10m)")
	fs.StringVar(&until, "until", "", "only lines until")
	return c
}

func newExecCommand() *cobra.Command {
	var o engine.ExecOptions
	c := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			o.Args = args[1:]
			o.In, o.Out, o.Err = os.Stdin, os.Stdout, os.Stderr
			restore := func() error { return nil }
			if o.Tty && isTerminal(os.Stdin) {
				o.TTY = os.Stdin
				if rs, err := console.MakeRaw(os.Stdin); err == nil {
					restore = rs
				}
			}
			code, err := e.Exec(r, o)
			restore()
			if err != nil {
				return &exitError{code: code, err: err}
			}
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.Stdin, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&o.Tty, "tty", "t", false, "allocate a pseudo-terminal")
	fs.BoolVarP(&o.Detach, "detach", "d", false, "run in the background")
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable")
	fs.StringVarP(&o.User, "user", "u", "", "user[:group]")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "working directory")
	fs.BoolVar(&o.Privileged, "privileged", false, "all capabilities")
	return c
}
