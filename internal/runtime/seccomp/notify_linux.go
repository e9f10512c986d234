package seccomp

import (
	"encoding/json"
	"fmt"
	"net"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// FetchListener copies the seccomp listener fd numbered fd in process pid
// into this process (pidfd_getfd), so the process need not send it.
func FetchListener(pid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	nfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd_getfd %d of pid %d: %w", fd, pid, err)
	}
	return nfd, nil
}

// SendListener connects to the listener socket at path and sends the
// container process state as JSON with the listener fd attached
// (SCM_RIGHTS), in one message, as runc does.
func SendListener(path string, st *specs.ContainerProcessState, fd int) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("seccomp listenerPath: %w", err)
	}
	defer conn.Close()
	if _, _, err := conn.WriteMsgUnix(b, unix.UnixRights(fd), nil); err != nil {
		return fmt.Errorf("send seccomp listener fd to %s: %w", path, err)
	}
	return nil
}
