package bundle

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime/caps"
)

// FieldError is a validation problem with one field of a spec. Field is the
// JSON path, e.g. "process.capabilities.bounding[2]".
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Problem
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate checks a spec and returns the first problem found as a
// *FieldError naming the JSON field. It does not look at the filesystem
// (Load checks the root directory) and does not validate seccomp.
func Validate(s *specs.Spec) error {
	if s == nil {
		return errors.New("spec is nil")
	}
	v := validator{s: s, ns: map[specs.LinuxNamespaceType]bool{}}
	if s.Linux != nil {
		for _, n := range s.Linux.Namespaces {
			v.ns[n.Type] = true
		}
	}
	for _, check := range []func() error{
		v.version, v.root, v.process, v.hostname, v.mounts, v.hooks,
		v.namespaces, v.idMappings, v.sysctl, v.devices,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

type validator struct {
	s  *specs.Spec
	ns map[specs.LinuxNamespaceType]bool // namespace types listed (new or joined)
}

func (v *validator) version() error {
	ver := v.s.Version
	if ver == "" {
		return fieldErr("ociVersion", "missing")
	}
	majorStr, _, _ := strings.Cut(ver, ".")
	major, err := strconv.Atoi(majorStr)
	if err != nil || majorStr == "" || majorStr[0] == '+' || majorStr[0] == '-' {
		return fieldErr("ociVersion", "invalid version %q", ver)
	}
	if major != specs.VersionMajor {
		return fieldErr("ociVersion", "unsupported major version %q", ver)
	}
	return nil
}

func (v *validator) root() error {
	switch {
	case v.s.Root == nil:
		return fieldErr("root", "missing")
	case v.s.Root.Path == "":
		return fieldErr("root.path", "empty")
	}
	return nil
}

func (v *validator) process() error {
	p := v.s.Process
	if p == nil {
		return fieldErr("process", "missing")
	}
	if len(p.Args) == 0 {
		return fieldErr("process.args", "empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fieldErr("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		name, _, ok := strings.Cut(e, "=")
		switch {
		case !ok:
			return fieldErr(fmt.Sprintf("process.env[%d]", i), "%q has no \"=\"", e)
		case name == "":
			return fieldErr(fmt.Sprintf("process.env[%d]", i), "%q has an empty name", e)
		case strings.ContainsRune(e, 0):
			return fieldErr(fmt.Sprintf("process.env[%d]", i), "contains a NUL byte")
		}
	}
	if c := p.Capabilities; c != nil {
		sets := []struct {
			name  string
			names []string
		}{
			{"bounding", c.Bounding}, {"effective", c.Effective}, {"inheritable", c.Inheritable},
			{"permitted", c.Permitted}, {"ambient", c.Ambient},
		}
		for _, set := range sets {
			for i, n := range set.names {
				if !caps.Known(n) {
					return fieldErr(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i), "unknown capability %q", n)
				}
			}
		}
	}
	seen := map[string]bool{}
	for i, r := range p.Rlimits {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		switch {
		case !slices.Contains(rlimitTypes, r.Type):
			return fieldErr(field+".type", "unknown rlimit %q", r.Type)
		case seen[r.Type]:
			return fieldErr(field+".type", "duplicate rlimit %q", r.Type)
		case r.Soft > r.Hard:
			return fieldErr(field, "soft limit %d exceeds hard limit %d", r.Soft, r.Hard)
		}
		seen[r.Type] = true
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fieldErr("process.oomScoreAdj", "%d is outside -1000..1000", *p.OOMScoreAdj)
	}
	return nil
}

// rlimitTypes are the rlimits of getrlimit(2).
var rlimitTypes = []string{
	"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
	"RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
	"RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
}

func (v *validator) hostname() error {
	if v.s.Hostname != "" && !v.ns[specs.UTSNamespace] {
		return fieldErr("hostname", "set without a UTS namespace")
	}
	if v.s.Domainname != "" && !v.ns[specs.UTSNamespace] {
		return fieldErr("domainname", "set without a UTS namespace")
	}
	return nil
}

func (v *validator) mounts() error {
	for i, m := range v.s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fieldErr(fmt.Sprintf("mounts[%d].destination", i), "%q is not an absolute path", m.Destination)
		}
		if err := mappings(fmt.Sprintf("mounts[%d].uidMappings", i), m.UIDMappings); err != nil {
			return err
		}
		if err := mappings(fmt.Sprintf("mounts[%d].gidMappings", i), m.GIDMappings); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) hooks() error {
	h := v.s.Hooks
	if h == nil {
		return nil
	}
	lists := []struct {
		name  string
		hooks []specs.Hook
	}{
		//lint:ignore SA1019 prestart is deprecated but still run, so still checked
		{"prestart", h.Prestart},
		{"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop},
	}
	for _, l := range lists {
		for i, hook := range l.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", l.name, i)
			if !filepath.IsAbs(hook.Path) {
				return fieldErr(field+".path", "%q is not an absolute path", hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return fieldErr(field+".timeout", "%d is not positive", *hook.Timeout)
			}
		}
	}
	return nil
}

// namespaceTypes are the namespace types of the runtime spec.
var namespaceTypes = []specs.LinuxNamespaceType{
	specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace,
}

func (v *validator) namespaces() error {
	if v.s.Linux == nil {
		return nil
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, n := range v.s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		switch {
		case !slices.Contains(namespaceTypes, n.Type):
			return fieldErr(field+".type", "unknown namespace type %q", n.Type)
		case seen[n.Type]:
			return fieldErr(field+".type", "duplicate namespace %q", n.Type)
		case n.Path != "" && !filepath.IsAbs(n.Path):
			return fieldErr(field+".path", "%q is not an absolute path", n.Path)
		}
		seen[n.Type] = true
	}
	return nil
}

func (v *validator) idMappings() error {
	l := v.s.Linux
	if l == nil {
		return nil
	}
	if err := mappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	if err := mappings("linux.gidMappings", l.GIDMappings); err != nil {
		return err
	}
	if !v.ns[specs.UserNamespace] {
		if len(l.UIDMappings) > 0 {
			return fieldErr("linux.uidMappings", "set without a user namespace")
		}
		if len(l.GIDMappings) > 0 {
			return fieldErr("linux.gidMappings", "set without a user namespace")
		}
	}
	return nil
}

func mappings(field string, m []specs.LinuxIDMapping) error {
	for i, id := range m {
		if id.Size == 0 {
			return fieldErr(fmt.Sprintf("%s[%d].size", field, i), "must not be 0")
		}
	}
	return nil
}

func (v *validator) sysctl() error {
	if v.s.Linux == nil {
		return nil
	}
	// Check in key order so that the first problem reported is stable.
	keys := make([]string, 0, len(v.s.Linux.Sysctl))
	for k := range v.s.Linux.Sysctl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := fmt.Sprintf("linux.sysctl[%q]", k)
		if err := v.sysctlKey(k); err != nil {
			return fieldErr(field, "%v", err)
		}
		if err := sysctlValue(v.s.Linux.Sysctl[k]); err != nil {
			return fieldErr(field, "%v", err)
		}
	}
	return nil
}

// sysctlKey allows only sysctls that belong to a namespace the container
// gets (or joins). Keys may use "." or "/" as separator, not both.
func (v *validator) sysctlKey(key string) error {
	k := key
	if strings.Contains(k, "/") {
		if strings.Contains(k, ".") {
			return errors.New("key mixes \"/\" and \".\" separators")
		}
		k = strings.ReplaceAll(k, "/", ".")
	}
	for _, part := range strings.Split(k, ".") {
		if part == "" || strings.IndexFunc(part, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) >= 0 {
			return errors.New("malformed key")
		}
	}
	var need specs.LinuxNamespaceType
	switch {
	case k == "kernel.sem", strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "kernel.msg"),
		strings.HasPrefix(k, "fs.mqueue."):
		need = specs.IPCNamespace
	case k == "kernel.hostname", k == "kernel.domainname":
		need = specs.UTSNamespace
	case strings.HasPrefix(k, "net."):
		need = specs.NetworkNamespace
	default:
		return errors.New("not a namespaced sysctl")
	}
	if !v.ns[need] {
		return fmt.Errorf("needs a %s namespace", need)
	}
	return nil
}

// sysctlValue refuses values that could smuggle a second setting into a
// writer that joins settings (CVE-2022-0811: "v+key=value"), and control
// characters.
func sysctlValue(val string) error {
	if strings.Contains(val, "=") {
		return errors.New("value contains \"=\"")
	}
	for _, r := range val {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("value contains control character %q", r)
		}
	}
	return nil
}

func (v *validator) devices() error {
	if v.s.Linux == nil {
		return nil
	}
	for i, d := range v.s.Linux.Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return fieldErr(field+".type", "invalid device type %q", d.Type)
		}
		if !filepath.IsAbs(d.Path) {
			return fieldErr(field+".path", "%q is not an absolute path", d.Path)
		}
		if d.Type != "p" && (d.Major < 0 || d.Minor < 0) {
			return fieldErr(field, "negative device number %d:%d", d.Major, d.Minor)
		}
	}
	return nil
}
