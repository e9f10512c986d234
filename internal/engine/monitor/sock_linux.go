package monitor

import (
	"errors"
	"os"
	"syscall"
)

// The supervisor uses raw unix sockets and os.StartProcess instead of the
// net and os/exec packages: they would double its binary and its
// resident memory (see bench/engine.sh).

// listener is a listening unix socket on the runtime poller.
type listener struct{ f *os.File }

// listenUnix listens on a mode-0600 unix socket at path.
func listenUnix(path string) (*listener, error) {
	os.Remove(path)
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	old := syscall.Umask(0o077)
	err = syscall.Bind(fd, &syscall.SockaddrUnix{Name: path})
	syscall.Umask(old)
	if err == nil {
		err = syscall.Listen(fd, 16)
	}
	if err != nil {
		syscall.Close(fd)
		return nil, errors.New("listen on " + path + ": " + err.Error())
	}
	return &listener{f: os.NewFile(uintptr(fd), path)}, nil
}

// accept waits for one connection (or the read deadline set on l.f).
func (l *listener) accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK)
		return aerr != syscall.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return os.NewFile(uintptr(nfd), "attach-client"), nil
}

func (l *listener) Close() error { return l.f.Close() }

// recvFd receives one file descriptor (the pty master) over c.
func recvFd(c *os.File) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 256)
	oob := make([]byte, syscall.CmsgSpace(4))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_CMSG_CLOEXEC)
		return rerr != syscall.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("no fd received on console socket")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("no fd received on console socket")
	}
	for _, fd := range fds[1:] {
		syscall.Close(fd)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// startProc starts path with argv and the given stdio (nil: /dev/null).
func startProc(path string, argv []string, stdin, stdout, stderr *os.File, sys *syscall.SysProcAttr) (*os.Process, error) {
	var null *os.File
	files := []*os.File{stdin, stdout, stderr}
	for i, f := range files {
		if f == nil {
			if null == nil {
				var err error
				if null, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return nil, err
				}
				defer null.Close()
			}
			files[i] = null
		}
	}
	return os.StartProcess(path, argv, &os.ProcAttr{Dir: "/", Files: files, Sys: sys})
}

// waitProc waits for p; a non-zero exit is an error.
func waitProc(p *os.Process) error {
	st, err := p.Wait()
	if err != nil {
		return err
	}
	if !st.Success() {
		return errors.New(st.String())
	}
	return nil
}

// runProc runs path to completion with no stdio.
func runProc(path string, argv []string, sys *syscall.SysProcAttr) error {
	p, err := startProc(path, argv, nil, nil, nil, sys)
	if err != nil {
		return err
	}
	return waitProc(p)
}
