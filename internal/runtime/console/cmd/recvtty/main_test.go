package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cove/internal/runtime/console"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent use the test makes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func serve(t *testing.T, mode string, out io.Writer) (string, chan error) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tty.sock")
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- run([]string{"--mode", mode, sock}, strings.NewReader(""), out, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("recvtty: %v", err)
	}
	return sock, done
}

// sendPty plays the runtime: it dials sock, sends a new pty master and
// returns the opened slave.
func sendPty(t *testing.T, sock string) *os.File {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	conn, err := console.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := console.SendFd(conn, master); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return slave
}

func wait(t *testing.T, done chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("recvtty did not finish")
	}
}

func TestSingle(t *testing.T) {
	var out lockedBuffer
	sock, done := serve(t, "single", &out)
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket mode %v", st.Mode())
	}
	slave := sendPty(t, sock)
	if _, err := slave.Write([]byte("hello from the container\n")); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	wait(t, done)
	if got := out.String(); got != "hello from the container\r\n" {
		t.Fatalf("output %q", got)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestNull(t *testing.T) {
	var out lockedBuffer
	sock, done := serve(t, "null", &out)
	slave := sendPty(t, sock)
	if _, err := slave.Write([]byte(strings.Repeat("x", 10000) + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("recvtty returned while the slave is open: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	slave.Close()
	wait(t, done)
	if out.String() != "" {
		t.Fatalf("null mode wrote %q", out.String())
	}
}

func TestRefuseNonSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{p}, nil, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("file removed: %v", err)
	}
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"a", "b"}, {"--mode", "bogus", "x"}} {
		if err := run(args, nil, io.Discard, nil); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
