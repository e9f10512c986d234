// Package specgen builds a container's OCI runtime spec from its image's
// configuration and the run options docker and podman users know
// (entrypoint/cmd, env, user, workdir, capabilities, seccomp, mounts,
// namespaces, rlimits, sysctls, devices). It only computes: the engine
// writes the result to the bundle.
package specgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime/bundle"
	"cove/internal/runtime/seccomp"
)

// DefaultCaps are the capabilities docker gives a container.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// AllCaps lists every capability name cove knows (--privileged, ALL).
var AllCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// InitPath is where --init's binary appears in the container.
const InitPath = "/sbin/cove-init"

// Options are the run/create flags that shape the spec. Fields are named
// after their flags.
type Options struct {
	Args        []string // command after the image name; empty: the image's Cmd
	Entrypoint  *string  // --entrypoint; "" clears the image's
	Env         []string // -e, --env-file (KEY=VALUE; KEY alone is taken from Environ)
	Workdir     string
	User        string
	Hostname    string
	Tty         bool
	Stdin       bool
	Annotations map[string]string
	Privileged  bool
	ReadOnly    bool
	Tmpfs       []string // /path[:options]
	CapAdd      []string
	CapDrop     []string
	SecurityOpt []string // seccomp=PROFILE|unconfined, no-new-privileges[:true|false]
	Ulimits     []string // name=soft[:hard]
	ShmSize     int64    // bytes; 0: 64 MiB
	Sysctls     []string // key=value
	Devices     []string // host[:container[:perms]]
	GroupAdd    []string
	Init        bool
	InitBinary  string // host path of the init bound at InitPath
	// Namespaces to join instead of creating (type -> path), e.g.
	// "pid" -> /proc/123/ns/pid for --pid container:X; "host" as the
	// path means the host's (no new namespace).
	JoinNS map[specs.LinuxNamespaceType]string
	// Mounts added last (hostname, hosts, resolv.conf, volumes).
	Mounts []specs.Mount
	// CgroupsPath is the container's cgroup (e.g. /cove/<id>).
	CgroupsPath string
	// Resources are the resource limits (--memory, --cpus, ...), in
	// docker's HostConfig field names.
	Resources
	// Environ resolves KEY-only -e entries; nil: os.Getenv.
	Environ func(string) (string, bool) `json:"-"`
}

// Generate builds the spec. rootfs is the mounted root filesystem, read for
// /etc/passwd and /etc/group when a user is named.
func Generate(img ocispec.ImageConfig, rootfs string, o Options) (*specs.Spec, error) {
	s := bundle.Default(false)
	s.Root = &specs.Root{Path: rootfs, Readonly: o.ReadOnly}
	p := s.Process
	p.Terminal = o.Tty
	p.NoNewPrivileges = false
	p.Rlimits = nil

	args, err := Command(img, o.Entrypoint, o.Args)
	if err != nil {
		return nil, err
	}
	if o.Init {
		if o.InitBinary == "" {
			return nil, fmt.Errorf("--init: no init binary (install tini)")
		}
		args = append([]string{InitPath, "--"}, args...)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: o.InitBinary,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	p.Args = args

	env, err := mergeEnv(img.Env, o.Env, o.Environ)
	if err != nil {
		return nil, err
	}
	if o.Tty && !hasKey(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	if o.Hostname != "" {
		env = setKey(env, "HOSTNAME", o.Hostname)
	}
	p.Env = env

	p.Cwd = "/"
	if img.WorkingDir != "" {
		p.Cwd = img.WorkingDir
	}
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	if !path.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("-w %s: working directory must be absolute", p.Cwd)
	}
	user := img.User
	if o.User != "" {
		user = o.User
	}
	if p.User, err = ResolveUser(rootfs, user, o.GroupAdd); err != nil {
		return nil, err
	}
	s.Hostname = o.Hostname

	caps, err := Capabilities(o.Privileged, o.CapAdd, o.CapDrop)
	if err != nil {
		return nil, err
	}
	if o.Privileged || hasAll(o.CapAdd) {
		// "All" means all this host lets us have (docker: the daemon's
		// bounding set); asking for more makes capset fail.
		caps = withinBounding(caps)
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Linux.Seccomp = seccomp.DefaultProfile(caps)
	for _, so := range o.SecurityOpt {
		k, v, _ := strings.Cut(so, "=")
		if !strings.Contains(so, "=") {
			k, v, _ = strings.Cut(so, ":")
		}
		switch k {
		case "seccomp":
			if v == "unconfined" {
				s.Linux.Seccomp = nil
				break
			}
			prof, err := loadSeccomp(v)
			if err != nil {
				return nil, err
			}
			s.Linux.Seccomp = prof
		case "no-new-privileges":
			p.NoNewPrivileges = v == "" || v == "true"
		case "label", "apparmor":
			if v != "disable" && v != "unconfined" {
				return nil, fmt.Errorf("--security-opt %s: not supported", so)
			}
		default:
			return nil, fmt.Errorf("--security-opt %s: unknown option", so)
		}
	}
	if o.Privileged {
		s.Linux.Seccomp = nil
		s.Linux.MaskedPaths = nil
		s.Linux.ReadonlyPaths = nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = without(s.Mounts[i].Options, "ro")
			}
		}
	}

	for _, u := range o.Ulimits {
		rl, err := ParseUlimit(u)
		if err != nil {
			return nil, err
		}
		p.Rlimits = append(p.Rlimits, rl)
	}
	shm := o.ShmSize
	if shm == 0 {
		shm = 64 << 20
	}
	for i := range s.Mounts {
		if s.Mounts[i].Destination == "/dev/shm" {
			s.Mounts[i].Options = append(without(s.Mounts[i].Options, "size=65536k"), "size="+strconv.FormatInt(shm/1024, 10)+"k")
		}
	}
	for _, t := range o.Tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if !path.IsAbs(dst) {
			return nil, fmt.Errorf("--tmpfs %s: destination must be absolute", t)
		}
		mo := []string{"rw", "noexec", "nosuid", "nodev"}
		if opts != "" {
			mo = strings.Split(opts, ",")
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: mo})
	}
	if len(o.Sysctls) > 0 {
		s.Linux.Sysctl = map[string]string{}
		for _, kv := range o.Sysctls {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--sysctl %s: want KEY=VALUE", kv)
			}
			s.Linux.Sysctl[k] = v
		}
	}
	for _, d := range o.Devices {
		dev, rule, err := Device(d)
		if err != nil {
			return nil, err
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rule)
	}
	if err := o.Resources.ApplyTo(s); err != nil {
		return nil, err
	}
	if err := joinNamespaces(s, o.JoinNS); err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, o.Mounts...)
	s.Linux.CgroupsPath = o.CgroupsPath
	if len(o.Annotations) > 0 {
		s.Annotations = map[string]string{}
		for k, v := range o.Annotations {
			s.Annotations[k] = v
		}
	}
	return s, nil
}

// Command is the process args from the image's Entrypoint and Cmd and the
// user's --entrypoint and arguments, docker's way.
func Command(img ocispec.ImageConfig, entrypoint *string, args []string) ([]string, error) {
	ep := img.Entrypoint
	cmd := img.Cmd
	if entrypoint != nil {
		ep = nil
		if *entrypoint != "" {
			ep = []string{*entrypoint}
		}
		if len(args) == 0 {
			cmd = nil
		}
	}
	if len(args) > 0 {
		cmd = args
	}
	out := append(append([]string(nil), ep...), cmd...)
	if len(out) == 0 {
		return nil, fmt.Errorf("no command specified: the image has no Cmd or Entrypoint")
	}
	return out, nil
}

func mergeEnv(image, user []string, environ func(string) (string, bool)) ([]string, error) {
	if environ == nil {
		environ = os.LookupEnv
	}
	env := append([]string(nil), image...)
	for _, e := range user {
		k, v, ok := strings.Cut(e, "=")
		if k == "" {
			return nil, fmt.Errorf("-e %q: empty variable name", e)
		}
		if !ok {
			var found bool
			if v, found = environ(k); !found {
				continue
			}
		}
		env = setKey(env, k, v)
	}
	if !hasKey(env, "PATH") {
		env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	}
	return env, nil
}

func hasKey(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

func setKey(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

// Capabilities computes the capability set: docker's default (or all with
// privileged), plus adds, minus drops; "ALL" works in both.
func Capabilities(privileged bool, add, drop []string) ([]string, error) {
	set := map[string]bool{}
	base := DefaultCaps
	if privileged {
		base = AllCaps
	}
	for _, c := range base {
		set[c] = true
	}
	norm := func(c string) (string, error) {
		c = strings.ToUpper(c)
		if c == "ALL" {
			return c, nil
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		for _, k := range AllCaps {
			if k == c {
				return c, nil
			}
		}
		return "", fmt.Errorf("unknown capability %q", c)
	}
	for _, c := range drop {
		n, err := norm(c)
		if err != nil {
			return nil, fmt.Errorf("--cap-drop: %w", err)
		}
		if n == "ALL" {
			set = map[string]bool{}
			continue
		}
		delete(set, n)
	}
	for _, c := range add {
		n, err := norm(c)
		if err != nil {
			return nil, fmt.Errorf("--cap-add: %w", err)
		}
		if n == "ALL" {
			for _, k := range AllCaps {
				set[k] = true
			}
			continue
		}
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func loadSeccomp(file string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--security-opt seccomp: %w", err)
	}
	var prof specs.LinuxSeccomp
	if err := json.Unmarshal(b, &prof); err != nil {
		return nil, fmt.Errorf("--security-opt seccomp=%s: %w", file, err)
	}
	if prof.DefaultAction == "" {
		return nil, fmt.Errorf("--security-opt seccomp=%s: no defaultAction", file)
	}
	return &prof, nil
}

var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

// ParseUlimit parses --ulimit name=soft[:hard].
func ParseUlimit(s string) (specs.POSIXRlimit, error) {
	name, val, ok := strings.Cut(s, "=")
	typ, known := rlimitNames[name]
	if !ok || !known {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %s: want NAME=SOFT[:HARD] with a known name", s)
	}
	soft, hard, hasHard := strings.Cut(val, ":")
	if !hasHard {
		hard = soft
	}
	parse := func(v string) (uint64, error) {
		if v == "-1" || v == "unlimited" {
			return ^uint64(0), nil
		}
		return strconv.ParseUint(v, 10, 64)
	}
	sv, err := parse(soft)
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %s: bad soft limit", s)
	}
	hv, err := parse(hard)
	if err != nil {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %s: bad hard limit", s)
	}
	if sv > hv {
		return specs.POSIXRlimit{}, fmt.Errorf("--ulimit %s: soft limit above hard limit", s)
	}
	return specs.POSIXRlimit{Type: typ, Soft: sv, Hard: hv}, nil
}

func joinNamespaces(s *specs.Spec, join map[specs.LinuxNamespaceType]string) error {
	for typ, p := range join {
		found := false
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != typ {
				ns = append(ns, n)
				continue
			}
			found = true
			if p != "host" {
				ns = append(ns, specs.LinuxNamespace{Type: typ, Path: p})
			}
		}
		if !found && p != "host" {
			ns = append(ns, specs.LinuxNamespace{Type: typ, Path: p})
		}
		s.Linux.Namespaces = ns
		if typ == specs.UTSNamespace && p == "host" {
			s.Hostname = ""
		}
		if typ == specs.NetworkNamespace && p == "host" {
			for i := range s.Mounts {
				if s.Mounts[i].Destination == "/sys" {
					// sysfs needs a network namespace of our own: bind the host's.
					s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
						Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
				}
			}
		}
		if typ == specs.IPCNamespace && p == "host" {
			var ms []specs.Mount
			for _, m := range s.Mounts {
				if m.Destination != "/dev/mqueue" {
					ms = append(ms, m)
				}
			}
			s.Mounts = ms
		}
	}
	return nil
}

func hasAll(list []string) bool {
	for _, c := range list {
		if strings.EqualFold(c, "ALL") {
			return true
		}
	}
	return false
}

// withinBounding drops the capabilities missing from this process's
// bounding set (CapBnd in /proc/self/status; AllCaps is in bit order).
func withinBounding(caps []string) []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return caps
	}
	var bnd uint64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				found = true
			}
		}
	}
	if !found {
		return caps
	}
	bit := map[string]int{}
	for i, c := range AllCaps {
		bit[c] = i
	}
	var out []string
	for _, c := range caps {
		if i, ok := bit[c]; !ok || bnd&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}
