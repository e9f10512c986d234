package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/container"
	"cove/internal/engine/snapshot"
)

// CheckReport lists what Check found (and, with repair, fixed).
type CheckReport struct {
	Problems []string // one line per finding
	Repaired bool
}

func (c *CheckReport) add(format string, a ...any) {
	c.Problems = append(c.Problems, fmt.Sprintf(format, a...))
}

// Check looks for what crashes leave behind: record directories without a
// record, stale names, run directories and mounts of containers that no
// longer run, runtime state without a container, active snapshots without
// a container, exited --rm containers. With repair it removes them.
// Containers still running (even with a lost supervisor) are left alone.
func (e *Engine) Check(repair bool) (*CheckReport, error) {
	rep := &CheckReport{Repaired: repair}
	dirs, names, err := e.Containers.Leftovers()
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		rep.add("container directory without a record: %s", d)
	}
	for _, n := range names {
		rep.add("name without a container: %s", n)
	}
	if repair {
		e.Containers.RemoveLeftovers(dirs, names)
	}
	recs, err := e.Containers.List()
	if err != nil {
		return nil, err
	}
	// busy: another cove holds the container's lock (a start or removal in
	// progress); what it has half-built is not a leftover.
	busy := func(id string) bool {
		fd, err := unix.Open(e.Containers.Path(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil
	}
	known := map[string]*container.Record{}
	for _, r := range recs {
		known[r.ID] = r
		st := e.State(r)
		o, _ := Options(r.Options)
		_, runErr := os.Stat(e.RunDir(r.ID))
		switch {
		case st.Running && st.MonitorLost:
			rep.add("container %s (%s) runs without its supervisor (pid %d)", r.ID[:12], r.Name, st.Pid)
		case st.Running || st.MonitorPid != 0:
		case runErr == nil:
			rep.add("run directory of stopped container %s (%s)", r.ID[:12], r.Name)
			if repair {
				if err := e.Cleanup(r); err != nil {
					rep.add("cleanup %s: %v", r.ID[:12], err)
				}
			}
		case o != nil && o.AutoRemove && st.Status == StatusExited:
			rep.add("exited --rm container %s (%s) not removed", r.ID[:12], r.Name)
			if repair {
				e.Remove(r, false)
			}
		}
	}
	// Run directories without a container.
	ents, _ := os.ReadDir(e.cfg.RunRoot)
	for _, ent := range ents {
		id := ent.Name()
		if len(id) != 64 || known[id] != nil {
			continue
		}
		rep.add("run directory without a container: %s", id)
		if repair {
			if p, s := e.monitorProc(id); p > 0 && alive(p, s) {
				syscall.Kill(p, syscall.SIGKILL)
			}
			if ip, _ := e.initProc(id); ip > 0 && alive(ip, "") {
				syscall.Kill(ip, syscall.SIGKILL)
			}
			e.cleanupRun(&container.Record{ID: id}, nil)
		}
	}
	// Runtime state without a running container.
	rts, _ := os.ReadDir(filepath.Join(e.cfg.RunRoot, "runtimes"))
	for _, rt := range rts {
		ids, _ := os.ReadDir(filepath.Join(e.cfg.RunRoot, "runtimes", rt.Name()))
		for _, ent := range ids {
			id := ent.Name()
			if len(id) != 64 {
				continue // the runtime's own files (caches)
			}
			r := known[id]
			if r != nil {
				if st := e.State(r); st.Running || st.MonitorPid != 0 || busy(id) {
					continue
				}
			}
			rep.add("runtime %s state without a running container: %s", rt.Name(), id)
			if repair {
				if bin, err := e.RuntimePath(rt.Name()); err == nil {
					exec.Command(bin, "--root", filepath.Join(e.cfg.RunRoot, "runtimes", rt.Name()), "delete", "--force", id).Run()
				}
			}
		}
	}
	// Mounts under the run root that belong to no running container.
	for _, mp := range mountsUnder(e.cfg.RunRoot) {
		rel, _ := filepath.Rel(e.cfg.RunRoot, mp)
		id, _, _ := strings.Cut(rel, "/")
		if r := known[id]; r != nil {
			if st := e.State(r); st.Running || st.MonitorPid != 0 || busy(id) {
				continue
			}
		}
		rep.add("leaked mount %s", mp)
		if repair {
			unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	// Cgroups under /cove of containers that do not run (a runtime killed
	// mid-create or mid-delete). rmdir fails on a cgroup with processes.
	for _, cg := range leakedCgroups(func(id string) (bool, bool) {
		r := known[id]
		if r == nil {
			return false, false
		}
		st := e.State(r)
		return true, st.Running || st.MonitorPid != 0
	}) {
		rep.add("leaked cgroup %s", cg)
		if repair {
			os.Remove(cg)
		}
	}
	// Network attachments of containers that are gone, stray veths, rules.
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "network")); err == nil {
		if nets, err := e.Networks(); err == nil && repair {
			if nr, err := nets.Repair(); err == nil {
				for _, a := range nr.Attachments {
					rep.add("network attachment without a namespace: %s", a)
				}
				for _, v := range nr.Veths {
					rep.add("stray veth: %s", v)
				}
				if nr.Rules > 0 {
					rep.add("%d stale nftables rules", nr.Rules)
				}
			}
		}
	}
	e.checkVolumeClaims(rep, known, repair)
	// Active snapshots without a container.
	snaps, err := e.Snapshots()
	if err != nil {
		return rep, err
	}
	var sr snapshot.RepairReport
	if repair {
		sr, err = snaps.Repair()
	} else {
		var act []snapshot.ActiveInfo
		act, err = snaps.ListActive()
		sr.Active = act
	}
	if err != nil {
		return rep, err
	}
	for _, t := range sr.RemovedTmp {
		rep.add("snapshot leftover removed: %s", t)
	}
	for _, a := range sr.Active {
		owner := a.Labels["cove.container"]
		if owner == "" || known[owner] != nil {
			continue
		}
		if _, err := os.Stat(e.Containers.Path(owner)); err == nil && !repair {
			continue
		}
		rep.add("container layer without a container: %s", a.Key)
		if repair {
			if err := snaps.RemoveActive(a.Key); err != nil && !errors.Is(err, snapshot.ErrNotFound) {
				rep.add("remove layer %s: %v", a.Key, err)
			}
		}
	}
	return rep, nil
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescapeMount(fs[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// leakedCgroups lists /sys/fs/cgroup/*/cove/<id> (and the unified
// hierarchy's) whose container, known to this store, is not running; and
// those of containers unknown here (another store's, or removed) that are
// empty and older than a minute.
func leakedCgroups(state func(id string) (known, running bool)) []string {
	var out []string
	bases, _ := filepath.Glob("/sys/fs/cgroup/*/cove")
	if _, err := os.Stat("/sys/fs/cgroup/cove/cgroup.procs"); err == nil {
		bases = append(bases, "/sys/fs/cgroup/cove")
	}
	for _, base := range bases {
		ents, _ := os.ReadDir(base)
		for _, ent := range ents {
			if !ent.IsDir() || len(ent.Name()) != 64 {
				continue
			}
			p := filepath.Join(base, ent.Name())
			known, running := state(ent.Name())
			if running {
				continue
			}
			if !known {
				procs, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
				info, serr := os.Stat(p)
				if err != nil || len(procs) > 0 || serr != nil || time.Since(info.ModTime()) < time.Minute {
					continue
				}
			}
			out = append(out, p)
		}
	}
	return out
}
