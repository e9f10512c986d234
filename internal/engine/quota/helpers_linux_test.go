package quota

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts, quotas)")
	}
}

// btrfsMount makes a btrfs image of size bytes, attaches it to a loop
// device of its own and mounts it; cleanup unmounts it, which detaches
// the device (autoclear).
func btrfsMount(t testing.TB, size int64) string {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs not installed (Debian btrfs-progs)")
	}
	base := t.TempDir()
	img := filepath.Join(base, "btrfs.img")
	mnt := filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	dev, f, err := AttachLoop(img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount btrfs: %v", err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// fill writes 1 MiB blocks to p until a write fails or limit bytes are
// written, and returns the bytes written and the error.
func fill(p string, limit int64) (int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	var n int64
	for n < limit {
		m, err := f.Write(buf)
		n += int64(m)
		if err != nil {
			f.Close()
			return n, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, err
	}
	return n, f.Close()
}

// isQuotaErr reports whether err is what a full quota returns.
func isQuotaErr(err error) bool {
	return errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.ENOSPC)
}
