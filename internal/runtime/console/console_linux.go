package console

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"cove/internal/pathrs"
)

// maxNameLen bounds the name payload RecvFd accepts with a descriptor.
const maxNameLen = 4096

// NewPty opens "/dev/ptmx" of the current root (O_RDWR|O_NOCTTY|O_CLOEXEC),
// unlocks it and returns the master and the slave's path (/dev/pts/N).
// The master is in non-blocking mode and registered with the Go poller.
//
// /dev/ptmx is resolved inside the root and must be the pty multiplexer
// (5:2) before it is opened: in a container's /dev, it or /dev/pts/ptmx may
// be a symlink to any file.
func NewPty() (master *os.File, slave string, err error) {
	master, err = openPtmx()
	if err != nil {
		return nil, "", fmt.Errorf("open pty master: %w", err)
	}
	var n uint32
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock pty: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("get pty number: %w", err)
		}
		return nil
	})
	if err != nil {
		master.Close()
		return nil, "", err
	}
	return master, fmt.Sprintf("/dev/pts/%d", n), nil
}

func openPtmx() (*os.File, error) {
	p, err := pathrs.OpenInRoot("/", "/dev/ptmx", unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(p.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 5 || unix.Minor(st.Rdev) != 2 {
		return nil, fmt.Errorf("/dev/ptmx is not the pty multiplexer (mode %#o, device %d:%d)",
			st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// Non-blocking, so that os.NewFile registers it with the poller.
	return pathrs.Reopen(p, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK)
}

// Dial connects to the console socket at path (a unix stream socket) and
// returns the connection as a file.
func Dial(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// SendFd sends f over the connected unix socket conn with SCM_RIGHTS, with
// f.Name() as the message payload.
func SendFd(conn *os.File, f *os.File) error {
	name := f.Name()
	if len(name) > maxNameLen {
		return fmt.Errorf("send fd: name of %d bytes exceeds %d", len(name), maxNameLen)
	}
	if name == "" {
		// A zero-byte payload cannot be told apart from EOF by the receiver.
		name = "fd"
	}
	err := control(f, func(sent int) error {
		oob := unix.UnixRights(sent)
		rc, err := conn.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		werr := rc.Write(func(fd uintptr) bool {
			serr = unix.Sendmsg(int(fd), []byte(name), oob, nil, 0)
			return !errors.Is(serr, unix.EAGAIN)
		})
		if werr != nil {
			return werr
		}
		return serr
	})
	if err != nil {
		return fmt.Errorf("send fd %s: %w", name, err)
	}
	return nil
}

// RecvFd receives one file descriptor sent with SendFd. The returned file is
// named by the sender's payload and is close-on-exec.
func RecvFd(conn *os.File) (*os.File, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	buf := make([]byte, maxNameLen)
	// Room for a few descriptors so that extra ones are received (and
	// closed) rather than silently truncated.
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		err = errors.New("control message truncated")
	case len(fds) == 0 && n == 0:
		err = io.ErrUnexpectedEOF
	case len(fds) != 1:
		err = fmt.Errorf("got %d descriptors, want 1", len(fds))
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive fd: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// parseRights returns the descriptors of all SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return nil, fmt.Errorf("parse SCM_RIGHTS: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// SetSize sets a terminal's window size.
func SetSize(f *os.File, rows, cols uint16) error {
	err := control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
	if err != nil {
		return fmt.Errorf("set window size of %s: %w", f.Name(), err)
	}
	return nil
}

// Size reads a terminal's window size.
func Size(f *os.File) (rows, cols uint16, err error) {
	err = control(f, func(fd int) error {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return err
		}
		rows, cols = ws.Row, ws.Col
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("get window size of %s: %w", f.Name(), err)
	}
	return rows, cols, nil
}

// MakeRaw puts terminal f in raw mode (as cfmakeraw does) and returns a
// function restoring the previous state.
func MakeRaw(f *os.File) (restore func() error, err error) {
	var old *unix.Termios
	err = control(f, func(fd int) error {
		var err error
		if old, err = unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			return err
		}
		raw := *old
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP |
			unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN] = 1
		raw.Cc[unix.VTIME] = 0
		return unix.IoctlSetTermios(fd, unix.TCSETS, &raw)
	})
	if err != nil {
		return nil, fmt.Errorf("make %s raw: %w", f.Name(), err)
	}
	return func() error {
		err := control(f, func(fd int) error {
			return unix.IoctlSetTermios(fd, unix.TCSETS, old)
		})
		if err != nil {
			return fmt.Errorf("restore terminal %s: %w", f.Name(), err)
		}
		return nil
	}, nil
}

// Copy proxies stdin to master and master to stdout until the master side
// reports EOF or EIO (every slave closed); it returns when output is drained.
// The stdin copy runs in the background and is abandoned on return.
func Copy(master *os.File, stdin io.Reader, stdout io.Writer) error {
	if stdin != nil {
		go func() {
			_, _ = io.Copy(master, stdin)
		}()
	}
	_, err := io.Copy(stdout, eioReader{master})
	if err != nil {
		return fmt.Errorf("copy console output: %w", err)
	}
	return nil
}

// eioReader turns the EIO a pty master returns once all slaves are closed
// into io.EOF.
type eioReader struct{ r io.Reader }

func (e eioReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, syscall.EIO) {
		err = io.EOF
	}
	return n, err
}

// control runs fn with f's descriptor without switching it to blocking
// mode (as f.Fd would).
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
