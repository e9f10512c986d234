// Command cove-runc is cove's OCI runtime. Its command line is runc's, so
// containerd, Podman and Docker can drive it in runc's place.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/runtime"
)

func init() { runtime.LockInitThread() }

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "0.1.0"
	commit  = "unknown"
)

// globals are runc's global flags.
type globals struct {
	root, logPath, logFormat, criu, rootless string
	debug, systemdCgroup                     bool
	log                                      *slog.Logger
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.Init()
	}
	// No fd we inherited crosses an exec of ours (hooks, the init) unless
	// passed on purpose (--preserve-fds hands them over explicitly).
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("cove-runc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", "/run/cove-runc", "root directory for container state")
	fs.StringVar(&g.logPath, "log", "", "log file (default stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "accept systemd-style cgroupsPath slice:prefix:name")
	fs.StringVar(&g.criu, "criu", "criu", "path to criu")
	fs.StringVar(&g.rootless, "rootless", "auto", "rootless mode: true, false or auto")
	showVersion := false
	boolVar(fs, &showVersion, "version", "v")
	help := false
	boolVar(fs, &help, "help", "h")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(os.Stderr, "cove-runc: %v\n", err)
		return 1
	}
	if showVersion {
		printVersion()
		return 0
	}
	rest := fs.Args()
	if help || len(rest) == 0 {
		usage(os.Stdout)
		return 0
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		fmt.Fprintf(os.Stderr, "cove-runc: --log-format: unknown format %q (text or json)\n", g.logFormat)
		return 1
	}
	logOut := io.Writer(os.Stderr)
	if g.logPath != "" {
		f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cove-runc: --log: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	g.log = newLogger(logOut, g.logFormat, g.debug)

	cmd, ok := commands[rest[0]]
	if !ok {
		g.fail(fmt.Errorf("unknown command %q (see cove-runc --help)", rest[0]))
		return 1
	}
	code, err := cmd.run(g, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		// VERB --help succeeds, as with runc: Podman probes
		// `checkpoint --help` to decide whether a runtime can checkpoint.
		fmt.Printf("usage: cove-runc %s\n", cmd.usage)
		return 0
	}
	if err != nil {
		g.fail(err)
		if code <= 0 {
			code = 1
		}
	}
	return code
}

// fail reports a command's error: to the log (JSON lines with level and msg
// are what containerd's shim reads) and as one plain line on stderr, unless
// stderr is the log already.
func (g *globals) fail(err error) {
	if g.logPath != "" || g.logFormat == "json" {
		g.log.Error(err.Error())
	}
	if g.logPath != "" || g.logFormat == "text" {
		fmt.Fprintln(os.Stderr, "cove-runc:", err)
	}
}

func newLogger(w io.Writer, format string, debug bool) *slog.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch {
		case len(groups) > 0:
		case a.Key == slog.LevelKey:
			a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
		case a.Key == slog.TimeKey:
			a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func printVersion() {
	// go-runc and Docker parse "runc version", "commit:" and "spec:" lines.
	fmt.Printf("runc version %s (cove-runc)\ncommit: %s\nspec: %s\ngo: %s\n",
		version, commit, specVersion(), goVersion())
}

// boolVar registers a bool flag under several names (-d and --detach).
func boolVar(fs *flag.FlagSet, p *bool, names ...string) {
	for _, n := range names {
		fs.BoolVar(p, n, *p, "")
	}
}

// stringVar registers a string flag under several names.
func stringVar(fs *flag.FlagSet, p *string, value string, names ...string) {
	for _, n := range names {
		fs.StringVar(p, n, value, "")
	}
}

// parseArgs parses flags wherever they stand among the positional arguments,
// as callers write both "create --bundle b id" and "create id --bundle b".
// Everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%s: %w", fs.Name(), err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// oneID checks that exactly one container id was given.
func oneID(verb string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%s: expected exactly one container id, got %d arguments", verb, len(pos))
	}
	return pos[0], nil
}
