// Package images tests the cove binary's image commands against real
// components: Debian's docker-registry, skopeo and podman, and the kernel
// (overlay mounts of unpacked snapshots, a full tmpfs).
package images

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var coveBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	coveBin = os.Getenv("COVE")
	if coveBin == "" {
		dir, err := os.MkdirTemp("", "cove-images-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		coveBin = filepath.Join(dir, "cove")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", coveBin, "./cmd/cove")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build cove:", err)
			return 1
		}
	}
	return m.Run()
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay snapshots, mounts)")
	}
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (.ci/deps.sh installs it)", name)
	}
}

// result of one cove invocation.
type result struct {
	stdout, stderr string
	code           int
}

func cove(t *testing.T, root string, args ...string) result {
	t.Helper()
	cmd := exec.Command(coveBin, append([]string{"--root", root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cove %v: %v", args, err)
	}
	return r
}

func mustCove(t *testing.T, root string, args ...string) string {
	t.Helper()
	r := cove(t, root, args...)
	if r.code != 0 {
		t.Fatalf("cove %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// registry is a private docker-registry on 127.0.0.1.
type registry struct {
	host string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRegistry(t *testing.T) *registry {
	t.Helper()
	requireTool(t, "docker-registry")
	dir := t.TempDir()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return &registry{host: host}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not start: %s", logb.String())
	return nil
}

// get fetches a registry path and returns the body.
func (r *registry) get(t *testing.T, path string, accept ...string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.host+path, nil)
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", path, resp.Status, err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// rootfs builds a busybox root filesystem (tests/fixtures/mkrootfs.sh).
func rootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "fixtures", "mkrootfs.sh")
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		t.Fatalf("mkrootfs: %v\n%s", err, out)
	}
	return dir
}

// inspectField runs `cove image inspect --format TEMPLATE`.
func inspectField(t *testing.T, root, img, tmpl string) string {
	t.Helper()
	return mustCove(t, root, "image", "inspect", "--format", tmpl, img)
}
