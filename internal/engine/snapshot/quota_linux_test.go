package snapshot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
)

// fillFile appends 1 MiB blocks to p until a write fails or limit bytes
// are written.
func fillFile(p string, limit int64) (int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	buf := bytes.Repeat([]byte{0x5a}, 1<<20)
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

func syncfs(t *testing.T, p string) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Syncfs(fd)
	unix.Close(fd)
}

func needLoop(t *testing.T) {
	if quota.Check(quota.Loop, t.TempDir()) != nil {
		t.Skip("no loop devices or mkfs.ext4/resize2fs/e2fsck")
	}
}

// TestSizeLimit caps a container layer per snapshot driver and quota
// driver, writes through the mounted layer (an overlay whose upper is the
// capped filesystem, or a bind of a capped subvolume) until the cap,
// checks usage, resizing and cleanup.
func TestSizeLimit(t *testing.T) {
	needRoot(t)
	needLoop(t)
	for _, c := range []struct{ name, snap, quota, fs string }{
		{"overlay-loop", DriverOverlay, quota.Loop, "ext4"},
		{"overlay-btrfs", DriverOverlay, quota.Btrfs, "btrfs"},
		{"overlay-on-btrfs-loop", DriverOverlay, quota.Loop, "btrfs"},
		{"btrfs-btrfs", DriverBtrfs, quota.Btrfs, "btrfs"},
		{"copy-loop", DriverCopy, quota.Loop, "ext4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.fs == "btrfs" {
				dir = btrfsDir(t, "512M")
			}
			s, err := Open(filepath.Join(dir, "store"), WithDriver(c.snap), WithoutSync())
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"ext4": quota.Loop, "btrfs": quota.Btrfs}[c.fs]; s.QuotaDriver() != want {
				t.Errorf("QuotaDriver() = %q, want %q", s.QuotaDriver(), want)
			}
			unpack(t, s, "base", "", d("etc"), f("etc/hostname", "base\n"))
			opts := []PrepareOption{WithSizeLimit(24 << 20)}
			if c.quota != s.QuotaDriver() {
				opts = append(opts, WithQuotaDriver(c.quota))
			}
			target := mountActive(t, s, "c1", "base", opts...)
			a, err := s.Active("c1")
			if err != nil || a.Quota == nil || a.Quota.Driver != c.quota || a.Quota.Size != 24<<20 {
				t.Fatalf("active info %+v %v", a.Quota, err)
			}
			if b, err := os.ReadFile(filepath.Join(target, "etc/hostname")); err != nil || string(b) != "base\n" {
				t.Errorf("image file through the layer: %q %v", b, err)
			}
			n, err := fillFile(filepath.Join(target, "big"), 100<<20)
			if !errors.Is(err, unix.EDQUOT) && !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("wrote %d bytes into a 24 MiB layer: %v, want EDQUOT or ENOSPC", n, err)
			}
			if n < 20<<20 || n > 27<<20 {
				t.Errorf("wrote %d bytes before the 24 MiB cap", n)
			}
			if err := os.WriteFile(filepath.Join(dir, "outside"), make([]byte, 4<<20), 0o644); err != nil {
				t.Errorf("write beside the store: %v", err)
			}
			syncfs(t, target)
			u, err := s.Usage("c1")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %d; usage %+v", n, u)
			if u.Size < n*9/10 || u.Limit < 24<<20 || u.Limit > 27<<20 {
				t.Errorf("usage %+v after writing %d", u, n)
			}
			if du, err := s.DiskUsage(); err != nil || du.Snapshots != 1 || du.Active["c1"].Limit != u.Limit {
				t.Errorf("disk usage %+v %v", du, err)
			}
			if err := s.Resize("c1", 1<<20); !errors.Is(err, ErrBelowUsage) {
				t.Errorf("resize below usage: %v, want ErrBelowUsage", err)
			}
			if c.quota == quota.Loop {
				// Online ext4 growth needs CAP_SYS_RESOURCE; grow the
				// stopped layer, then mount it again.
				if err := s.Unmount(target); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Resize("c1", 48<<20); err != nil {
				t.Fatalf("grow: %v", err)
			}
			if c.quota == quota.Loop {
				if err := s.Mount("c1", target); err != nil {
					t.Fatal(err)
				}
			}
			if m, err := fillFile(filepath.Join(target, "more"), 16<<20); err != nil {
				t.Errorf("write after growing: %d, %v", m, err)
			}
			if a, _ := s.Active("c1"); a.Quota == nil || a.Quota.Size != 48<<20 {
				t.Errorf("recorded quota after resize: %+v", a.Quota)
			}
			if err := s.Unmount(target); err != nil {
				t.Fatal(err)
			}
			if err := s.RemoveActive("c1"); err != nil {
				t.Fatal(err)
			}
			if devs, _ := quota.LoopDevices(s.Dir()); len(devs) != 0 {
				t.Errorf("loop devices left attached: %+v", devs)
			}
		})
	}
}

// TestRepairDetachesOrphanLoop: a layer whose removal crashed after its
// directory was moved into tmp/ still has its image mounted and attached;
// Repair unmounts and detaches it and removes the directory.
func TestRepairDetachesOrphanLoop(t *testing.T) {
	needRoot(t)
	needLoop(t)
	s, err := Open(filepath.Join(t.TempDir(), "store"), WithDriver(DriverOverlay), WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare("keep", "", WithSizeLimit(16<<20), WithQuotaDriver(quota.Loop)); err != nil {
		t.Fatal(err)
	}
	defer s.RemoveActive("keep")
	if err := s.Prepare("lost", "", WithSizeLimit(16<<20), WithQuotaDriver(quota.Loop)); err != nil {
		t.Fatal(err)
	}
	devs, _ := quota.LoopDevices(s.Dir())
	if len(devs) != 2 {
		t.Fatalf("loop devices after two prepares: %+v", devs)
	}
	t.Cleanup(func() {
		for _, l := range devs {
			quota.DetachLoop(l.Dev, l.Backing)
		}
	})
	crashed := filepath.Join(s.Dir(), "tmp", "rm-lost-crashed")
	if err := os.Mkdir(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(s.activeDir("lost"), filepath.Join(crashed, "x")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Repair()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RemovedTmp) != 1 || !strings.HasPrefix(rep.RemovedTmp[0], "rm-lost") {
		t.Errorf("removed tmp %v", rep.RemovedTmp)
	}
	left, _ := quota.LoopDevices(s.Dir())
	if len(left) != 1 || !strings.HasSuffix(left[0].Backing, "/active/keep/q.img") {
		t.Errorf("loop devices after repair: %+v, want only keep's", left)
	}
	if u, err := s.Usage("keep"); err != nil || u.Limit < 16<<20 {
		t.Errorf("kept layer: %+v %v", u, err)
	}
	// An image attached by hand for a layer that is gone: detached too.
	img := filepath.Join(s.Dir(), "active", "ghost.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	dev, fh, err := quota.AttachLoop(img, false)
	if err != nil {
		t.Fatal(err)
	}
	fh.Close()
	defer quota.DetachLoop(dev, img)
	if rep, err = s.Repair(); err != nil || len(rep.DetachedLoops) != 1 || rep.DetachedLoops[0] != dev {
		t.Errorf("repair of a stray loop: %+v %v, want %s detached", rep.DetachedLoops, err, dev)
	}
	os.Remove(img)
}

// TestConcurrentLoopPrepare: parallel prepares each get a loop device of
// their own (LOOP_CTL_GET_FREE races are retried) and removal detaches
// them all.
func TestConcurrentLoopPrepare(t *testing.T) {
	needRoot(t)
	needLoop(t)
	dir := filepath.Join(t.TempDir(), "store")
	if _, err := Open(dir, WithDriver(DriverOverlay), WithoutSync()); err != nil {
		t.Fatal(err)
	}
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s, err := Open(dir) // a store per goroutine, as separate processes
			if err == nil {
				err = s.Prepare("c"+string(rune('0'+i)), "", WithSizeLimit(16<<20), WithQuotaDriver(quota.Loop))
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	devs, _ := quota.LoopDevices(s.Dir())
	seen := map[string]bool{}
	for _, l := range devs {
		seen[l.Dev] = true
	}
	if len(devs) != n || len(seen) != n {
		t.Errorf("%d layers have %d loop devices (%d distinct): %+v", n, len(devs), len(seen), devs)
	}
	for i := range n {
		if err := s.RemoveActive("c" + string(rune('0'+i))); err != nil {
			t.Error(err)
		}
	}
	if devs, _ := quota.LoopDevices(s.Dir()); len(devs) != 0 {
		t.Errorf("left attached: %+v", devs)
	}
}

// TestBtrfsResizeAddsLimit: a btrfs layer prepared without a limit gets
// one from Resize; overlay layers without one refuse.
func TestBtrfsResizeAddsLimit(t *testing.T) {
	needRoot(t)
	s, err := Open(filepath.Join(btrfsDir(t, "512M"), "store"), WithDriver(DriverBtrfs), WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	target := mountActive(t, s, "free", "")
	if err := s.Resize("free", 16<<20); err != nil {
		t.Fatal(err)
	}
	if n, err := fillFile(filepath.Join(target, "big"), 64<<20); !errors.Is(err, unix.EDQUOT) || n > 17<<20 {
		t.Errorf("after Resize to 16 MiB wrote %d: %v, want EDQUOT", n, err)
	}
	if a, _ := s.Active("free"); a.Quota == nil || a.Quota.Driver != quota.Btrfs || a.Quota.Size != 16<<20 {
		t.Errorf("recorded quota %+v", a.Quota)
	}
	o, err := Open(filepath.Join(t.TempDir(), "o"), WithDriver(DriverOverlay), WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Prepare("x", ""); err != nil {
		t.Fatal(err)
	}
	defer o.RemoveActive("x")
	if err := o.Resize("x", 1<<20); !errors.Is(err, ErrNotSupported) {
		t.Errorf("resize an overlay layer without a limit: %v, want ErrNotSupported", err)
	}
}
