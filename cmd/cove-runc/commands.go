package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime"
	"cove/internal/runtime/bundle"
)

type command struct {
	usage string
	run   func(g *globals, args []string) (int, error)
}

// commands maps each verb to its handler. Verbs living in files of their
// own register themselves from an init function there.
var commands = map[string]command{}

func init() {
	for verb, c := range map[string]command{
		"create": {"create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--preserve-fds N] ID", cmdCreate},
		"start":  {"start ID", cmdStart},
		"run":    {"run [create flags] [--detach] ID", cmdRun},
		"state":  {"state ID", cmdState},
		"kill":   {"kill [--all] ID [SIGNAL]", cmdKill},
		"delete": {"delete [--force] ID...", cmdDelete},
		"list":   {"list [--format table|json] [--quiet]", cmdList},
		"spec":   {"spec [--bundle DIR] [--rootless]", cmdSpec},
		"exec":   {"exec [--process FILE] [-e K=V] [--cwd D] [-u UID[:GID]] [--cap C] [-t] [-d] [--pid-file F] ID [CMD...]", cmdExec},
	} {
		commands[verb] = c
	}
	commands["ls"] = commands["list"]
	for _, verb := range []string{"ps", "pause", "resume", "update", "events", "features", "checkpoint", "restore"} {
		if _, ok := commands[verb]; ok {
			continue // registered by its own file
		}
		commands[verb] = command{verb + " (not implemented yet)", func(*globals, []string) (int, error) {
			return 1, fmt.Errorf("%s: not implemented yet", verb)
		}}
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cove-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...")
	fmt.Fprintln(w, "\ncove-runc is an OCI runtime with runc's command line.\n\ncommands:")
	for _, name := range []string{"create", "start", "run", "exec", "state", "kill", "delete", "list",
		"ps", "pause", "resume", "update", "events", "checkpoint", "restore", "features", "spec"} {
		if c, ok := commands[name]; ok && !strings.Contains(c.usage, "not implemented") {
			fmt.Fprintln(w, "  "+c.usage)
		}
	}
}

func (g *globals) runtime() *runtime.Runtime {
	return &runtime.Runtime{Store: runtime.Store{Root: g.root}, Log: g.log}
}

func createFlags(name string, o *runtime.CreateOptions) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	stringVar(fs, &o.Bundle, ".", "bundle", "b")
	fs.StringVar(&o.PidFile, "pid-file", "", "")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "")
	fs.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "")
	return fs
}

func cmdCreate(g *globals, args []string) (int, error) {
	o := &runtime.CreateOptions{}
	pos, err := parseArgs(createFlags("create", o), args)
	if err != nil {
		return 1, err
	}
	if o.ID, err = oneID("create", pos); err != nil {
		return 1, err
	}
	return 0, g.runtime().Create(o)
}

func cmdRun(g *globals, args []string) (int, error) {
	o := &runtime.CreateOptions{}
	fs := createFlags("run", o)
	var detach, keep, noSubreaper bool
	boolVar(fs, &detach, "detach", "d")
	fs.BoolVar(&keep, "keep", false, "")
	fs.BoolVar(&noSubreaper, "no-subreaper", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	if o.ID, err = oneID("run", pos); err != nil {
		return 1, err
	}
	return g.runtime().Run(o, detach)
}

func cmdStart(g *globals, args []string) (int, error) {
	pos, err := parseArgs(flag.NewFlagSet("start", flag.ContinueOnError), args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("start", pos)
	if err != nil {
		return 1, err
	}
	return 0, g.runtime().Start(id)
}

// stateJSON is runc's state output: the OCI state plus rootfs, created and owner.
type stateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func toJSON(s *runtime.State) stateJSON {
	status := s.Status()
	pid := s.Pid
	if status == runtime.StatusStopped {
		pid = 0
	}
	return stateJSON{
		OCIVersion: specs.Version, ID: s.ID, Pid: pid, Status: status, Bundle: s.Bundle,
		Rootfs: s.Rootfs, Created: s.Created, Owner: owner(s.Dir()), Annotations: s.Annotations,
	}
}

// owner names the user owning the container's state directory.
func owner(dir string) string {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return ""
	}
	uid := strconv.Itoa(int(st.Uid))
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return "#" + uid
}

func cmdState(g *globals, args []string) (int, error) {
	pos, err := parseArgs(flag.NewFlagSet("state", flag.ContinueOnError), args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("state", pos)
	if err != nil {
		return 1, err
	}
	s, err := g.runtime().State(id)
	if err != nil {
		return 1, err
	}
	b, _ := json.MarshalIndent(toJSON(s), "", "  ")
	fmt.Println(string(b))
	return 0, nil
}

func cmdKill(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	var all bool
	boolVar(fs, &all, "all", "a")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	if len(pos) < 1 || len(pos) > 2 {
		return 1, errors.New("kill: usage: kill [--all] ID [SIGNAL]")
	}
	sig := unix.SIGTERM
	if len(pos) == 2 {
		if sig, err = runtime.ParseSignal(pos[1]); err != nil {
			return 1, fmt.Errorf("kill: %w", err)
		}
	}
	return 0, g.runtime().Kill(pos[0], sig, all)
}

func cmdDelete(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	var force bool
	boolVar(fs, &force, "force", "f")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	if len(pos) == 0 {
		return 1, errors.New("delete: expected a container id")
	}
	var errs []error
	for _, id := range pos {
		if err := g.runtime().Delete(id, force); err != nil {
			errs = append(errs, err)
		}
	}
	return 0, errors.Join(errs...)
}

func cmdList(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	format := "table"
	var quiet bool
	stringVar(fs, &format, "table", "format", "f")
	boolVar(fs, &quiet, "quiet", "q")
	if _, err := parseArgs(fs, args); err != nil {
		return 1, err
	}
	states, err := g.runtime().List()
	if err != nil {
		return 1, err
	}
	switch {
	case quiet:
		for _, s := range states {
			fmt.Println(s.ID)
		}
	case format == "json":
		out := make([]stateJSON, 0, len(states))
		for _, s := range states {
			out = append(out, toJSON(s))
		}
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
	case format == "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			j := toJSON(s)
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", j.ID, j.Pid, j.Status, j.Bundle, j.Created.Format(time.RFC3339Nano), j.Owner)
		}
		w.Flush()
	default:
		return 1, fmt.Errorf("list: --format: unknown format %q (table or json)", format)
	}
	return 0, nil
}

func cmdSpec(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("spec", flag.ContinueOnError)
	dir := ""
	var rootless bool
	stringVar(fs, &dir, "", "bundle", "b")
	fs.BoolVar(&rootless, "rootless", false, "")
	if _, err := parseArgs(fs, args); err != nil {
		return 1, err
	}
	path := filepath.Join(dir, "config.json")
	if _, err := os.Stat(path); err == nil {
		return 1, fmt.Errorf("spec: %s already exists; remove it first", path)
	}
	b, err := json.MarshalIndent(bundle.Default(rootless), "", "\t")
	if err != nil {
		return 1, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o666); err != nil {
		return 1, fmt.Errorf("spec: %w", err)
	}
	return 0, nil
}

func specVersion() string { return specs.Version }

func goVersion() string { return goruntime.Version() }
