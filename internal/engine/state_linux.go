package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cove/internal/engine/container"
	"cove/internal/engine/monitor"
)

// Statuses, as docker names them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusExited  = "exited"
)

// State is a container's runtime state, derived from what the supervisor
// and the runtime leave in the run directory and the store.
type State struct {
	Status       string    `json:"Status"`
	Running      bool      `json:"Running"`
	Paused       bool      `json:"Paused"`
	Restarting   bool      `json:"Restarting"`
	Pid          int       `json:"Pid"`
	ExitCode     int       `json:"ExitCode"`
	StartedAt    time.Time `json:"StartedAt"`
	FinishedAt   time.Time `json:"FinishedAt"`
	MonitorPid   int       `json:"MonitorPid,omitempty"`
	MonitorLost  bool      `json:"MonitorLost,omitempty"` // supervisor died; container still running
	OOMKilled    bool      `json:"OOMKilled"`
	RestartCount int       `json:"RestartCount"`
	Error        string    `json:"Error,omitempty"`
}

// alive reports whether pid runs and, if start is not empty, is the
// process that started at that time (not a later one with its pid).
func alive(pid int, start string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil && !errorsIsEPERM(pid) {
		return false
	}
	if start == "" {
		return true
	}
	st := monitor.ProcStartTime(pid)
	if st != start {
		return false
	}
	// A zombie is not running.
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && len(b) > i+2 && b[i+2] == 'Z' {
		return false
	}
	return true
}

func errorsIsEPERM(pid int) bool { return syscall.Kill(pid, 0) == syscall.EPERM }

// monitorProc reads the supervisor's "PID STARTTIME".
func (e *Engine) monitorProc(id string) (int, string) {
	b, err := os.ReadFile(filepath.Join(e.RunDir(id), monitor.MonitorFile))
	if err != nil {
		return 0, ""
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, ""
	}
	pid, _ := strconv.Atoi(f[0])
	return pid, f[1]
}

// initProc reads the container's init pid (the runtime's pid file) and
// the time it was written.
func (e *Engine) initProc(id string) (int, time.Time) {
	p := filepath.Join(e.RunDir(id), monitor.PidFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, time.Time{}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	var t time.Time
	if st, err := os.Stat(p); err == nil {
		t = st.ModTime()
	}
	return pid, t
}

// State computes container r's state.
func (e *Engine) State(r *container.Record) State {
	var s State
	run := e.RunDir(r.ID)
	mpid, mstart := e.monitorProc(r.ID)
	ipid, started := e.initProc(r.ID)
	s.StartedAt = started
	if b, err := os.ReadFile(filepath.Join(e.Containers.Path(r.ID), monitor.RestartFile)); err == nil {
		s.RestartCount, _ = strconv.Atoi(string(b))
	}
	ex, hasExit, _ := e.Containers.ReadExit(r.ID)
	monAlive := mpid > 0 && alive(mpid, mstart)
	if monAlive {
		s.MonitorPid = mpid
	}
	switch {
	case hasExit && !(monAlive && ipid > 0 && alive(ipid, "") && started.After(ex.FinishedAt)):
		s.Status = StatusExited
		s.ExitCode = ex.Code
		s.OOMKilled = ex.OOMKilled
		s.FinishedAt = ex.FinishedAt
		if monAlive && (r != nil) {
			// Exited but about to restart.
			if _, err := os.Stat(filepath.Join(run, monitor.StoppedFile)); err != nil && s.RestartCount >= 0 {
				opts, _ := Options(r.Options)
				if opts != nil && opts.Restart != "" && opts.Restart != "no" {
					s.Restarting = true
				}
			}
		}
	case monAlive && ipid > 0:
		s.Status = StatusRunning
		s.Running = true
		s.Pid = ipid
	case monAlive:
		// Starting: the runtime has not written the pid yet.
		s.Status = StatusCreated
	case ipid > 0 && alive(ipid, ""):
		if _, err := os.Stat(run); err == nil {
			s.Status = StatusRunning
			s.Running = true
			s.Pid = ipid
			s.MonitorLost = true
		} else {
			s.Status = StatusExited
		}
	case ipid > 0 || mpid > 0:
		// Everything died without an exit record (kill -9 of the
		// supervisor, then of the container; or a reboot).
		s.Status = StatusExited
		s.ExitCode = -1
		s.Error = "supervisor lost"
	default:
		s.Status = StatusCreated
		if _, err := os.Stat(e.Containers.LogPath(r.ID)); err == nil {
			// Ran before (log present) but its run directory is gone: a
			// reboot wiped /run.
			s.Status = StatusExited
			s.ExitCode = -1
		}
	}
	if s.Running && isFrozen(ipid) {
		s.Status = StatusPaused
		s.Paused = true
	}
	return s
}

// isFrozen reads the freezer state of pid's cgroup (v1 freezer or v2
// cgroup.freeze).
func isFrozen(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if strings.Contains(","+f[1]+",", ",freezer,") {
			st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", f[2], "freezer.state"))
			return err == nil && strings.TrimSpace(string(st)) != "THAWED"
		}
		if f[1] == "" && f[0] == "0" {
			for _, base := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				if st, err := os.ReadFile(filepath.Join(base, f[2], "cgroup.freeze")); err == nil && strings.TrimSpace(string(st)) == "1" {
					return true
				}
			}
		}
	}
	return false
}
