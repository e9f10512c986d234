package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// manager implements Manager over the directories in paths.
type manager struct {
	mode  Mode
	paths map[string]string // hierarchy key -> container directory
	roots map[string]string // hierarchy key -> mountpoint; nil after Load
}

// New returns the Manager of a container's cgroup, laid out for the host's
// hierarchies (read from /proc/self/mountinfo). It creates nothing.
//
// cgroupsPath follows runc: "" means "/<id>"; an absolute path is taken
// from each hierarchy's root; a relative path from the calling process's own
// cgroup in that hierarchy; the systemd form "slice:prefix:name" maps to the
// plain path "/<slice dirs>/<prefix>-<name>.scope" (no systemd is involved).
// On hybrid hosts the container also gets a directory in the cgroup2
// hierarchy, under the key UnifiedKey.
func New(cgroupsPath, id string) (Manager, error) {
	p, abs, err := containerPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer mi.Close()
	l, err := parseMountinfo(mi)
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	if !abs {
		f, err := os.Open("/proc/self/cgroup")
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if own, err = parseProcCgroup(f); err != nil {
			return nil, err
		}
	}
	return newManager(l, own, p, abs)
}

// newManager computes the directories of path p in every hierarchy of l.
func newManager(l *layout, own map[string]string, p string, abs bool) (*manager, error) {
	m := &manager{mode: l.mode, paths: map[string]string{}, roots: map[string]string{}}
	for _, h := range l.v1 {
		for _, k := range h.keys {
			o, ok := own[k]
			if !abs && !ok {
				return nil, fmt.Errorf("no %s entry in /proc/self/cgroup for relative path %q", k, p)
			}
			m.paths[k] = hierarchyDir(h, o, p, abs)
			m.roots[k] = h.mountpoint
		}
	}
	if h := l.unified; h != nil {
		o, ok := own[""]
		if !abs && !ok {
			return nil, fmt.Errorf("no cgroup2 entry in /proc/self/cgroup for relative path %q", p)
		}
		m.paths[UnifiedKey] = hierarchyDir(*h, o, p, abs)
		m.roots[UnifiedKey] = h.mountpoint
	}
	for k, d := range m.paths {
		if d == m.roots[k] {
			return nil, fmt.Errorf("cgroup path %q is the root of the %s hierarchy", p, k)
		}
	}
	return m, nil
}

// Load rebuilds a Manager from the map returned by Paths. A map holding only
// UnifiedKey is a pure v2 host; one with v1 keys is hybrid or v1.
func Load(paths map[string]string) Manager {
	m := &manager{mode: Legacy, paths: maps.Clone(paths)}
	if m.paths == nil {
		m.paths = map[string]string{}
	}
	if _, ok := m.paths[UnifiedKey]; ok {
		m.mode = Hybrid
		if len(m.paths) == 1 {
			m.mode = Unified
		}
	}
	return m
}

// Paths maps each hierarchy key to the container's directory there.
func (m *manager) Paths() map[string]string { return maps.Clone(m.paths) }

// dirs lists the distinct directories (co-mounted controllers share one), unified last.
func (m *manager) dirs() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m.paths)) {
		if d := m.paths[k]; k != UnifiedKey && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if d, ok := m.paths[UnifiedKey]; ok {
		out = append(out, d)
	}
	return out
}

// root returns the mountpoint of hierarchy k, from New or from mountinfo.
func (m *manager) root(k string) (string, error) {
	if r, ok := m.roots[k]; ok {
		return r, nil
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	l, err := parseMountinfo(strings.NewReader(string(b)))
	if err != nil {
		return "", err
	}
	hs := l.v1
	if l.unified != nil {
		hs = append(hs, *l.unified)
	}
	best := ""
	for _, h := range hs {
		if strings.HasPrefix(m.paths[k], h.mountpoint+"/") && len(h.mountpoint) > len(best) {
			best = h.mountpoint
		}
	}
	if best == "" {
		return "", fmt.Errorf("no cgroup hierarchy holds %s", m.paths[k])
	}
	return best, nil
}

// Create makes the directories. In the cgroup2 hierarchy it first enables
// the wanted controllers in every ancestor's cgroup.subtree_control, from the
// root down (a pure v2 host fails on errors; a hybrid host tolerates them).
// In the v1 cpuset hierarchy it fills empty cpuset.cpus/mems from the parent.
func (m *manager) Create() error {
	for _, k := range slices.Sorted(maps.Keys(m.paths)) {
		dir := m.paths[k]
		if k == UnifiedKey {
			if err := m.createUnified(dir); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
		if k == "cpuset" {
			r, err := m.root(k)
			if err != nil {
				return err
			}
			if err := ensureCpuset(r, dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *manager) createUnified(dir string) error {
	root, err := m.root(UnifiedKey)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is outside %s", dir, root)
	}
	cur := root
	for _, c := range strings.Split(rel, "/") {
		if err := enableControllers(cur); err != nil && m.mode == Unified {
			return fmt.Errorf("enable controllers: %w", err)
		}
		cur = filepath.Join(cur, c)
		if err := mkdir(cur); err != nil {
			return err
		}
	}
	return nil
}

// Apply moves pid into the container's cgroup in every hierarchy.
func (m *manager) Apply(pid int) error {
	if d, ok := m.paths["cpuset"]; ok {
		if err := ensureCpuset(filepath.Dir(d), d); err != nil {
			return err
		}
	}
	for _, d := range m.dirs() {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Pids lists the processes found in any of the container's directories.
func (m *manager) Pids() ([]int, error) {
	var all []int
	for _, d := range m.dirs() {
		pids, err := readPids(d)
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			if !slices.Contains(all, p) {
				all = append(all, p)
			}
		}
	}
	slices.Sort(all)
	return all, nil
}

// killTimeout bounds how long Kill waits for the cgroup to empty.
const killTimeout = 5 * time.Second

// Kill kills every process: by cgroup.kill where the kernel has it,
// otherwise by freezing the cgroup, sending SIGKILL to each process and
// thawing. It then waits up to 5 s until the cgroup is empty.
func (m *manager) Kill() error {
	pids, err := m.Pids()
	if err != nil || len(pids) == 0 {
		return err
	}
	u, hasU := m.paths[UnifiedKey]
	useKill := hasU && exists(u, "cgroup.kill")
	if useKill {
		if err := writeFile(u, "cgroup.kill", "1"); err != nil {
			return err
		}
	} else {
		thaw, err := m.freeze()
		if err != nil {
			return err
		}
		signalAll(pids)
		if err := thaw(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(killTimeout)
	for {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %s: processes %v still running after %v", m.dirs()[0], pids, killTimeout)
		}
		if !useKill {
			signalAll(pids) // children forked before the freeze took hold
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func signalAll(pids []int) {
	for _, p := range pids {
		_ = unix.Kill(p, unix.SIGKILL)
	}
}

// freeze stops every process (v1 freezer or v2 cgroup.freeze) and returns
// the function that thaws them. Without a freezer it does nothing.
func (m *manager) freeze() (thaw func() error, err error) {
	noop := func() error { return nil }
	if d, ok := m.paths["freezer"]; ok {
		if err := writeFile(d, "freezer.state", "FROZEN"); err != nil {
			return nil, err
		}
		waitFor(func() bool { s, _ := readFile(d, "freezer.state"); return s == "FROZEN" })
		return func() error { return writeFile(d, "freezer.state", "THAWED") }, nil
	}
	if d, ok := m.paths[UnifiedKey]; ok && exists(d, "cgroup.freeze") {
		if err := writeFile(d, "cgroup.freeze", "1"); err != nil {
			return nil, err
		}
		waitFor(func() bool { s, _ := readFile(d, "cgroup.events"); return strings.Contains(s, "frozen 1") })
		return func() error { return writeFile(d, "cgroup.freeze", "0") }, nil
	}
	return noop, nil
}

// waitFor polls cond for up to one second.
func waitFor(cond func() bool) {
	for i := 0; i < 100 && !cond(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// Destroy kills what is left in the cgroup and removes the container's
// directory in every hierarchy. Only the leaf directory is removed: parents
// created by Create (for nested paths) are left in place. Missing
// directories are not an error.
func (m *manager) Destroy() error {
	if err := m.Kill(); err != nil {
		return err
	}
	var errs []error
	for _, d := range m.dirs() {
		errs = append(errs, rmdir(d))
	}
	return errors.Join(errs...)
}

// rmdir removes a cgroup directory, retrying for a while on EBUSY (exiting
// processes are still being accounted).
func rmdir(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("rmdir %s: %w", dir, err)
}
