package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes value to a cgroup control file with a single write(2).
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in our message already
		}
		return fmt.Errorf("write %s %q: %w", p, value, err)
	}
	return nil
}

// readFile returns the trimmed content of a cgroup control file.
func readFile(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// exists reports whether a control file exists in dir.
func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readPids parses a cgroup.procs file; a missing directory yields no pids.
func readPids(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s/cgroup.procs: %w", dir, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// mkdir creates dir, accepting an existing one.
func mkdir(dir string) error {
	if err := unix.Mkdir(dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}

// ensureCpuset fills the empty cpuset.cpus and cpuset.mems of dir and of each
// directory between root and dir from their parent: a v1 cpuset cgroup with an
// empty set refuses processes.
func ensureCpuset(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil
	}
	parent := root
	for _, c := range strings.Split(rel, "/") {
		cur := filepath.Join(parent, c)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readFile(cur, f)
			if err != nil {
				return err
			}
			if v != "" {
				continue
			}
			pv, err := readFile(parent, f)
			if err != nil {
				return err
			}
			if err := writeFile(cur, f, pv); err != nil {
				return err
			}
		}
		parent = cur
	}
	return nil
}

// wantedControllers are enabled, when available, in the subtree_control of
// every ancestor of a container's cgroup2 directory.
var wantedControllers = []string{"cpu", "memory", "pids", "io", "cpuset", "hugetlb"}

// enableControllers writes "+c" into dir/cgroup.subtree_control for each
// wanted controller listed in dir/cgroup.controllers and not yet enabled.
func enableControllers(dir string) error {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	on, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	have := strings.Fields(avail)
	enabled := strings.Fields(on)
	var errs []error
	for _, c := range wantedControllers {
		if !slices.Contains(have, c) || slices.Contains(enabled, c) {
			continue
		}
		if err := writeFile(dir, "cgroup.subtree_control", "+"+c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
