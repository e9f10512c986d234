package runtime

import (
	"errors"
	"fmt"
	"maps"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"cove/internal/runtime/cgroups"
)

// Event is one event of a container, as runc's `events` prints it:
// {"type":"stats"|"oom","id":..., "data":...}.
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// manager returns the cgroup manager of a container that has a cgroup.
func (s *State) manager() (cgroups.Manager, error) {
	if len(s.CgroupPaths) == 0 {
		return nil, fmt.Errorf("container %q has no cgroup", s.ID)
	}
	return cgroups.Load(s.CgroupPaths), nil
}

// Pause freezes every process of a running container.
func (r *Runtime) Pause(id string) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.Status(); st != StatusRunning {
		return fmt.Errorf("cannot pause container %q: it is %s, not running", id, st)
	}
	cg, err := s.manager()
	if err != nil {
		return err
	}
	if err := cg.Freeze(); err != nil {
		return fmt.Errorf("pause container %q: %w", id, err)
	}
	r.debug("container paused", "id", id)
	return nil
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.Status(); st != StatusPaused {
		return fmt.Errorf("cannot resume container %q: it is %s, not paused", id, st)
	}
	cg, err := s.manager()
	if err != nil {
		return err
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("resume container %q: %w", id, err)
	}
	r.debug("container resumed", "id", id)
	return nil
}

// Ps lists the host pids of the processes in the container's cgroup.
func (r *Runtime) Ps(id string) ([]int, error) {
	s, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	cg, err := s.manager()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the resource usage of a container that is not stopped.
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	s, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	if st := s.Status(); st == StatusStopped {
		return nil, fmt.Errorf("cannot read stats of container %q: it is stopped", id)
	}
	cg, err := s.manager()
	if err != nil {
		return nil, err
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of container %q: %w", id, err)
	}
	return st, nil
}

// Update changes the resource limits of a created, running or paused
// container: res is checked, written to the cgroup (a failed write puts back
// what was written before it), then merged into the saved spec so later
// commands see the new limits. Device rules in res are ignored, as in runc.
// When checking or writing fails, neither the cgroup nor the saved state
// has changed; only a failure to save the state (reported as such) leaves
// the new limits applied but unrecorded.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	s, unlock, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer unlock()
	if st := s.Status(); st == StatusStopped || st == StatusCreating {
		return fmt.Errorf("cannot update container %q: it is %s", id, st)
	}
	res = zerosUnset(res)
	if err := CheckResources(res); err != nil {
		return fmt.Errorf("update container %q: %w", id, err)
	}
	cg, err := s.manager()
	if err != nil {
		return err
	}
	res = completeMemory(res, s.Spec)
	if m := res.Memory; m != nil && m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate && m.Limit != nil && *m.Limit > 0 {
		// Lowering memory.max below the usage makes cgroup2 OOM-kill.
		st, err := cg.Stats()
		if err != nil {
			return fmt.Errorf("update container %q: memory.checkBeforeUpdate: %w", id, err)
		}
		if use := st.Memory.Usage.Usage; use > uint64(*m.Limit) {
			return fmt.Errorf("update container %q: memory.limit %d is below the current usage %d (memory.checkBeforeUpdate)", id, *m.Limit, use)
		}
	}
	if err := cg.Update(res); err != nil {
		return fmt.Errorf("update container %q: %w", id, err)
	}
	if s.Spec.Linux == nil {
		s.Spec.Linux = &specs.Linux{}
	}
	if s.Spec.Linux.Resources == nil {
		s.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	MergeResources(s.Spec.Linux.Resources, res)
	if err := s.save(); err != nil {
		return fmt.Errorf("update container %q: limits applied but not saved: %w", id, err)
	}
	r.debug("container updated", "id", id)
	return nil
}

// zerosUnset returns a copy of res in which the zero values runc's update
// treats as "leave as it is" are nil: Docker and containerd send the whole
// resources object, zeros included, on every update. The kernel TCP memory
// limit, which runc's update ignores, is dropped too.
func zerosUnset(res *specs.LinuxResources) *specs.LinuxResources {
	if res == nil {
		return &specs.LinuxResources{}
	}
	out := *res
	if m := res.Memory; m != nil {
		c := *m
		if c.Reservation != nil && *c.Reservation == 0 {
			c.Reservation = nil
		}
		// runc's update ignores the TCP buffer limit; a 0 from a client
		// that sends every field would starve the container's sockets.
		c.KernelTCP = nil
		out.Memory = &c
	}
	if p := res.Pids; p != nil && p.Limit != nil && *p.Limit == 0 {
		out.Pids = nil
	}
	if cpu := res.CPU; cpu != nil {
		c := *cpu
		if c.RealtimePeriod != nil && *c.RealtimePeriod == 0 {
			c.RealtimePeriod = nil
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime == 0 {
			c.RealtimeRuntime = nil
		}
		out.CPU = &c
	}
	if b := res.BlockIO; b != nil && b.Weight != nil && *b.Weight == 0 {
		c := *b
		c.Weight = nil
		out.BlockIO = &c
	}
	return &out
}

// completeMemory fills in the memory values the cgroup needs beside the
// ones given, as runc does by merging into the saved config: unlimited
// memory without a swap value means unlimited swap too, and a swap value
// without a memory limit is applied with the saved limit (cgroup2 stores
// swap apart from memory, so it needs both).
func completeMemory(res *specs.LinuxResources, saved *specs.Spec) *specs.LinuxResources {
	m := res.Memory
	if m == nil {
		return res
	}
	mem, r2 := *m, *res
	r2.Memory = &mem
	switch {
	case m.Limit != nil && *m.Limit == -1 && m.Swap == nil:
		mem.Swap = m.Limit
	case m.Swap != nil && *m.Swap != -1 && (m.Limit == nil || *m.Limit == 0):
		if saved.Linux != nil && saved.Linux.Resources != nil && saved.Linux.Resources.Memory != nil {
			mem.Limit = saved.Linux.Resources.Memory.Limit
		}
	}
	return &r2
}

// CheckResources refuses values no cgroup accepts, naming the field:
// negative limits other than -1 (unlimited), block I/O weights outside
// 10-1000 (0 means unset), and cpusets naming CPUs or memory nodes this
// machine lacks.
func CheckResources(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	neg := func(name string, p *int64) error {
		if p != nil && *p < -1 {
			return fmt.Errorf("%s %d: negative (only -1, unlimited, is allowed)", name, *p)
		}
		return nil
	}
	var errs []error
	if m := res.Memory; m != nil {
		errs = append(errs, neg("memory.limit", m.Limit), neg("memory.reservation", m.Reservation), neg("memory.swap", m.Swap))
		if m.Swappiness != nil && *m.Swappiness > 100 {
			errs = append(errs, fmt.Errorf("memory.swappiness %d: above 100", *m.Swappiness))
		}
	}
	if c := res.CPU; c != nil {
		errs = append(errs, neg("cpu.quota", c.Quota), neg("cpu.realtimeRuntime", c.RealtimeRuntime))
		if err := cgroups.CheckCpuset(c.Cpus, c.Mems); err != nil {
			errs = append(errs, fmt.Errorf("cpu.%w", err))
		}
	}
	if p := res.Pids; p != nil {
		errs = append(errs, neg("pids.limit", p.Limit))
	}
	// 0 is unset: Docker sends "weight": 0 on every update.
	if b := res.BlockIO; b != nil && b.Weight != nil && *b.Weight != 0 && (*b.Weight < 10 || *b.Weight > 1000) {
		errs = append(errs, fmt.Errorf("blockIO.weight %d: outside 10-1000", *b.Weight))
	}
	return errors.Join(errs...)
}

// MergeResources copies the values set in src over dst, with the meaning
// Set gives them: nil and zero limits leave dst's value, an empty cpuset
// leaves dst's, device rules are not merged. As runc does, a memory limit
// of -1 without a swap value makes swap unlimited too.
func MergeResources(dst, src *specs.LinuxResources) {
	if src == nil {
		return
	}
	set64 := func(d **int64, s *int64) {
		if s != nil && *s != 0 {
			*d = s
		}
	}
	setU64 := func(d **uint64, s *uint64) {
		if s != nil && *s != 0 {
			*d = s
		}
	}
	if m := src.Memory; m != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		d := dst.Memory
		set64(&d.Limit, m.Limit)
		set64(&d.Swap, m.Swap)
		if m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
			d.Swap = m.Limit
		}
		if m.Reservation != nil && *m.Reservation != 0 {
			d.Reservation = m.Reservation
		}
		if m.Swappiness != nil {
			d.Swappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			d.DisableOOMKiller = m.DisableOOMKiller
		}
	}
	if c := src.CPU; c != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		d := dst.CPU
		setU64(&d.Shares, c.Shares)
		setU64(&d.Period, c.Period)
		set64(&d.Quota, c.Quota)
		if c.Burst != nil {
			d.Burst = c.Burst
		}
		if c.RealtimePeriod != nil {
			d.RealtimePeriod = c.RealtimePeriod
		}
		if c.RealtimeRuntime != nil {
			d.RealtimeRuntime = c.RealtimeRuntime
		}
		if c.Idle != nil {
			d.Idle = c.Idle
		}
		if c.Cpus != "" {
			d.Cpus = c.Cpus
		}
		if c.Mems != "" {
			d.Mems = c.Mems
		}
	}
	if p := src.Pids; p != nil && p.Limit != nil {
		dst.Pids = &specs.LinuxPids{Limit: p.Limit}
	}
	if b := src.BlockIO; b != nil {
		if dst.BlockIO == nil {
			dst.BlockIO = &specs.LinuxBlockIO{}
		}
		d := dst.BlockIO
		if b.Weight != nil && *b.Weight != 0 {
			d.Weight = b.Weight
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			d.LeafWeight = b.LeafWeight
		}
		for _, l := range []struct{ d, s *[]specs.LinuxThrottleDevice }{
			{&d.ThrottleReadBpsDevice, &b.ThrottleReadBpsDevice}, {&d.ThrottleWriteBpsDevice, &b.ThrottleWriteBpsDevice},
			{&d.ThrottleReadIOPSDevice, &b.ThrottleReadIOPSDevice}, {&d.ThrottleWriteIOPSDevice, &b.ThrottleWriteIOPSDevice},
		} {
			if len(*l.s) > 0 {
				*l.d = *l.s
			}
		}
		if len(b.WeightDevice) > 0 {
			d.WeightDevice = b.WeightDevice
		}
	}
	if len(src.HugepageLimits) > 0 {
		dst.HugepageLimits = src.HugepageLimits
	}
	if len(src.Unified) > 0 {
		if dst.Unified == nil {
			dst.Unified = map[string]string{}
		}
		maps.Copy(dst.Unified, src.Unified)
	}
}

// Events reports a container's events to emit. With interval 0 it emits one
// stats event and returns. Otherwise it emits a stats event every interval
// and an "oom" event for each out-of-memory kill in the container, until the
// container's init exits or emit fails.
func (r *Runtime) Events(id string, interval time.Duration, emit func(*Event) error) error {
	if interval <= 0 {
		st, err := r.Stats(id)
		if err != nil {
			return err
		}
		return emit(&Event{Type: "stats", ID: id, Data: st})
	}
	s, err := r.Load(id)
	if err != nil {
		return err
	}
	if st := s.Status(); st == StatusStopped || st == StatusCreating {
		return fmt.Errorf("cannot watch events of container %q: it is %s", id, st)
	}
	cg, err := s.manager()
	if err != nil {
		return err
	}
	exited, err := watchExit(s)
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	oom, err := cg.OOMEvents(stop)
	if err != nil {
		r.warn("no OOM events", "id", id, "error", err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			if err := emit(&Event{Type: "oom", ID: id}); err != nil {
				return err
			}
		case <-tick.C:
			st, err := cg.Stats()
			if err != nil {
				r.warn("stats", "id", id, "error", err)
				continue
			}
			if err := emit(&Event{Type: "stats", ID: id, Data: st}); err != nil {
				return err
			}
		case <-exited:
			// An OOM kill of the init is signalled before it dies; report
			// what is still on its way.
			for deadline := time.After(100 * time.Millisecond); oom != nil; {
				select {
				case _, ok := <-oom:
					if !ok {
						return nil
					}
					if err := emit(&Event{Type: "oom", ID: id}); err != nil {
						return err
					}
				case <-deadline:
					return nil
				}
			}
			return nil
		}
	}
}

// watchExit returns a channel closed when the container's init exits,
// watched through a pidfd checked against the recorded start time.
func watchExit(s *State) (<-chan struct{}, error) {
	fd, err := unix.PidfdOpen(s.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("container %q is not running", s.ID)
	}
	if start, zombie, err := procStart(s.Pid); err != nil || zombie || start != s.PidStart {
		unix.Close(fd)
		return nil, fmt.Errorf("container %q is not running", s.ID)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return ch, nil
}
