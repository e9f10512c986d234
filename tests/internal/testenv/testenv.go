// Package testenv holds what cove's root-only test suites share: building
// the binaries under test, a busybox root for containers, and running a
// command with a time limit.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// SkipReason says why root-only container tests cannot run here ("" when
// they can): they need root and Debian's busybox-static.
func SkipReason() string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return "needs /bin/busybox (Debian busybox-static)"
	}
	return ""
}

// RuntimeBin returns the cove-runc under test: $COVE_RUNC, else one built
// from this tree into dir.
func RuntimeBin(dir string) (string, error) {
	if bin := os.Getenv("COVE_RUNC"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "cove-runc")
	return bin, GoBuild(bin, "cove/cmd/cove-runc", false)
}

// GoBuild builds package pkg to out; static builds without cgo.
func GoBuild(out, pkg string, static bool) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = os.Environ()
	if static {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// MakeBusyboxRoot builds a busybox root in dir: the binary, one symlink per
// applet, a passwd/group with root, user (1000) and nobody, and the host
// files of extra (host path -> path in the root) copied in.
func MakeBusyboxRoot(dir string, extra map[string]string) error {
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{"/bin/busybox": "bin/busybox"}
	for src, dst := range extra {
		files[src] = dst
	}
	for src, dst := range files {
		if out, err := exec.Command("cp", src, filepath.Join(dir, dst)).CombinedOutput(); err != nil {
			return fmt.Errorf("copy %s: %v: %s", src, err, out)
		}
	}
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", applet))
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	etc := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
	}
	for name, data := range etc {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// RunTimeout runs cmd and kills it after d.
func RunTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		cmd.WaitDelay = time.Second
		<-done
		return fmt.Errorf("timed out after %s", d)
	}
}

// CombinedOutput runs cmd with a time limit and returns its stdout and
// stderr together. The output goes through a temporary file, not a pipe: a
// detached container inherits it and would hold a pipe open.
func CombinedOutput(cmd *exec.Cmd, d time.Duration) (string, error) {
	out, err := os.CreateTemp("", "cove-out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = RunTimeout(cmd, d)
	b, _ := os.ReadFile(out.Name())
	return string(b), err
}
