package criu

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// testClient returns a client for CRIU 4.2 (the cove-criu wrapper that
// .ci/criu.sh installs), or skips.
func testClient(t *testing.T) *Client {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("CRIU needs root")
	}
	path, err := exec.LookPath("cove-criu")
	if err != nil {
		t.Skip("cove-criu not installed (run .ci/criu.sh)")
	}
	return &Client{Path: path}
}

func TestVersion(t *testing.T) {
	c := testClient(t)
	v, err := c.Version()
	if err != nil {
		t.Fatal(err)
	}
	if v.Code() < 40200 {
		t.Fatalf("version %s, want >= 4.2", v)
	}
}

func TestFeatures(t *testing.T) {
	c := testClient(t)
	f, err := c.Features(&rpc.CriuFeatures{MemTrack: proto.Bool(true), LazyPages: proto.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	// The answer must match the kernel: soft-dirty bits exist only with
	// CONFIG_MEM_SOFT_DIRTY, userfaultfd only with CONFIG_USERFAULTFD.
	_, uffdErr := os.Stat("/proc/sys/vm/unprivileged_userfaultfd")
	if f.GetLazyPages() != (uffdErr == nil) {
		t.Errorf("lazy_pages = %v, but /proc/sys/vm/unprivileged_userfaultfd exists: %v", f.GetLazyPages(), uffdErr == nil)
	}
	t.Logf("mem_track=%v lazy_pages=%v", f.GetMemTrack(), f.GetLazyPages())
}

func TestMissingBinary(t *testing.T) {
	c := &Client{Path: filepath.Join(t.TempDir(), "no-criu")}
	if _, err := c.Version(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestDumpErrorIsReported(t *testing.T) {
	c := testClient(t)
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Pid 0x7ffffff0 does not exist: CRIU must fail, and say so.
	_, err = c.Do(&Call{
		Type: rpc.CriuReqType_DUMP,
		Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(int32(d.Fd())), Pid: proto.Int32(0x7ffffff0),
			LogFile: proto.String("dump.log"), LogLevel: proto.Int32(4)},
	})
	if err == nil {
		t.Fatal("dump of a missing pid succeeded")
	}
	if LogErrors(filepath.Join(dir, "dump.log"), 3) == "" {
		t.Errorf("no error lines in the CRIU log; err = %v", err)
	}
	t.Log(err, "|", LogErrors(filepath.Join(dir, "dump.log"), 3))
}
