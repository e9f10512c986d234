package cgroups

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// OOMEvents reports out-of-memory events of the cgroup: one value on the
// returned channel per event, until stop is closed or the cgroup is
// removed; then the channel is closed. On v1 it registers an eventfd for
// memory.oom_control through cgroup.event_control; on v2 it watches
// memory.events with inotify and reports each rise of its oom_kill count.
func (m *manager) OOMEvents(stop <-chan struct{}) (<-chan struct{}, error) {
	dir, v2, err := m.controller("memory", "memory")
	if err != nil {
		return nil, err
	}
	if v2 {
		return oomEventsV2(dir, stop)
	}
	return oomEventsV1(dir, stop)
}

func oomEventsV1(dir string, stop <-chan struct{}) (<-chan struct{}, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil, fmt.Errorf("open oom control: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// A non-blocking fd goes through Go's poller: Close ends a pending Read.
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(ctl.Fd()))
	if err := writeFile(dir, "cgroup.event_control", reg); err != nil {
		ev.Close()
		ctl.Close()
		return nil, err
	}
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		ev.Close()
	}()
	go func() {
		defer ctl.Close()
		defer close(ch)
		defer close(done)
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// The kernel also signals the eventfd when the cgroup goes away.
			if _, err := os.Stat(filepath.Join(dir, "cgroup.event_control")); err != nil {
				return
			}
			select {
			case ch <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	return ch, nil
}

func oomEventsV2(dir string, stop <-chan struct{}) (<-chan struct{}, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	in := os.NewFile(uintptr(fd), "oom-inotify")
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY); err != nil {
		in.Close()
		return nil, fmt.Errorf("watch %s/memory.events: %w", dir, err)
	}
	count := func() uint64 {
		ev, _ := readKV(dir, "memory.events")
		return ev["oom_kill"]
	}
	last := count()
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		in.Close()
	}()
	go func() {
		defer close(ch)
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := in.Read(buf)
			if err != nil {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				// struct inotify_event: wd, mask, cookie, len, name[len].
				mask := binary.NativeEndian.Uint32(buf[off+4:])
				nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
				off += unix.SizeofInotifyEvent + nameLen
				if mask&unix.IN_IGNORED != 0 {
					return // the cgroup was removed
				}
			}
			c := count()
			for ; last < c; last++ {
				select {
				case ch <- struct{}{}:
				case <-stop:
					return
				}
			}
		}
	}()
	return ch, nil
}
