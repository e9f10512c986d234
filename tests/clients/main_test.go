// Package clients drives cove-runc through the container engines people
// run: containerd (ctr), Podman and Docker, each started by the test itself
// with private state, and checks that what works with runc works the same
// with cove-runc. The tests need root and the engines' Debian packages;
// a test whose client binary is missing skips.
package clients

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runcBin is the baseline runtime every scenario runs with first.
const runcBin = "/usr/sbin/runc"

var (
	coveBin    string // the cove-runc under test
	image      *testImage
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipReason = "client tests need root"
		return m.Run()
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		skipReason = "needs /bin/busybox (Debian busybox-static)"
		return m.Run()
	}
	tmp, err := os.MkdirTemp("", "cove-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	coveBin = os.Getenv("COVE_RUNC")
	if coveBin == "" {
		coveBin = filepath.Join(tmp, "cove-runc")
		out, err := exec.Command("go", "build", "-o", coveBin, "cove/cmd/cove-runc").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build cove-runc: %v\n%s", err, out)
			return 1
		}
	} else if coveBin, err = filepath.Abs(coveBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if image, err = buildImage(filepath.Join(tmp, "image")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// needBins skips the test unless root and every named binary exist.
func needBins(t *testing.T, bins ...string) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	for _, b := range append([]string{runcBin}, bins...) {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("needs %s", b)
		}
	}
}

// runtimes are the runtimes a scenario runs with: runc first as the
// baseline, then cove-runc.
func runtimes() []struct{ name, path string } {
	return []struct{ name, path string }{{"runc", runcBin}, {"cove-runc", coveBin}}
}
