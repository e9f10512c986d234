package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// hierarchy is one mounted cgroup hierarchy.
type hierarchy struct {
	mountpoint string   // where it is mounted, e.g. /sys/fs/cgroup/memory
	root       string   // the cgroup mounted there (mountinfo field 4), usually "/"
	keys       []string // v1 controllers ("cpu", "name=systemd"); nil for cgroup2
}

// layout is the set of cgroup hierarchies of a host.
type layout struct {
	mode    Mode
	v1      []hierarchy
	unified *hierarchy // nil on a v1-only host
}

// v1 mount options that are not controller names.
var v1Options = map[string]bool{
	"rw": true, "ro": true, "clone_children": true, "noprefix": true,
	"xattr": true, "cpuset_v2_mode": true, "none": true, "all": true,
}

// parseMountinfo finds the cgroup hierarchies in a /proc/self/mountinfo text.
// The first mount of each hierarchy wins.
func parseMountinfo(r io.Reader) (*layout, error) {
	l := &layout{}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		root, mnt := unescapeMount(f[3]), unescapeMount(f[4])
		switch g[0] {
		case "cgroup2":
			if l.unified == nil {
				l.unified = &hierarchy{mountpoint: mnt, root: root}
			}
		case "cgroup":
			var keys []string
			for _, o := range strings.Split(g[2], ",") {
				if v1Options[o] || strings.HasPrefix(o, "release_agent=") {
					continue
				}
				keys = append(keys, o)
			}
			id := strings.Join(slices.Sorted(slices.Values(keys)), ",")
			if len(keys) == 0 || seen[id] {
				continue
			}
			seen[id] = true
			l.v1 = append(l.v1, hierarchy{mountpoint: mnt, root: root, keys: keys})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	switch {
	case len(l.v1) > 0 && l.unified != nil:
		l.mode = Hybrid
	case len(l.v1) > 0:
		l.mode = Legacy
	case l.unified != nil:
		l.mode = Unified
	default:
		return nil, fmt.Errorf("no cgroup hierarchy mounted")
	}
	return l, nil
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v byte
			okDigits := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					okDigits = false
					break
				}
				v = v*8 + (c - '0')
			}
			if okDigits {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup reads a /proc/<pid>/cgroup text into a map from v1 controller
// (each of a co-mounted set, and "name=X") to path; the cgroup2 entry has key "".
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			m[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	return m, nil
}

// containerPath applies the path rules to cgroupsPath: it returns the cleaned
// path and whether it is absolute (relative to each hierarchy root) or relative
// to the calling process's own cgroup.
//
//   - "" becomes "/<id>";
//   - "slice:prefix:name" (systemd form) becomes "/<expanded slice>/<prefix>-<name>.scope";
//   - "/a/b" is absolute, "a/b" relative.
func containerPath(cgroupsPath, id string) (p string, abs bool, err error) {
	switch {
	case cgroupsPath == "":
		if id == "" || strings.Contains(id, "/") || id == "." || id == ".." {
			return "", false, fmt.Errorf("invalid container id %q for a cgroup name", id)
		}
		return "/" + id, true, nil
	case !strings.HasPrefix(cgroupsPath, "/") && strings.Count(cgroupsPath, ":") == 2:
		p, err := systemdPath(cgroupsPath)
		return p, true, err
	case strings.HasPrefix(cgroupsPath, "/"):
		return path.Clean(cgroupsPath), true, nil
	}
	p = path.Clean(cgroupsPath)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false, fmt.Errorf("cgroups path %q escapes the parent cgroup", cgroupsPath)
	}
	return p, false, nil
}

// systemdPath maps "slice:prefix:name" to the directory systemd would use.
// An empty slice means system.slice; a name ending in ".slice" is a slice itself.
func systemdPath(s string) (string, error) {
	parts := strings.Split(s, ":")
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" || strings.Contains(name, "/") || strings.Contains(prefix, "/") {
		return "", fmt.Errorf("invalid systemd cgroups path %q", s)
	}
	if strings.HasSuffix(name, ".slice") {
		dir, err := expandSlice(name)
		if err != nil {
			return "", fmt.Errorf("systemd cgroups path %q: %w", s, err)
		}
		return "/" + dir, nil
	}
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("systemd cgroups path %q: %w", s, err)
	}
	unit := name + ".scope"
	if prefix != "" {
		unit = prefix + "-" + unit
	}
	return path.Join("/", dir, unit), nil
}

// expandSlice turns "a-b-c.slice" into "a.slice/a-b.slice/a-b-c.slice";
// the root slice "-.slice" is "".
func expandSlice(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || strings.Contains(name, "/") || name == "" {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	if name == "-" {
		return "", nil
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	var dirs []string
	for i := 0; i < len(name); i++ {
		if name[i] == '-' {
			dirs = append(dirs, name[:i]+".slice")
		}
	}
	return path.Join(append(dirs, slice)...), nil
}

// hierarchyDir is the container's directory in hierarchy h. own is the
// calling process's cgroup in h (from /proc/self/cgroup), used for relative paths.
func hierarchyDir(h hierarchy, own, p string, abs bool) string {
	if abs {
		return path.Join(h.mountpoint, p)
	}
	rel := own
	if h.root != "/" {
		rel = strings.TrimPrefix(own, h.root)
	}
	return path.Join(h.mountpoint, rel, p)
}
