package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set writes the resource limits r. Fields left nil are not touched, so Set
// also serves updates. A nil Devices list leaves the device rules alone; an
// empty one denies every device. Zero memory limits, swap, CPU shares, quota
// and period mean "unset", as in runc.
//
// Resources are written in the v1 hierarchy of their controller when one is
// mounted, otherwise in the cgroup2 directory (so hugetlb on a hybrid host
// whose cgroup2 mount offers it goes there). Values without a hierarchy fail,
// except these, skipped silently: memory.kernel (deprecated), kernelTCP where
// the kernel refuses it, realtime CPU limits where the files are missing, and
// disableOOMKiller, swappiness and blkio leaf weights on cgroup2.
func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setMemory, m.setCPU, m.setCpuset, m.setPids, m.setBlockIO,
		m.setHugepages, m.setNetwork, m.setRdma, m.setDevices, m.setUnified,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	return nil
}

// controller returns where controller resources go: the v1 directory of
// v1name, or the cgroup2 directory (v2 file names) when v1name has no v1
// hierarchy and the cgroup2 directory offers v2name.
func (m *manager) controller(v1name, v2name string) (dir string, v2 bool, err error) {
	if d, ok := m.paths[v1name]; ok && v1name != UnifiedKey {
		return d, false, nil
	}
	if u, ok := m.paths[UnifiedKey]; ok {
		if m.mode == Unified || v2name == "devices" {
			return u, true, nil
		}
		if avail, err := readFile(u, "cgroup.controllers"); err == nil && slices.Contains(strings.Fields(avail), v2name) {
			return u, true, nil
		}
	}
	return "", false, fmt.Errorf("no cgroup hierarchy for the %s controller", v1name)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

// maxOr formats v, or "max" when v is negative.
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

func (m *manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil || (mem.Limit == nil && mem.Reservation == nil && mem.Swap == nil &&
		mem.KernelTCP == nil && mem.Swappiness == nil && mem.DisableOOMKiller == nil) {
		return nil
	}
	dir, v2, err := m.controller("memory", "memory")
	if err != nil {
		return err
	}
	limit, swap := mem.Limit, mem.Swap
	if limit != nil && *limit == 0 {
		limit = nil
	}
	if swap != nil && *swap == 0 {
		swap = nil
	}
	if v2 {
		return setMemoryV2(dir, mem, limit, swap)
	}
	if err := setMemoryLimitsV1(dir, limit, swap); err != nil {
		return err
	}
	if mem.Reservation != nil {
		if err := writeFile(dir, "memory.soft_limit_in_bytes", itoa(*mem.Reservation)); err != nil {
			return err
		}
	}
	// The kernel memory limit (deprecated, refused by kernels >= 5.16) is
	// ignored; the TCP buffer limit is written where the kernel accepts it.
	if v := mem.KernelTCP; v != nil {
		if err := writeFile(dir, "memory.kmem.tcp.limit_in_bytes", itoa(*v)); err != nil && !errors.Is(err, unix.ENOENT) &&
			!errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EBUSY) {
			return err
		}
	}
	if mem.Swappiness != nil {
		if *mem.Swappiness > 100 {
			return fmt.Errorf("memory swappiness %d is above 100", *mem.Swappiness)
		}
		if err := writeFile(dir, "memory.swappiness", utoa(*mem.Swappiness)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(dir, "memory.oom_control", v); err != nil {
			return err
		}
	}
	return nil
}

// setMemoryLimitsV1 writes memory.limit_in_bytes and memory.memsw.limit_in_bytes
// (memory+swap) in the order the kernel accepts: memsw may never be below the limit.
func setMemoryLimitsV1(dir string, limit, swap *int64) error {
	writeLimit := func() error {
		if limit == nil {
			return nil
		}
		return writeFile(dir, "memory.limit_in_bytes", itoa(*limit))
	}
	writeSwap := func() error {
		if swap == nil {
			return nil
		}
		const f = "memory.memsw.limit_in_bytes"
		if !exists(dir, f) {
			if *swap == -1 || (limit != nil && *swap == *limit) {
				return nil
			}
			return fmt.Errorf("write %s: swap accounting is not enabled", filepath.Join(dir, f))
		}
		return writeFile(dir, f, itoa(*swap))
	}
	if err := writeLimit(); err != nil {
		if !errors.Is(err, unix.EINVAL) || swap == nil {
			return err
		}
		// The new limit is above the current memory+swap limit: raise that first.
		if err := writeSwap(); err != nil {
			return err
		}
		return writeLimit()
	}
	return writeSwap()
}

func setMemoryV2(dir string, mem *specs.LinuxMemory, limit, swap *int64) error {
	if swap != nil {
		v := "max"
		if *swap != -1 {
			if limit == nil || *limit < 0 {
				return fmt.Errorf("memory+swap limit %d needs a memory limit", *swap)
			}
			if *swap < *limit {
				return fmt.Errorf("memory+swap limit %d is below the memory limit %d", *swap, *limit)
			}
			v = itoa(*swap - *limit)
		}
		const f = "memory.swap.max"
		if v != "max" || exists(dir, f) {
			if err := writeFile(dir, f, v); err != nil {
				return err
			}
		}
	}
	if limit != nil {
		if err := writeFile(dir, "memory.max", maxOr(*limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil {
		if err := writeFile(dir, "memory.low", maxOr(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

// sharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000].
func sharesToWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

func (m *manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (nz(c.Shares) == 0 && c.Quota == nil && nz(c.Period) == 0 && c.Burst == nil &&
		c.RealtimeRuntime == nil && c.RealtimePeriod == nil && c.Idle == nil) {
		return nil
	}
	dir, v2, err := m.controller("cpu", "cpu")
	if err != nil {
		return err
	}
	var w []kv
	if v2 {
		if s := nz(c.Shares); s != 0 {
			w = append(w, kv{"cpu.weight", utoa(sharesToWeight(s))})
		}
		if (c.Quota != nil && *c.Quota != 0) || nz(c.Period) != 0 {
			quota, period := "max", "100000"
			if cur, err := readFile(dir, "cpu.max"); err == nil {
				if f := strings.Fields(cur); len(f) == 2 {
					quota, period = f[0], f[1]
				}
			}
			if c.Quota != nil && *c.Quota != 0 {
				quota = maxOr(*c.Quota)
			}
			if p := nz(c.Period); p != 0 {
				period = utoa(p)
			}
			w = append(w, kv{"cpu.max", quota + " " + period})
		}
		if c.Burst != nil {
			w = append(w, kv{"cpu.max.burst", utoa(*c.Burst)})
		}
	} else {
		if s := nz(c.Shares); s != 0 {
			w = append(w, kv{"cpu.shares", utoa(s)})
		}
		if p := nz(c.Period); p != 0 {
			w = append(w, kv{"cpu.cfs_period_us", utoa(p)})
		}
		if c.Quota != nil && *c.Quota != 0 {
			w = append(w, kv{"cpu.cfs_quota_us", itoa(max(*c.Quota, -1))})
		}
		if c.Burst != nil {
			w = append(w, kv{"cpu.cfs_burst_us", utoa(*c.Burst)})
		}
		// Realtime group scheduling is often compiled out: skip when absent.
		if c.RealtimePeriod != nil && exists(dir, "cpu.rt_period_us") {
			w = append(w, kv{"cpu.rt_period_us", utoa(*c.RealtimePeriod)})
		}
		if c.RealtimeRuntime != nil && exists(dir, "cpu.rt_runtime_us") {
			w = append(w, kv{"cpu.rt_runtime_us", itoa(*c.RealtimeRuntime)})
		}
	}
	if c.Idle != nil {
		w = append(w, kv{"cpu.idle", itoa(*c.Idle)})
	}
	return writeAll(dir, w)
}

func (m *manager) setCpuset(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	dir, _, err := m.controller("cpuset", "cpuset")
	if err != nil {
		return err
	}
	var w []kv
	if c.Cpus != "" {
		w = append(w, kv{"cpuset.cpus", c.Cpus})
	}
	if c.Mems != "" {
		w = append(w, kv{"cpuset.mems", c.Mems})
	}
	return writeAll(dir, w)
}

func (m *manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _, err := m.controller("pids", "pids")
	if err != nil {
		return err
	}
	v := "max"
	if *r.Pids.Limit > 0 {
		v = itoa(*r.Pids.Limit)
	}
	return writeFile(dir, "pids.max", v)
}

func (m *manager) setHugepages(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, v2, err := m.controller("hugetlb", "hugetlb")
	if err != nil {
		return err
	}
	var w []kv
	for _, h := range r.HugepageLimits {
		if h.Pagesize == "" || strings.ContainsAny(h.Pagesize, "/.") {
			return fmt.Errorf("invalid hugepage size %q", h.Pagesize)
		}
		f := "hugetlb." + h.Pagesize + ".limit_in_bytes"
		if v2 {
			f = "hugetlb." + h.Pagesize + ".max"
		}
		w = append(w, kv{f, utoa(h.Limit)})
	}
	return writeAll(dir, w)
}

// setNetwork writes net_cls/net_prio, which exist only as v1 hierarchies.
func (m *manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		dir, ok := m.paths["net_cls"]
		if !ok {
			return fmt.Errorf("network class id %d: no net_cls cgroup hierarchy is mounted", *n.ClassID)
		}
		if err := writeFile(dir, "net_cls.classid", utoa(uint64(*n.ClassID))); err != nil {
			return err
		}
	}
	if len(n.Priorities) > 0 {
		dir, ok := m.paths["net_prio"]
		if !ok {
			return fmt.Errorf("network priorities: no net_prio cgroup hierarchy is mounted")
		}
		for _, p := range n.Priorities {
			if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _, err := m.controller("rdma", "rdma")
	if err != nil {
		return err
	}
	var w []kv
	for _, dev := range slices.Sorted(maps.Keys(r.Rdma)) {
		l := r.Rdma[dev]
		v := dev
		if l.HcaHandles != nil {
			v += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			v += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if v != dev {
			w = append(w, kv{"rdma.max", v})
		}
	}
	return writeAll(dir, w)
}

func (m *manager) setDevices(r *specs.LinuxResources) error {
	if r.Devices == nil {
		return nil
	}
	rules, err := parseDeviceRules(r.Devices)
	if err != nil {
		return err
	}
	dir, v2, err := m.controller("devices", "devices")
	if err != nil {
		return err
	}
	if v2 {
		return setDevicesBPF(dir, rules)
	}
	// Deny everything, then replay the rules in order: the kernel applies
	// each on top of the previous state, so a later rule overrides.
	if err := writeFile(dir, "devices.deny", "a"); err != nil {
		return err
	}
	for _, d := range rules {
		f := "devices.deny"
		if d.allow {
			f = "devices.allow"
		}
		if err := writeFile(dir, f, d.String()); err != nil {
			return err
		}
	}
	return nil
}

// setUnified writes the raw cgroup2 files of r.Unified, in key order.
func (m *manager) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	dir, ok := m.paths[UnifiedKey]
	if !ok {
		return fmt.Errorf("unified resources need a cgroup2 hierarchy, this host has cgroup v1 only")
	}
	var w []kv
	for _, k := range slices.Sorted(maps.Keys(r.Unified)) {
		if k == "" || k == "." || k == ".." || strings.Contains(k, "/") {
			return fmt.Errorf("invalid unified resource key %q", k)
		}
		w = append(w, kv{k, r.Unified[k]})
	}
	return writeAll(dir, w)
}

// kv is one control file write.
type kv struct{ file, value string }

func writeAll(dir string, w []kv) error {
	for _, x := range w {
		if err := writeFile(dir, x.file, x.value); err != nil {
			return err
		}
	}
	return nil
}

// nz dereferences p, treating nil as 0.
func nz(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
