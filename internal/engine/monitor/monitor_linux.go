package monitor

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config is what the supervisor of one container needs; cmd/cove-monitor
// fills it from its command line.
type Config struct {
	ID          string
	Runtime     string // runtime binary (runc command line)
	RuntimeRoot string // runtime --root
	Bundle      string
	RunDir      string // /run/cove/<id>: pid files, attach and console sockets
	LogPath     string // JSON-lines log; "" for none
	ExitPath    string // exit record, written atomically
	Cove        string // cove binary, for `cove container cleanup`
	CoveRoot    string
	Tty         bool
	Stdin       bool
	Restart     string // no, always, unless-stopped, on-failure
	MaxRetries  int
	// FirstClaims: the first attach client (fd 4) cleans up after the
	// exit, so the supervisor does not call cove back.
	FirstClaims bool
}

// Files in RunDir.
const (
	PidFile     = "pid"         // container init pid (written by the runtime)
	MonitorFile = "monitor.pid" // "PID STARTTIME" of the supervisor
	AttachSock  = "attach"
	ConsoleSock = "console.sock"
	RuntimeLog  = "runtime.log"
	StoppedFile = "stopped"  // written by cove stop/kill: no restart
	RestartFile = "restarts" // restart count, in the exit record's directory
)

type client struct {
	c     *os.File
	mu    sync.Mutex
	claim bool
}

type monitor struct {
	cfg Config

	mu      sync.Mutex
	clients map[*client]bool
	claimed bool
	stdin   *os.File // pipe write end or pty master
	master  *os.File
	logf    *os.File
	logMu   sync.Mutex
}

// Run supervises the container until its last exit. sync, if not nil,
// receives "ok PID\n" or "err CODE MESSAGE\n" once the first start is
// known; first, if not nil, is an attach client connected from the start.
func Run(cfg Config, sync *os.File, first *os.File) int {
	m := &monitor{cfg: cfg, clients: map[*client]bool{}}
	// PR_SET_CHILD_SUBREAPER: the container's init, orphaned when the
	// runtime exits, becomes our child so we can wait for it.
	syscall.RawSyscall(syscall.SYS_PRCTL, 36, 1, 0)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE, syscall.SIGTTOU, syscall.SIGTTIN)
	writeMonitorPid(cfg.RunDir)
	if cfg.LogPath != "" {
		f, err := os.OpenFile(cfg.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
		if err == nil {
			m.logf = f
		}
	}
	ln, err := listenUnix(filepath.Join(cfg.RunDir, AttachSock))
	if err == nil {
		go m.accept(ln)
	}
	if first != nil {
		cl := m.addClient(first)
		if cfg.FirstClaims {
			m.mu.Lock()
			cl.claim, m.claimed = true, true
			m.mu.Unlock()
		}
	}
	retries := 0
	delay := 100 * time.Millisecond
	for {
		code, msg, pid, outs := m.start()
		if pid <= 0 {
			if sync != nil {
				// The starter is told and cleans up itself.
				m.mu.Lock()
				m.claimed = true
				m.mu.Unlock()
			}
			m.report(sync, "err "+strconv.Itoa(code)+" "+msg+"\n")
			sync = nil
			m.broadcast(FrameError, []byte(strconv.Itoa(code)+" "+msg))
			m.writeExit(code, 0)
			m.runtime("delete", "--force", cfg.ID)
			os.Remove(filepath.Join(cfg.RunDir, MonitorFile))
			break
		}
		m.report(sync, "ok "+strconv.Itoa(pid)+"\n")
		m.emit("start", nil)
		sync = nil
		m.broadcast(FrameStarted, []byte(strconv.Itoa(pid)))
		started := time.Now()
		status := waitPid(pid)
		drain(outs, 2*time.Second)
		reapAll()
		code, sig := exitCode(status)
		m.writeExit(code, sig)
		m.closeIO()
		if !m.shouldRestart(code, retries) {
			// The runtime's delete runs while clients hear of the exit: a
			// claiming client unmounts and removes meanwhile, leaving the
			// runtime's state to us. We leave the engine's view first, so
			// its cleanup does not wait for us.
			rt := []string{cfg.Runtime, "--root", cfg.RuntimeRoot, "delete", "--force", cfg.ID}
			del, derr := startProc(cfg.Runtime, rt, nil, nil, nil, nil)
			os.Remove(filepath.Join(cfg.RunDir, MonitorFile))
			if m.broadcast(FrameExit, []byte(strconv.Itoa(code))) == 0 {
				// No claiming client heard of the exit: clean up ourselves.
				m.mu.Lock()
				m.claimed = false
				m.mu.Unlock()
			}
			if derr == nil {
				waitProc(del)
			}
			break
		}
		m.runtime("delete", "--force", cfg.ID)
		m.broadcast(FrameExit, []byte(strconv.Itoa(code)))
		m.dropClients()
		retries++
		// Beside the exit record: the count outlives the run directory.
		os.WriteFile(filepath.Join(filepath.Dir(cfg.ExitPath), RestartFile), []byte(strconv.Itoa(retries)), 0o600)
		if time.Since(started) > 10*time.Second {
			delay = 100 * time.Millisecond
		}
		time.Sleep(delay)
		if delay < 30*time.Second {
			delay *= 2
		}
		if _, err := os.Stat(filepath.Join(cfg.RunDir, StoppedFile)); err == nil {
			break
		}
		os.Remove(cfg.ExitPath)
	}
	if ln != nil {
		ln.Close()
	}
	m.finish()
	return 0
}

func (m *monitor) report(f *os.File, s string) {
	if f != nil {
		f.WriteString(s)
		f.Close()
	}
}

func (m *monitor) shouldRestart(code, retries int) bool {
	m.refreshPolicy()
	if _, err := os.Stat(filepath.Join(m.cfg.RunDir, StoppedFile)); err == nil {
		return false
	}
	switch m.cfg.Restart {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (m.cfg.MaxRetries <= 0 || retries < m.cfg.MaxRetries)
	}
	return false
}

// finish runs the engine's cleanup unless an attached client claimed it.
func (m *monitor) finish() {
	m.mu.Lock()
	claimed := m.claimed
	m.mu.Unlock()
	if claimed {
		// The client cleans up; wait (bounded) for it to hang up so that
		// it has seen the exit frame.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			m.mu.Lock()
			n := 0
			for c := range m.clients {
				if c.claim {
					n++
				}
			}
			m.mu.Unlock()
			if n == 0 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	m.dropClients()
	if claimed || m.cfg.Cove == "" {
		return
	}
	runProc(m.cfg.Cove, []string{m.cfg.Cove, "--root", m.cfg.CoveRoot, "container", "cleanup", m.cfg.ID},
		&syscall.SysProcAttr{Setsid: true})
}

// start runs `runtime run -d` with the container's stdio. It returns the
// container's pid, or a docker-style exit code and message.
func (m *monitor) start() (code int, msg string, pid int, outs []chan struct{}) {
	cfg := m.cfg
	pidPath := filepath.Join(cfg.RunDir, PidFile)
	os.Remove(pidPath)
	logPath := filepath.Join(cfg.RunDir, RuntimeLog)
	os.Remove(logPath)
	args := []string{"--root", cfg.RuntimeRoot, "--log", logPath, "--log-format", "json",
		"run", "--detach", "--bundle", cfg.Bundle, "--pid-file", pidPath}
	var stdin, stdout, stderr *os.File
	var closeAfter []*os.File
	var consoleLn *listener
	if cfg.Tty {
		sock := filepath.Join(cfg.RunDir, ConsoleSock)
		var err error
		consoleLn, err = listenUnix(sock)
		if err != nil {
			return 125, "console socket: " + err.Error(), 0, nil
		}
		defer consoleLn.Close()
		args = append(args, "--console-socket", sock)
	} else {
		or, ow, err := os.Pipe()
		if err != nil {
			return 125, err.Error(), 0, nil
		}
		er, ew, err := os.Pipe()
		if err != nil {
			return 125, err.Error(), 0, nil
		}
		stdout, stderr = ow, ew
		closeAfter = append(closeAfter, ow, ew)
		if cfg.Stdin {
			ir, iw, err := os.Pipe()
			if err != nil {
				return 125, err.Error(), 0, nil
			}
			stdin = ir
			closeAfter = append(closeAfter, ir)
			m.mu.Lock()
			m.stdin = iw
			m.mu.Unlock()
		}
		outs = append(outs, m.pump(or, "stdout", FrameStdout), m.pump(er, "stderr", FrameStderr))
	}
	argv := append([]string{cfg.Runtime}, append(args, cfg.ID)...)
	proc, err := startProc(cfg.Runtime, argv, stdin, stdout, stderr, &syscall.SysProcAttr{Setpgid: true})
	for _, f := range closeAfter {
		f.Close()
	}
	if err != nil {
		return 125, "start runtime " + cfg.Runtime + ": " + err.Error(), 0, nil
	}
	if consoleLn != nil {
		masterc := make(chan *os.File, 1)
		go func() {
			consoleLn.f.SetReadDeadline(time.Now().Add(60 * time.Second))
			c, err := consoleLn.accept()
			if err != nil {
				masterc <- nil
				return
			}
			f, _ := recvFd(c)
			c.Close()
			masterc <- f
		}()
		werr := waitProc(proc)
		if werr != nil {
			consoleLn.Close()
		}
		master := <-masterc
		if werr != nil || master == nil {
			if master != nil {
				master.Close()
			}
			c, msg := runtimeError(logPath, werr)
			return c, msg, 0, nil
		}
		m.mu.Lock()
		m.master, m.stdin = master, master
		m.mu.Unlock()
		outs = append(outs, m.pump(master, "stdout", FrameStdout))
	} else if err := waitProc(proc); err != nil {
		c, msg := runtimeError(logPath, err)
		drain(outs, time.Second)
		return c, msg, 0, nil
	}
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return 125, "read pid file: " + err.Error(), 0, outs
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 125, "bad pid file", 0, outs
	}
	return 0, "", pid, outs
}

// runtimeError maps the runtime's last logged error to docker's exit codes:
// 127 command not found, 126 cannot be invoked, 125 otherwise.
func runtimeError(logPath string, err error) (int, string) {
	msg := ""
	if b, rerr := os.ReadFile(logPath); rerr == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if i := bytes.Index(line, []byte(`"msg":"`)); i >= 0 && bytes.Contains(line, []byte(`"level":"error"`)) {
				msg = jsonStringAt(line[i+7:])
			}
		}
	}
	if msg == "" && err != nil {
		msg = "runtime: " + err.Error()
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "not found") || strings.Contains(low, "no such file"):
		return 127, msg
	case strings.Contains(low, "permission denied") || strings.Contains(low, "is a directory") || strings.Contains(low, "exec format error"):
		return 126, msg
	}
	return 125, msg
}

// jsonStringAt decodes the JSON string body at the start of b (after its
// opening quote) up to the closing quote; enough for log messages.
func jsonStringAt(b []byte) string {
	var out []byte
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return string(out)
		case c == '\\' && i+1 < len(b):
			i++
			switch b[i] {
			case 'n':
				out = append(out, '\n')
			case 't':
				out = append(out, '\t')
			case 'u':
				i += 4 // control characters: dropped
			default:
				out = append(out, b[i])
			}
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func (m *monitor) runtime(args ...string) error {
	return runProc(m.cfg.Runtime, append([]string{m.cfg.Runtime, "--root", m.cfg.RuntimeRoot}, args...), nil)
}

func (m *monitor) closeIO() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stdin != nil && m.stdin != m.master {
		m.stdin.Close()
	}
	if m.master != nil {
		m.master.Close()
	}
	m.stdin, m.master = nil, nil
}

// pump copies one output stream to the log and to attach clients; the
// channel closes at EOF.
func (m *monitor) pump(f *os.File, stream string, typ byte) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		buf := make([]byte, 8*1024)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				m.log(stream, buf[:n])
				m.broadcast(typ, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return done
}

func drain(outs []chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, c := range outs {
		select {
		case <-c:
		case <-t.C:
			return
		}
	}
}

// log appends one JSON line per output line: {"log":..,"stream":..,"time":..}
// (docker's json-file format).
func (m *monitor) log(stream string, p []byte) {
	if m.logf == nil {
		return
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var b []byte
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		var line []byte
		if i < 0 {
			line, p = p, nil
		} else {
			line, p = p[:i+1], p[i+1:]
		}
		b = append(b, `{"log":`...)
		b = appendJSONString(b, line)
		b = append(b, `,"stream":"`...)
		b = append(b, stream...)
		b = append(b, `","time":"`...)
		b = append(b, now...)
		b = append(b, "\"}\n"...)
	}
	m.logMu.Lock()
	m.logf.Write(b)
	m.logMu.Unlock()
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func (m *monitor) writeExit(code, sig int) {
	b := []byte(`{"code":` + strconv.Itoa(code))
	if sig != 0 {
		b = append(b, `,"signal":`+strconv.Itoa(sig)...)
	}
	oom := oomKilled(m.cfg.Bundle)
	if oom {
		b = append(b, `,"oomKilled":true`...)
		m.emit("oom", nil)
	}
	defer m.emit("die", map[string]string{"exitCode": strconv.Itoa(code)})
	b = append(b, `,"finishedAt":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`...)
	tmp := m.cfg.ExitPath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	f.Write(b)
	f.Sync()
	f.Close()
	os.Rename(tmp, m.cfg.ExitPath)
}

func exitCode(st syscall.WaitStatus) (code, sig int) {
	if st.Signaled() {
		return 128 + int(st.Signal()), int(st.Signal())
	}
	return st.ExitStatus(), 0
}

// waitPid waits for our (adopted) child pid.
func waitPid(pid int) syscall.WaitStatus {
	var st syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &st, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			// Not our child (the runtime did not hand it over): poll.
			for syscall.Kill(pid, 0) == nil {
				time.Sleep(100 * time.Millisecond)
			}
			return st
		}
		return st
	}
}

// reapAll collects zombies left to us as subreaper.
func reapAll() {
	for {
		var st syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

func writeMonitorPid(dir string) {
	pid := os.Getpid()
	s := strconv.Itoa(pid) + " " + ProcStartTime(pid) + "\n"
	tmp := filepath.Join(dir, MonitorFile+".tmp")
	if os.WriteFile(tmp, []byte(s), 0o600) == nil {
		os.Rename(tmp, filepath.Join(dir, MonitorFile))
	}
}

// ProcStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks since boot), which tells a process from a later one with its pid.
func ProcStartTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

func (m *monitor) accept(ln *listener) {
	for {
		c, err := ln.accept()
		if err != nil {
			return
		}
		m.addClient(c)
	}
}

func (m *monitor) addClient(c *os.File) *client {
	cl := &client{c: c}
	m.mu.Lock()
	m.clients[cl] = true
	m.mu.Unlock()
	go m.serve(cl)
	return cl
}

func (m *monitor) removeClient(cl *client) {
	m.mu.Lock()
	delete(m.clients, cl)
	m.mu.Unlock()
	cl.c.Close()
}

func (m *monitor) dropClients() {
	m.mu.Lock()
	cls := m.clients
	m.clients = map[*client]bool{}
	m.mu.Unlock()
	for cl := range cls {
		cl.c.Close()
	}
}

func (m *monitor) serve(cl *client) {
	defer m.removeClient(cl)
	for {
		typ, p, err := ReadFrame(cl.c)
		if err != nil {
			return
		}
		switch typ {
		case FrameStdin:
			m.mu.Lock()
			in := m.stdin
			m.mu.Unlock()
			if in != nil {
				in.Write(p)
			}
		case FrameCloseStdin:
			m.mu.Lock()
			if m.stdin != nil && m.stdin != m.master {
				m.stdin.Close()
				m.stdin = nil
			}
			m.mu.Unlock()
		case FrameResize:
			m.mu.Lock()
			master := m.master
			m.mu.Unlock()
			if master != nil && len(p) == 4 {
				setWinsize(master, uint16(p[0])<<8|uint16(p[1]), uint16(p[2])<<8|uint16(p[3]))
			}
		case FrameClaim:
			m.mu.Lock()
			cl.claim = true
			m.claimed = true
			m.mu.Unlock()
		}
	}
}

// broadcast sends a frame to every client; it returns how many claiming
// clients received it.
func (m *monitor) broadcast(typ byte, p []byte) int {
	m.mu.Lock()
	cls := make([]*client, 0, len(m.clients))
	for cl := range m.clients {
		cls = append(cls, cl)
	}
	m.mu.Unlock()
	claims := 0
	for _, cl := range cls {
		cl.mu.Lock()
		cl.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		err := WriteFrame(cl.c, typ, p)
		cl.mu.Unlock()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			m.removeClient(cl)
		} else if err == nil && cl.claim {
			claims++
		}
	}
	return claims
}
