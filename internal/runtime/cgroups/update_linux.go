package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// updatableFiles are the control files an update may write (v1 and v2
// names). Update saves the ones present before writing and puts them back
// when a write fails. Throttle and device rules are not among them.
var updatableFiles = []string{
	"memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness",
	"memory.max", "memory.swap.max", "memory.low",
	"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.rt_period_us", "cpu.rt_runtime_us",
	"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle",
	"cpuset.cpus", "cpuset.mems", "pids.max",
	"blkio.weight", "blkio.bfq.weight", "io.weight", "io.bfq.weight",
}

// Update writes r like Set, for a live container: device rules are left
// alone, and when any write fails the files written so far get their old
// values back, so a refused update changes nothing.
func (m *manager) Update(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	u := *r
	u.Devices = nil
	saved := m.snapshot()
	err := m.Set(&u)
	if err == nil {
		return nil
	}
	if rerr := restore(saved); rerr != nil {
		return fmt.Errorf("%w (restoring the previous values: %v)", err, rerr)
	}
	return err
}

// savedFile is a control file's value before an update.
type savedFile struct{ dir, file, value string }

func (m *manager) snapshot() []savedFile {
	var out []savedFile
	for _, d := range m.dirs() {
		for _, f := range updatableFiles {
			if v, err := readFile(d, f); err == nil && v != "" {
				out = append(out, savedFile{d, f, v})
			}
		}
	}
	return out
}

// restore writes saved values back. Some pairs must be written in a
// particular order (memory below memory+swap, quota against period), so it
// makes a second pass over the writes that failed.
func restore(saved []savedFile) error {
	pending := saved
	var errs []error
	for pass := 0; pass < 3 && len(pending) > 0; pass++ {
		var failed []savedFile
		errs = nil
		for _, s := range pending {
			cur, err := readFile(s.dir, s.file)
			if err == nil && cur == s.value {
				continue
			}
			if err := writeFile(s.dir, s.file, s.value); err != nil {
				failed = append(failed, s)
				errs = append(errs, err)
			}
		}
		pending = failed
	}
	return errors.Join(errs...)
}

// CheckCpuset checks that cpus and mems (cpuset list syntax, "0-3,6") name
// only online CPUs and memory nodes of this machine. Empty means unchanged.
func CheckCpuset(cpus, mems string) error {
	for _, c := range []struct{ kind, list, online string }{
		{"cpus", cpus, "/sys/devices/system/cpu/online"},
		{"mems", mems, "/sys/devices/system/node/online"},
	} {
		if c.list == "" {
			continue
		}
		want, err := ParseList(c.list)
		if err != nil {
			return fmt.Errorf("%s: %w", c.kind, err)
		}
		b, err := os.ReadFile(c.online)
		if err != nil {
			if c.kind == "mems" && errors.Is(err, os.ErrNotExist) {
				b = []byte("0") // no NUMA support: node 0 only
			} else {
				return fmt.Errorf("read online %s: %w", c.kind, err)
			}
		}
		have, err := ParseList(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("parse %s: %w", c.online, err)
		}
		for _, n := range slices.Sorted(maps.Keys(want)) {
			if !have[n] {
				return fmt.Errorf("%s %q: %d is not online on this machine (online: %s)", c.kind, c.list, n, strings.TrimSpace(string(b)))
			}
		}
	}
	return nil
}

// ParseList parses the kernel's list format ("0-3,6,8-9") into a set.
func ParseList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid list %q: bad number %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid list %q: bad range %q", s, part)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("invalid list %q: range %q too large", s, part)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}
