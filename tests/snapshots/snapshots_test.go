// Package snapshots holds root-only end-to-end tests of the snapshot store:
// a real busybox root filesystem, tarred by GNU tar, unpacked as image
// layers by every driver, mounted, and run with chroot.
package snapshots

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"cove/internal/engine/snapshot"
)

func chainID(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

// baseLayer builds the busybox rootfs of tests/fixtures and tars it.
func baseLayer(t *testing.T) []byte {
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

// topLayer deletes ls, hides /root's content, links busybox again (a
// hard link to a file in the layer below) and adds a setuid file.
func topLayer(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Typeflag == tar.TypeLink || h.Typeflag == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "bin/.wh.ls", Typeflag: tar.TypeReg, Mode: 0o644}, "")
	add(&tar.Header{Name: "bin/busybox2", Typeflag: tar.TypeLink, Linkname: "bin/busybox"}, "")
	add(&tar.Header{Name: "root/", Typeflag: tar.TypeDir, Mode: 0o700}, "")
	add(&tar.Header{Name: "root/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644}, "")
	add(&tar.Header{Name: "root/new", Typeflag: tar.TypeReg, Mode: 0o644}, "fresh\n")
	add(&tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644}, "welcome to cove\n")
	add(&tar.Header{Name: "bin/suid", Typeflag: tar.TypeReg, Mode: 0o4755}, "#!/bin/sh\nid -u\n")
	tw.Close()
	return buf.Bytes()
}

// btrfsMount loop-mounts a fresh btrfs and returns its mount point.
func btrfsMount(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("mkfs.btrfs not installed (Debian btrfs-progs)")
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "img"), filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, c := range [][]string{{"truncate", "-s", "1G", img}, {"mkfs.btrfs", "-q", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func TestSnapshotBusyboxImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base, top := baseLayer(t), topLayer(t)
	for _, drv := range []string{snapshot.DriverOverlay, snapshot.DriverBtrfs, snapshot.DriverCopy} {
		t.Run(drv, func(t *testing.T) {
			dir := t.TempDir()
			if drv == snapshot.DriverBtrfs {
				dir = btrfsMount(t)
			}
			s, err := snapshot.Open(filepath.Join(dir, "store"), snapshot.WithDriver(drv))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := s.Unpack(ctx, chainID("base"), "", bytes.NewReader(base)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Unpack(ctx, chainID("top"), chainID("base"), bytes.NewReader(top)); err != nil {
				t.Fatal(err)
			}
			if err := s.Prepare("e2e-c", chainID("top"), snapshot.WithLabels(map[string]string{"container": "e2e-c"})); err != nil {
				t.Fatal(err)
			}
			m := t.TempDir()
			if err := s.Mount("e2e-c", m); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := s.Unmount(m); err != nil {
					t.Error(err)
				}
				if err := s.RemoveActive("e2e-c"); err != nil {
					t.Error(err)
				}
			}()
			script := `test ! -e /bin/ls && echo ls-gone
cat /etc/motd /root/new
ls_=$(/bin/busybox ls -a /root); echo "root:" $ls_
/bin/busybox2 echo linked
/bin/busybox stat -c %a /bin/suid
echo written > /tmp/out
grep -c nobody /etc/passwd`
			out, err := exec.Command("chroot", m, "/bin/sh", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("chroot: %v\n%s", err, out)
			}
			want := "ls-gone\nwelcome to cove\nfresh\nroot: . .. new\nlinked\n4755\n1\n"
			if string(out) != want {
				t.Errorf("inside the container:\n%s\nwant:\n%s", out, want)
			}
			u, err := s.Usage("e2e-c")
			if err != nil || u.Inodes == 0 {
				t.Errorf("usage %+v %v", u, err)
			}
			if a, err := s.Active("e2e-c"); err != nil || a.Labels["container"] != "e2e-c" {
				t.Errorf("active info %+v %v", a, err)
			}
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(m, "tmp/out"), &st); err != nil {
				t.Error(err)
			}
		})
	}
}
