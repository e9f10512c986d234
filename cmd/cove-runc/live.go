package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime"
)

func init() {
	commands["ps"] = command{"ps [--format table|json] ID [PS-ARGS...]", cmdPs}
	commands["pause"] = command{"pause ID", cmdPause}
	commands["resume"] = command{"resume ID", cmdResume}
	commands["update"] = command{"update [--resources FILE|-] [--memory N] [--cpu-quota N] [--cpu-shares N] [--cpuset-cpus L] [--pids-limit N] [--blkio-weight N] ... ID", cmdUpdate}
	commands["events"] = command{"events [--stats] [--interval 5s] ID", cmdEvents}
}

// cmdPs prints the container's processes: their pids as a JSON array, or
// the host's ps output (ps -ef, or the arguments after the id) limited to
// the header and the container's processes.
func cmdPs(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	format := "table"
	stringVar(fs, &format, "table", "format", "f")
	// Flags stop at the container id: what follows goes to ps.
	if err := fs.Parse(args); err != nil {
		return 1, fmt.Errorf("ps: %w", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return 1, errors.New("ps: expected a container id")
	}
	id, psArgs := rest[0], rest[1:]
	if len(psArgs) > 0 && psArgs[0] == "--" {
		psArgs = psArgs[1:]
	}
	if format != "table" && format != "json" {
		return 1, fmt.Errorf("ps: --format: unknown format %q (table or json)", format)
	}
	pids, err := g.runtime().Ps(id)
	if err != nil {
		return 1, err
	}
	if format == "json" {
		if pids == nil {
			pids = []int{}
		}
		return 0, json.NewEncoder(os.Stdout).Encode(pids)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).CombinedOutput()
	if err != nil {
		return 1, fmt.Errorf("ps: %w: %s", err, out)
	}
	table, err := filterPs(string(out), pids)
	if err != nil {
		return 1, err
	}
	fmt.Print(table)
	return 0, nil
}

// filterPs keeps ps output's header line and the lines whose PID column
// holds one of pids.
func filterPs(out string, pids []int) (string, error) {
	lines := strings.Split(out, "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return "", errors.New("ps: no PID column in the ps output header")
	}
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil {
			return "", fmt.Errorf("ps: parse pid in %q: %w", line, err)
		}
		if slices.Contains(pids, pid) {
			b.WriteString(line + "\n")
		}
	}
	return b.String(), nil
}

func cmdPause(g *globals, args []string) (int, error) {
	pos, err := parseArgs(flag.NewFlagSet("pause", flag.ContinueOnError), args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("pause", pos)
	if err != nil {
		return 1, err
	}
	return 0, g.runtime().Pause(id)
}

func cmdResume(g *globals, args []string) (int, error) {
	pos, err := parseArgs(flag.NewFlagSet("resume", flag.ContinueOnError), args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("resume", pos)
	if err != nil {
		return 1, err
	}
	return 0, g.runtime().Resume(id)
}

// updateFlags are update's value flags, by name; every value is a string
// so that a flag given as "" or "0" can be told from one not given.
var updateFlags = []string{
	"blkio-weight", "cpu-period", "cpu-quota", "cpu-burst", "cpu-share", "cpu-shares",
	"cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "cpu-idle",
	"kernel-memory", "kernel-memory-tcp", "memory", "memory-reservation", "memory-swap",
	"pids-limit", "l3-cache-schema", "mem-bw-schema",
}

func cmdUpdate(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	var resources string
	stringVar(fs, &resources, "", "resources", "r")
	vals := map[string]*string{}
	for _, n := range updateFlags {
		vals[n] = fs.String(n, "", "")
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("update", pos)
	if err != nil {
		return 1, err
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if v, ok := vals[f.Name]; ok {
			given[f.Name] = *v
		}
	})
	var res *specs.LinuxResources
	if resources != "" {
		if res, err = readResources(resources); err != nil {
			return 1, err
		}
	} else {
		if res, err = resourcesFromFlags(g, given); err != nil {
			return 1, err
		}
	}
	return 0, g.runtime().Update(id, res)
}

// readResources decodes a specs.LinuxResources from a file or stdin ("-").
func readResources(path string) (*specs.LinuxResources, error) {
	in := io.Reader(os.Stdin)
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("update: --resources: %w", err)
		}
		defer f.Close()
		in = f
	}
	res := &specs.LinuxResources{}
	dec := json.NewDecoder(in)
	if err := dec.Decode(res); err != nil {
		return nil, fmt.Errorf("update: --resources %s: %w", path, err)
	}
	return res, nil
}

// resourcesFromFlags builds the update from runc's flags. Values are checked
// here so that an error names the flag.
func resourcesFromFlags(g *globals, given map[string]string) (*specs.LinuxResources, error) {
	res := &specs.LinuxResources{}
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	bad := func(name, v string, why string) error {
		return fmt.Errorf("update: invalid value for --%s %q: %s", name, v, why)
	}
	for _, name := range updateFlags {
		v, ok := given[name]
		if !ok {
			continue
		}
		switch name {
		case "kernel-memory", "kernel-memory-tcp":
			g.log.Warn("setting --" + name + " is ignored (kernel memory limits are obsolete)")
		case "l3-cache-schema", "mem-bw-schema":
			return nil, fmt.Errorf("update: --%s: Intel RDT is not supported by cove-runc", name)
		case "memory", "memory-reservation", "memory-swap":
			n, err := parseMemory(v)
			if err != nil {
				return nil, bad(name, v, err.Error())
			}
			switch name {
			case "memory":
				mem().Limit = &n
			case "memory-reservation":
				mem().Reservation = &n
			default:
				mem().Swap = &n
			}
		case "cpu-period", "cpu-rt-period", "cpu-share", "cpu-shares", "cpu-burst":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, bad(name, v, "want a non-negative integer")
			}
			switch name {
			case "cpu-period":
				cpu().Period = &n
			case "cpu-rt-period":
				cpu().RealtimePeriod = &n
			case "cpu-burst":
				cpu().Burst = &n
			default:
				cpu().Shares = &n
			}
		case "cpu-quota", "cpu-rt-runtime", "cpu-idle":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || (n < -1 && name != "cpu-idle") {
				return nil, bad(name, v, "want an integer, or -1 for unlimited")
			}
			switch name {
			case "cpu-quota":
				cpu().Quota = &n
			case "cpu-rt-runtime":
				cpu().RealtimeRuntime = &n
			default:
				cpu().Idle = &n
			}
		case "cpuset-cpus", "cpuset-mems":
			if v == "" {
				continue
			}
			if name == "cpuset-cpus" {
				cpu().Cpus = v
			} else {
				cpu().Mems = v
			}
			if err := checkCpuset(name, v); err != nil {
				return nil, err
			}
		case "pids-limit":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1 {
				return nil, bad(name, v, "want a positive integer, or -1 for unlimited")
			}
			if n != 0 { // 0 leaves the limit as it is, as in runc
				res.Pids = &specs.LinuxPids{Limit: &n}
			}
		case "blkio-weight":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || (n != 0 && (n < 10 || n > 1000)) {
				return nil, bad(name, v, "want a weight from 10 to 1000")
			}
			if n != 0 {
				w := uint16(n)
				res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			}
		}
	}
	return res, nil
}

// checkCpuset checks a --cpuset-cpus/--cpuset-mems value against the machine.
func checkCpuset(flagName, v string) error {
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{}}
	if flagName == "cpuset-cpus" {
		r.CPU.Cpus = v
	} else {
		r.CPU.Mems = v
	}
	if err := runtime.CheckResources(r); err != nil {
		return fmt.Errorf("update: invalid value for --%s %q: %w", flagName, v, err)
	}
	return nil
}

// parseMemory parses a memory size as runc does (go-units RAMInBytes):
// a number with an optional binary suffix k, m, g, t or p (case-insensitive,
// optionally followed by "i" and/or "b"), or -1 for unlimited.
func parseMemory(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	t = strings.TrimSuffix(t, "i")
	mult := 1.0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgtp", t[n-1]); i >= 0 {
			mult = math.Pow(1024, float64(i+1))
			t = t[:n-1]
		}
	}
	t = strings.TrimSpace(t)
	if t == "" || strings.ContainsAny(t, "+-eE") {
		return 0, errors.New("want a size like 512m or 1g, or -1 for unlimited")
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, errors.New("want a size like 512m or 1g, or -1 for unlimited")
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, errors.New("too large")
	}
	return int64(v), nil
}

// cmdEvents prints the container's events as JSON lines: one stats event
// with --stats, otherwise stats every --interval plus OOM events until the
// container exits.
func cmdEvents(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	var stats bool
	interval := 5 * time.Second
	fs.BoolVar(&stats, "stats", false, "")
	fs.DurationVar(&interval, "interval", interval, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	id, err := oneID("events", pos)
	if err != nil {
		return 1, err
	}
	if interval <= 0 {
		return 1, fmt.Errorf("events: --interval %v: must be positive", interval)
	}
	if stats {
		interval = 0
	}
	enc := json.NewEncoder(os.Stdout)
	return 0, g.runtime().Events(id, interval, func(e *runtime.Event) error { return enc.Encode(e) })
}
