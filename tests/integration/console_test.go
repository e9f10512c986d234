package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t, sh("tty; stty size; echo hello-from-pty"), func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	// COVE_RECVTTY names a prebuilt recvtty (the cgroup v2 VM has no go).
	recvtty := os.Getenv("COVE_RECVTTY")
	if recvtty == "" {
		recvtty = filepath.Join(t.TempDir(), "recvtty")
		if out, err := exec.Command("go", "build", "-o", recvtty, "cove/internal/runtime/console/cmd/recvtty").CombinedOutput(); err != nil {
			t.Fatalf("build recvtty: %v\n%s", err, out)
		}
	}
	sock := filepath.Join(t.TempDir(), "console.sock")
	var got bytes.Buffer
	rt := exec.Command(recvtty, sock)
	rt.Stdout = &got
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	defer rt.Process.Kill()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.mustRuntime("create", "--bundle", e.bundle, "--console-socket", sock, "c1")
	e.mustRuntime("start", "c1")
	done := make(chan error, 1)
	go func() { done <- rt.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("recvtty did not see the pty close")
	}
	out := got.String()
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "hello-from-pty") {
		t.Errorf("pty output %q", out)
	}
	// Without a console socket a detached terminal container is refused.
	if out, err := e.runtime("create", "--bundle", e.bundle, "c2"); err == nil || !strings.Contains(out, "console-socket") {
		t.Errorf("create with terminal and no socket: %v %q", err, out)
	}
}
