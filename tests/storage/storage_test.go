// Package storage holds root-only end-to-end tests of disk quotas and
// volumes: a busybox image unpacked into a snapshot store, a container
// layer capped per quota driver, mounted, and busybox dd run in it with
// chroot until the cap stops it; capped volumes bind-mounted into it;
// copy-up of image content into a volume.
package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
	"cove/internal/engine/snapshot"
	"cove/internal/engine/volume"
)

func chainID(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, loop devices, quotas, chroot)")
	}
	if quota.Check(quota.Loop, os.TempDir()) != nil {
		t.Skip("no loop devices or e2fsprogs")
	}
}

// busyboxLayer builds the busybox rootfs of tests/fixtures and tars it.
func busyboxLayer(t *testing.T) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("../fixtures/mkrootfs.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("mkrootfs: %v\n%s", err, out)
	}
	out, err := exec.Command("tar", "--format=posix", "--numeric-owner", "-C", dir, "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	return out
}

// btrfsMount makes a btrfs image on a loop device of its own and mounts
// it; cleanup unmounts it, which detaches the device (autoclear).
func btrfsMount(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs not installed (Debian btrfs-progs)")
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "btrfs.img"), filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 1<<30)
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	dev, f, err := quota.AttachLoop(img, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount btrfs: %v", err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// ddIn runs busybox dd in a chroot of root, copying /dev/zero (the host's,
// as stdin) into path in 1 MiB blocks, count blocks at most.
func ddIn(t *testing.T, root, path string, count int) (string, error) {
	t.Helper()
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close()
	cmd := exec.Command("chroot", root, "/bin/dd", "of="+path, "bs=1M", fmt.Sprintf("count=%d", count))
	cmd.Stdin = zero
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	return stderr.String(), err
}

func isQuotaMessage(s string) bool {
	return strings.Contains(s, "No space left on device") || strings.Contains(s, "Disk quota exceeded")
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestStorageQuotaDD: a container layer capped at 32 MiB stops busybox dd
// run inside it with ENOSPC/EDQUOT, per snapshot and quota driver, while
// the host filesystem beside it takes more; usage is reported and the
// layer, its mount and its loop device go away with RemoveActive.
func TestStorageQuotaDD(t *testing.T) {
	needRoot(t)
	layer := busyboxLayer(t)
	for _, c := range []struct{ name, snap, quota string }{
		{"overlay-loop-ext4", snapshot.DriverOverlay, quota.Loop},
		{"overlay-btrfs-qgroup", snapshot.DriverOverlay, quota.Btrfs},
		{"btrfs-btrfs-qgroup", snapshot.DriverBtrfs, quota.Btrfs},
		{"overlay-loop-on-btrfs", snapshot.DriverOverlay, quota.Loop},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			if strings.Contains(c.name, "btrfs") {
				base = btrfsMount(t)
			}
			s, err := snapshot.Open(filepath.Join(base, "store"), snapshot.WithDriver(c.snap), snapshot.WithoutSync())
			if err != nil {
				t.Fatal(err)
			}
			id := chainID("busybox")
			if _, err := s.Unpack(context.Background(), id, "", bytes.NewReader(layer)); err != nil {
				t.Fatal(err)
			}
			key := "covest-" + c.name
			if err := s.Prepare(key, id, snapshot.WithSizeLimit(32<<20), snapshot.WithQuotaDriver(c.quota)); err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if err := s.Mount(key, root); err != nil {
				s.RemoveActive(key)
				t.Fatal(err)
			}
			defer func() {
				if err := s.Unmount(root); err != nil {
					t.Error(err)
				}
				if err := s.RemoveActive(key); err != nil {
					t.Error(err)
				}
				if devs, _ := quota.LoopDevices(s.Dir()); len(devs) != 0 {
					t.Errorf("loop devices left: %+v", devs)
				}
			}()
			msg, err := ddIn(t, root, "/fill", 100)
			if err == nil || !isQuotaMessage(msg) {
				t.Fatalf("dd of 100 MiB into a 32 MiB layer: %v, stderr %q; want ENOSPC/EDQUOT", err, msg)
			}
			n := fileSize(t, filepath.Join(root, "fill"))
			if n < 26<<20 || n > 33<<20 {
				t.Errorf("dd wrote %d bytes before the 32 MiB cap", n)
			}
			// The host filesystem under the store is not affected.
			if err := os.WriteFile(filepath.Join(base, "outside"), make([]byte, 8<<20), 0o644); err != nil {
				t.Errorf("write beside the capped layer: %v", err)
			}
			// Freed space can be used again; the image's files are intact.
			os.Remove(filepath.Join(root, "fill"))
			fd, _ := unix.Open(root, unix.O_RDONLY, 0)
			unix.Syncfs(fd)
			unix.Close(fd)
			if msg, err := ddIn(t, root, "/again", 8); err != nil {
				t.Errorf("dd 8 MiB after freeing: %v %s", err, msg)
			}
			if out, err := exec.Command("chroot", root, "/bin/cat", "/etc/passwd").Output(); err != nil || !bytes.Contains(out, []byte("root:")) {
				t.Errorf("image file through the capped layer: %v", err)
			}
			unix.Sync()
			u, err := s.Usage(key)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("first dd stopped at %d bytes; usage after 8 MiB: %+v", n, u)
			if u.Size < 7<<20 || u.Size > 16<<20 || u.Limit < 32<<20 {
				t.Errorf("usage %+v after writing 8 MiB", u)
			}
		})
	}
}

// TestStorageVolumes: a capped volume bind-mounted into a container root
// stops dd at its cap while the container layer takes more; an empty
// volume receives the image's files on first use, a used one keeps its
// own; a volume in use is not removed.
func TestStorageVolumes(t *testing.T) {
	needRoot(t)
	layer := busyboxLayer(t)
	base := t.TempDir()
	s, err := snapshot.Open(filepath.Join(base, "snapshots"), snapshot.WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	id := chainID("busybox")
	if _, err := s.Unpack(context.Background(), id, "", bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	key := "covest-vol"
	if err := s.Prepare(key, id); err != nil {
		t.Fatal(err)
	}
	defer s.RemoveActive(key)
	root := t.TempDir()
	if err := s.Mount(key, root); err != nil {
		t.Fatal(err)
	}
	defer s.Unmount(root)
	vs, err := volume.Open(filepath.Join(base, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vs.Create("covest-capped", volume.CreateOptions{Options: map[string]string{"size": "16m"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := vs.Remove(v.Name, true); err != nil {
			t.Error(err)
		}
		if devs, _ := quota.LoopDevices(vs.Dir()); len(devs) != 0 {
			t.Errorf("loop devices left: %+v", devs)
		}
	}()
	if err := vs.Acquire(v.Name, key); err != nil {
		t.Fatal(err)
	}
	// Copy-up: the volume is empty, the image has /etc.
	if copied, err := vs.CopyUp(context.Background(), v.Name, root, "/etc"); err != nil || !copied {
		t.Fatalf("copy up /etc: %v %v", copied, err)
	}
	dst := filepath.Join(root, "data")
	os.Mkdir(dst, 0o755)
	src, err := vs.Path(v.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dst, unix.MNT_DETACH)
	if out, err := exec.Command("chroot", root, "/bin/cat", "/data/passwd").Output(); err != nil || !bytes.Contains(out, []byte("root:")) {
		t.Errorf("copied-up passwd in the volume: %q %v", out, err)
	}
	msg, err := ddIn(t, root, "/data/fill", 64)
	if err == nil || !isQuotaMessage(msg) {
		t.Fatalf("dd of 64 MiB into a 16 MiB volume: %v %q", err, msg)
	}
	if n := fileSize(t, filepath.Join(dst, "fill")); n < 12<<20 || n > 17<<20 {
		t.Errorf("dd wrote %d bytes into the 16 MiB volume", n)
	}
	if msg, err := ddIn(t, root, "/layer-fill", 24); err != nil {
		t.Errorf("the container layer beside a full volume: %v %s", err, msg)
	}
	// A second use copies nothing over the volume's data.
	if copied, err := vs.CopyUp(context.Background(), v.Name, root, "/bin"); err != nil || copied {
		t.Errorf("copy up into a used volume: %v %v", copied, err)
	}
	if err := vs.Remove(v.Name, false); err == nil {
		t.Error("removed a volume in use")
	}
	us, err := vs.DiskUsage(context.Background())
	if err != nil || len(us) != 1 || us[0].RefCount != 1 || us[0].Size < 12<<20 {
		t.Errorf("volume disk usage %+v %v", us, err)
	}
}
