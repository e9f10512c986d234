package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// freezeTimeout bounds how long Freeze waits for every task to stop.
const freezeTimeout = 10 * time.Second

// ErrNoFreezer means the host has neither the v1 freezer nor cgroup.freeze.
var ErrNoFreezer = errors.New("no cgroup freezer (v1 freezer hierarchy or cgroup2 cgroup.freeze)")

// freezerDir returns where freezing happens: the v1 freezer hierarchy when
// mounted, else the cgroup2 directory when it has cgroup.freeze.
func (m *manager) freezerDir() (dir string, v2 bool, err error) {
	if d, ok := m.paths["freezer"]; ok {
		return d, false, nil
	}
	if d, ok := m.paths[UnifiedKey]; ok && exists(d, "cgroup.freeze") {
		return d, true, nil
	}
	return "", false, ErrNoFreezer
}

// Freeze stops every process in the cgroup and returns once the kernel
// reports the whole cgroup frozen: freezer.state FROZEN on v1 (it passes
// through FREEZING), "frozen 1" in cgroup.events on v2. If that does not
// happen within 10 s it thaws the cgroup again and fails.
func (m *manager) Freeze() error {
	dir, v2, err := m.freezerDir()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	if v2 {
		if err := writeFile(dir, "cgroup.freeze", "1"); err != nil {
			return err
		}
		for {
			ev, err := readKV(dir, "cgroup.events")
			if err != nil {
				return err
			}
			if ev["frozen"] == 1 {
				return nil
			}
			if time.Now().After(deadline) {
				_ = writeFile(dir, "cgroup.freeze", "0")
				return fmt.Errorf("freeze %s: not frozen after %v", dir, freezeTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; ; i++ {
		// Writing FROZEN again nudges tasks that were forking or in
		// uninterruptible sleep when the freeze started.
		if i%50 == 0 {
			if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
				return err
			}
		}
		s, err := readFile(dir, "freezer.state")
		if err != nil {
			return err
		}
		if s == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(dir, "freezer.state", "THAWED")
			return fmt.Errorf("freeze %s: still %s after %v", dir, s, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Thaw resumes a frozen cgroup.
func (m *manager) Thaw() error {
	dir, v2, err := m.freezerDir()
	if err != nil {
		return err
	}
	if v2 {
		return writeFile(dir, "cgroup.freeze", "0")
	}
	if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
		return err
	}
	waitFor(func() bool { s, _ := readFile(dir, "freezer.state"); return s == "THAWED" })
	return nil
}

// Frozen reports whether the cgroup is frozen or being frozen.
func (m *manager) Frozen() (bool, error) {
	dir, v2, err := m.freezerDir()
	if err != nil {
		return false, err
	}
	if v2 {
		s, err := readFile(dir, "cgroup.freeze")
		return s == "1", err
	}
	s, err := readFile(dir, "freezer.state")
	return strings.TrimSpace(s) != "THAWED", err
}
