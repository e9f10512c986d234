package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// struct seccomp_notif and seccomp_notif_resp (linux/seccomp.h).
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// notified is the state one listener connection received.
type notified struct {
	state specs.ContainerProcessState
	err   error
}

// answerNotifications reads one ContainerProcessState with its fd from
// conn and reports it, then answers every notification on the fd with val
// (reporting the syscall number on nrs) until the filter's processes are
// gone.
func answerNotifications(conn *net.UnixConn, val int64, out chan<- notified, nrs chan<- int32) {
	defer conn.Close()
	buf, oob := make([]byte, 1<<16), make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		out <- notified{err: err}
		return
	}
	var r notified
	if err := json.Unmarshal(buf[:n], &r.state); err != nil {
		out <- notified{err: err}
		return
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		out <- notified{err: fmt.Errorf("control messages %d: %v", len(msgs), err)}
		return
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		out <- notified{err: fmt.Errorf("fds %v: %v", fds, err)}
		return
	}
	out <- r
	fd := fds[0]
	defer unix.Close(fd)
	for {
		var req seccompNotif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
			if e == unix.EINTR {
				continue
			}
			return
		}
		select { // before the answer, which lets the process go on
		case nrs <- req.Nr:
		default:
		}
		resp := seccompNotifResp{ID: req.ID, Val: val}
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// TestSecNotify: SCMP_ACT_NOTIFY sends the listener fd with the container
// process state and metadata to listenerPath, for the init at create and
// for an exec'd process; a listener answering the notification decides
// what the syscall returns.
func TestSecNotify(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "listener.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, nrs := make(chan notified, 4), make(chan int32, 4)
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go answerNotifications(c, 4242, got, nrs)
		}
	}()
	e := secEnv(t, []string{"sleep", "60"}, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction:    specs.ActAllow,
			ListenerPath:     sock,
			ListenerMetadata: "sec-meta",
			Syscalls:         []specs.LinuxSyscall{{Names: []string{"sysinfo"}, Action: specs.ActNotify}},
		}
	})
	e.mustRuntime("run", "-d", "--bundle", e.bundle, "sec-notify")
	pid := int(e.state("sec-notify")["pid"].(float64))

	out := e.mustRuntime("exec", "sec-notify", "/bin/sysc", itoa(nrSysinfo), "0")
	if !strings.Contains(out, "ret=4242 errno=0") {
		t.Errorf("notified sysinfo: %q, want the listener's answer 4242", out)
	}
	select {
	case nr := <-nrs:
		if nr != nrSysinfo {
			t.Errorf("listener notified of syscall %d, want %d", nr, nrSysinfo)
		}
	default:
		t.Error("listener saw no notification")
	}
	// Two connections: the init's fd at create, the exec'd process's.
	var initSt, execSt *specs.ContainerProcessState
	deadline := time.After(10 * time.Second)
	for initSt == nil || execSt == nil {
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatalf("listener: %v", r.err)
			}
			if r.state.Pid == pid {
				initSt = &r.state
			} else {
				execSt = &r.state
			}
		case <-deadline:
			t.Fatalf("listener got init %v, exec %v", initSt != nil, execSt != nil)
		}
	}
	for _, st := range []*specs.ContainerProcessState{initSt, execSt} {
		if st.Metadata != "sec-meta" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName ||
			st.State.ID != "sec-notify" || st.State.Pid != pid || st.Version == "" {
			t.Errorf("container process state %+v", st)
		}
	}
	if initSt.State.Status != specs.StateCreating {
		t.Errorf("init's state status %q, want creating", initSt.State.Status)
	}
	if execSt.State.Status != specs.StateRunning {
		t.Errorf("exec'd process's state status %q, want running", execSt.State.Status)
	}
}
