package console

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketpair returns both ends of a connected unix stream socket pair.
func socketpair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newPty(t *testing.T) (*os.File, string) {
	t.Helper()
	master, slave, err := NewPty()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if !strings.HasPrefix(slave, "/dev/pts/") {
		t.Fatalf("slave path %q", slave)
	}
	return master, slave
}

func openSlave(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readFor reads from r until want has been seen or the deadline passes.
func readFor(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 256)
		for !bytes.Contains(got, []byte(want)) {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		done <- string(got)
	}()
	select {
	case got := <-done:
		return got
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
		return ""
	}
}

func TestSendRecvPty(t *testing.T) {
	master, slavePath := newPty(t)
	a, b := socketpair(t)
	if err := SendFd(a, master); err != nil {
		t.Fatal(err)
	}
	got, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != master.Name() {
		t.Fatalf("received name %q, want %q", got.Name(), master.Name())
	}
	// The received descriptor is close-on-exec.
	flags, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("received fd flags %#x, %v", flags, err)
	}
	// The original master can go: the received one keeps the pty alive.
	master.Close()

	slave := openSlave(t, slavePath)
	defer slave.Close()
	restore, err := MakeRaw(slave)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slave.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	// Raw mode: no "\n" -> "\r\n" translation.
	if out := readFor(t, got, "hello\n"); out != "hello\n" {
		t.Fatalf("read %q", out)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := slave.Write([]byte("cooked\n")); err != nil {
		t.Fatal(err)
	}
	if out := readFor(t, got, "cooked\r\n"); out != "cooked\r\n" {
		t.Fatalf("after restore read %q", out)
	}
	// Input written to the master reaches the slave.
	if _, err := got.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	if out := readFor(t, slave, "typed"); !strings.Contains(out, "typed") {
		t.Fatalf("slave read %q", out)
	}
}

func TestSendRecvFile(t *testing.T) {
	a, b := socketpair(t)
	p := t.TempDir() + "/data"
	if err := os.WriteFile(p, []byte("payload"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := SendFd(a, f); err != nil {
		t.Fatal(err)
	}
	g, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Name() != p {
		t.Fatalf("name %q", g.Name())
	}
	data, err := io.ReadAll(g)
	if err != nil || string(data) != "payload" {
		t.Fatalf("read %q, %v", data, err)
	}
}

func TestRecvFdErrors(t *testing.T) {
	a, b := socketpair(t)
	// Plain data without a descriptor.
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := RecvFd(b); err == nil || !strings.Contains(err.Error(), "got 0 descriptors") {
		t.Fatalf("error %v", err)
	}
	// Two descriptors in one message.
	oob := unix.UnixRights(0, 1)
	if err := unix.Sendmsg(int(a.Fd()), []byte("two"), oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := RecvFd(b); err == nil || !strings.Contains(err.Error(), "got 2 descriptors") {
		t.Fatalf("error %v", err)
	}
	// Peer closed.
	a.Close()
	if _, err := RecvFd(b); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v", err)
	}
}

func TestDial(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/console.sock"
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ln := os.NewFile(uintptr(fd), sock)
	defer ln.Close()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	conn, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(nfd), "peer")
	defer peer.Close()

	master, _ := newPty(t)
	if err := SendFd(conn, master); err != nil {
		t.Fatal(err)
	}
	got, err := RecvFd(peer)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()

	if _, err := Dial(dir + "/missing.sock"); err == nil || !strings.Contains(err.Error(), "missing.sock") {
		t.Fatalf("dial missing socket: %v", err)
	}
}

func TestSize(t *testing.T) {
	master, slavePath := newPty(t)
	if err := SetSize(master, 40, 132); err != nil {
		t.Fatal(err)
	}
	rows, cols, err := Size(master)
	if err != nil || rows != 40 || cols != 132 {
		t.Fatalf("Size(master) = %d, %d, %v", rows, cols, err)
	}
	slave := openSlave(t, slavePath)
	defer slave.Close()
	rows, cols, err = Size(slave)
	if err != nil || rows != 40 || cols != 132 {
		t.Fatalf("Size(slave) = %d, %d, %v", rows, cols, err)
	}
	if err := SetSize(slave, 25, 80); err != nil {
		t.Fatal(err)
	}
	if rows, cols, _ := Size(master); rows != 25 || cols != 80 {
		t.Fatalf("Size(master) after slave set = %d, %d", rows, cols)
	}
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := Size(f); err == nil {
		t.Fatal("Size of /dev/null succeeded")
	}
}

func TestCopy(t *testing.T) {
	master, slavePath := newPty(t)
	slave := openSlave(t, slavePath)
	if _, err := MakeRaw(slave); err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Copy(master, stdinR, &out) }()

	// Input from stdin reaches the slave.
	if _, err := stdinW.Write([]byte("in\n")); err != nil {
		t.Fatal(err)
	}
	if got := readFor(t, slave, "in\n"); got != "in\n" {
		t.Fatalf("slave read %q", got)
	}
	// Output written to the slave is drained before Copy returns on EIO.
	big := strings.Repeat("0123456789abcdef", 256)
	if _, err := slave.Write([]byte(big + "end")); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Copy did not return after the slave closed")
	}
	if out.String() != big+"end" {
		t.Fatalf("copied %d bytes, want %d", out.Len(), len(big)+3)
	}
}
