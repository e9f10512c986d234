package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of cpuacct.stat (100 on every Linux ABI).
const clockTicks = 100

// Stats reads the cgroup's resource usage: CPU, memory, pids, block I/O and
// huge pages, each from its v1 hierarchy or the cgroup2 directory. A
// controller the host lacks leaves its part zero; an unreadable file that
// should be there is an error.
func (m *manager) Stats() (*Stats, error) {
	s := &Stats{Hugetlb: map[string]HugetlbStat{}}
	for _, f := range []func(*Stats) error{m.cpuStats, m.cpusetStats, m.memoryStats, m.pidsStats, m.blkioStats, m.hugetlbStats} {
		if err := f(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// statDir is controller()'s directory, or "" when the host has none for it.
func (m *manager) statDir(v1name, v2name string) (string, bool) {
	d, v2, err := m.controller(v1name, v2name)
	if err != nil {
		return "", false
	}
	return d, v2
}

// parseUint parses a control file value; "max" is the largest value.
func parseUint(s string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (-1 in some v1 files) read as 0.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
	}
	return v, err
}

// readUint reads a single-number control file; a missing file reads as 0.
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := parseUint(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s/%s: %w", dir, file, err)
	}
	return v, nil
}

// readKV reads a flat keyed file ("key value" lines, as memory.stat,
// cpu.stat, memory.events); a missing file reads as empty.
func readKV(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := parseUint(f[1])
		if err != nil {
			return nil, fmt.Errorf("parse %s/%s: %q: %w", dir, file, sc.Text(), err)
		}
		out[f[0]] = v
	}
	return out, nil
}

// readUints reads a space-separated list of numbers (cpuacct.usage_percpu).
func readUints(dir, file string) ([]uint64, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := parseUint(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s/%s: %w", dir, file, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func (m *manager) cpuStats(s *Stats) error {
	c := &s.CPU
	if d, v2 := m.statDir("cpuacct", "cpu"); d != "" && !v2 {
		var err error
		if c.Usage.Total, err = readUint(d, "cpuacct.usage"); err != nil {
			return err
		}
		if c.Usage.Percpu, err = readUints(d, "cpuacct.usage_percpu"); err != nil {
			return err
		}
		if c.Usage.PercpuKernel, err = readUints(d, "cpuacct.usage_percpu_sys"); err != nil {
			return err
		}
		if c.Usage.PercpuUser, err = readUints(d, "cpuacct.usage_percpu_user"); err != nil {
			return err
		}
		st, err := readKV(d, "cpuacct.stat")
		if err != nil {
			return err
		}
		c.Usage.User = st["user"] * (1e9 / clockTicks)
		c.Usage.Kernel = st["system"] * (1e9 / clockTicks)
	}
	d, v2 := m.statDir("cpu", "cpu")
	if d == "" {
		return nil
	}
	st, err := readKV(d, "cpu.stat")
	if err != nil {
		return err
	}
	c.Throttling.Periods = st["nr_periods"]
	c.Throttling.ThrottledPeriods = st["nr_throttled"]
	if !v2 {
		c.Throttling.ThrottledTime = st["throttled_time"]
		return nil
	}
	// cgroup2 counts microseconds; runc reports nanoseconds.
	c.Throttling.ThrottledTime = st["throttled_usec"] * 1000
	c.Usage.Total = st["usage_usec"] * 1000
	c.Usage.User = st["user_usec"] * 1000
	c.Usage.Kernel = st["system_usec"] * 1000
	return nil
}

// listUint16 renders a cpuset list file as sorted numbers.
func listUint16(dir, file string) ([]uint16, error) {
	s, err := readFile(dir, file)
	if errors.Is(err, os.ErrNotExist) || (err == nil && s == "") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	set, err := ParseList(s)
	if err != nil {
		return nil, fmt.Errorf("parse %s/%s: %w", dir, file, err)
	}
	out := make([]uint16, 0, len(set))
	for _, n := range slices.Sorted(maps.Keys(set)) {
		out = append(out, uint16(n))
	}
	return out, nil
}

func (m *manager) cpusetStats(s *Stats) error {
	d, v2 := m.statDir("cpuset", "cpuset")
	if d == "" {
		return nil
	}
	c := &s.CPUSet
	var err error
	suffix := ""
	if v2 {
		suffix = ".effective"
	}
	if c.CPUs, err = listUint16(d, "cpuset.cpus"+suffix); err != nil {
		return err
	}
	if c.Mems, err = listUint16(d, "cpuset.mems"+suffix); err != nil {
		return err
	}
	if v2 {
		return nil
	}
	for _, f := range []struct {
		name string
		p    *uint64
	}{
		{"cpu_exclusive", &c.CPUExclusive}, {"mem_hardwall", &c.MemHardwall}, {"mem_exclusive", &c.MemExclusive},
		{"memory_migrate", &c.MemoryMigrate}, {"memory_spread_page", &c.MemorySpreadPage},
		{"memory_spread_slab", &c.MemorySpreadSlab}, {"memory_pressure", &c.MemoryPressure},
		{"sched_load_balance", &c.SchedLoadBalance},
	} {
		if *f.p, err = readUint(d, "cpuset."+f.name); err != nil {
			return err
		}
	}
	lvl, err := readFile(d, "cpuset.sched_relax_domain_level")
	if err == nil {
		c.SchedRelaxDomainLevel, _ = strconv.ParseInt(lvl, 10, 64)
	}
	return nil
}

// memoryEntryV1 reads the usage, max usage, limit and failcnt files of
// prefix ("memory", "memory.memsw", "memory.kmem", "memory.kmem.tcp").
func memoryEntryV1(dir, prefix string) (MemoryEntry, error) {
	var e MemoryEntry
	for _, f := range []struct {
		name string
		p    *uint64
	}{
		{".usage_in_bytes", &e.Usage}, {".max_usage_in_bytes", &e.Max},
		{".limit_in_bytes", &e.Limit}, {".failcnt", &e.Failcnt},
	} {
		v, err := readUint(dir, prefix+f.name)
		if err != nil {
			return e, err
		}
		*f.p = v
	}
	return e, nil
}

func (m *manager) memoryStats(s *Stats) error {
	d, v2 := m.statDir("memory", "memory")
	if d == "" {
		return nil
	}
	mem := &s.Memory
	raw, err := readKV(d, "memory.stat")
	if err != nil {
		return err
	}
	mem.Raw = raw
	if !v2 {
		mem.Cache = raw["cache"]
		for _, e := range []struct {
			prefix string
			p      *MemoryEntry
		}{
			{"memory", &mem.Usage}, {"memory.memsw", &mem.Swap},
			{"memory.kmem", &mem.Kernel}, {"memory.kmem.tcp", &mem.KernelTCP},
		} {
			if *e.p, err = memoryEntryV1(d, e.prefix); err != nil {
				return err
			}
		}
		return nil
	}
	mem.Cache = raw["file"]
	if mem.Usage.Usage, err = readUint(d, "memory.current"); err != nil {
		return err
	}
	if mem.Usage.Limit, err = readUint(d, "memory.max"); err != nil {
		return err
	}
	if mem.Usage.Max, err = readUint(d, "memory.peak"); err != nil {
		return err
	}
	ev, err := readKV(d, "memory.events")
	if err != nil {
		return err
	}
	mem.Usage.Failcnt = ev["max"]
	// As runc: the swap entry is memory plus swap.
	swap, err := readUint(d, "memory.swap.current")
	if err != nil {
		return err
	}
	swapMax, err := readUint(d, "memory.swap.max")
	if err != nil {
		return err
	}
	mem.Swap.Usage = mem.Usage.Usage + swap
	mem.Swap.Limit = math.MaxUint64
	if swapMax != math.MaxUint64 && mem.Usage.Limit != math.MaxUint64 && exists(d, "memory.swap.max") {
		mem.Swap.Limit = mem.Usage.Limit + swapMax
	}
	return nil
}

func (m *manager) pidsStats(s *Stats) error {
	d, _ := m.statDir("pids", "pids")
	if d == "" {
		return nil
	}
	var err error
	if s.Pids.Current, err = readUint(d, "pids.current"); err != nil {
		return err
	}
	if s.Pids.Limit, err = readUint(d, "pids.max"); err != nil {
		return err
	}
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0
	}
	return nil
}

// parseBlkioV1 parses "MAJ:MIN Op value" lines (the trailing "Total n" line
// has no device and is skipped).
func parseBlkioV1(text string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var e BlkioEntry
		if _, err := fmt.Sscanf(f[0], "%d:%d", &e.Major, &e.Minor); err != nil {
			return nil, fmt.Errorf("parse blkio line %q: %w", line, err)
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse blkio line %q: %w", line, err)
		}
		e.Op, e.Value = f[1], v
		out = append(out, e)
	}
	return out, nil
}

// parseIOStat parses cgroup2 io.stat ("MAJ:MIN rbytes=n wbytes=n rios=n wios=n ...").
func parseIOStat(text string) (bytes, ios []BlkioEntry, err error) {
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var maj, mnr uint64
		if _, err := fmt.Sscanf(f[0], "%d:%d", &maj, &mnr); err != nil {
			return nil, nil, fmt.Errorf("parse io.stat line %q: %w", line, err)
		}
		for _, kv := range f[1:] {
			k, vs, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("parse io.stat line %q: %w", line, err)
			}
			e := BlkioEntry{Major: maj, Minor: mnr, Value: v}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios, nil
}

func (m *manager) blkioStats(s *Stats) error {
	d, v2 := m.statDir("blkio", "io")
	if d == "" {
		return nil
	}
	if v2 {
		text, err := readFile(d, "io.stat")
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		s.Blkio.IoServiceBytesRecursive, s.Blkio.IoServicedRecursive, err = parseIOStat(text)
		return err
	}
	// The I/O scheduler's counters (CFQ, then BFQ) when it has any, else
	// the throttling layer's, which count every I/O.
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		bytes, err := readEntries(d, prefix+"io_service_bytes_recursive")
		if err != nil {
			return err
		}
		ios, err := readEntries(d, prefix+"io_serviced_recursive")
		if err != nil {
			return err
		}
		if len(bytes) > 0 || len(ios) > 0 || prefix == "blkio.throttle." {
			s.Blkio.IoServiceBytesRecursive, s.Blkio.IoServicedRecursive = bytes, ios
			return nil
		}
	}
	return nil
}

func readEntries(dir, file string) ([]BlkioEntry, error) {
	text, err := readFile(dir, file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseBlkioV1(text)
}

// hugePageSizes lists the host's huge page sizes in cgroup file naming
// ("2MB", "1GB"), from /sys/kernel/mm/hugepages.
func hugePageSizes() []string {
	ents, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(kb, "kB"), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, pageSizeName(n))
	}
	return out
}

// pageSizeName renders a size in KiB as the kernel names hugetlb files.
func pageSizeName(kb uint64) string {
	switch {
	case kb >= 1<<20 && kb%(1<<20) == 0:
		return strconv.FormatUint(kb>>20, 10) + "GB"
	case kb >= 1<<10 && kb%(1<<10) == 0:
		return strconv.FormatUint(kb>>10, 10) + "MB"
	}
	return strconv.FormatUint(kb, 10) + "KB"
}

func (m *manager) hugetlbStats(s *Stats) error {
	d, v2 := m.statDir("hugetlb", "hugetlb")
	if d == "" {
		return nil
	}
	for _, size := range hugePageSizes() {
		var h HugetlbStat
		var err error
		p := "hugetlb." + size
		if !v2 {
			if h.Usage, err = readUint(d, p+".usage_in_bytes"); err != nil {
				return err
			}
			if h.Max, err = readUint(d, p+".max_usage_in_bytes"); err != nil {
				return err
			}
			if h.Failcnt, err = readUint(d, p+".failcnt"); err != nil {
				return err
			}
		} else {
			if !exists(d, p+".current") {
				continue
			}
			if h.Usage, err = readUint(d, p+".current"); err != nil {
				return err
			}
			ev, err := readKV(d, p+".events")
			if err != nil {
				return err
			}
			h.Failcnt = ev["max"]
		}
		s.Hugetlb[size] = h
	}
	return nil
}
