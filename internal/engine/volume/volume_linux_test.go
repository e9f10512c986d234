package volume

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"cove/internal/engine/quota"
)

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (ownership, xattrs, loop devices)")
	}
}

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateListInspectRemove(t *testing.T) {
	s := open(t)
	v, err := s.Create("data", CreateOptions{Labels: map[string]string{"app": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Driver != DriverLocal || v.Mountpoint != filepath.Join(s.Dir(), "data", "_data") || v.Labels["app"] != "web" || v.Anonymous {
		t.Errorf("created %+v", v)
	}
	if st, err := os.Stat(v.Mountpoint); err != nil || !st.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	// Same name again: the same volume; other options: a conflict.
	if v2, err := s.Create("data", CreateOptions{}); err != nil || !v2.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("create again: %+v %v", v2, err)
	}
	if _, err := s.Create("data", CreateOptions{Options: map[string]string{"size": "10m"}}); !errors.Is(err, ErrExists) {
		t.Errorf("create again with other options: %v", err)
	}
	if _, err := s.Create("lock", CreateOptions{}); err != nil {
		t.Errorf("a volume named lock: %v", err)
	}
	s.Remove("lock", false)
	anon, err := s.Create("", CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(anon.Name) != 64 || !anon.Anonymous {
		t.Errorf("anonymous volume %+v", anon)
	}
	if _, ok := anon.Labels[LabelAnonymous]; !ok {
		t.Errorf("anonymous volume lacks the %s label", LabelAnonymous)
	}
	vols, err := s.List()
	if err != nil || len(vols) != 2 {
		t.Fatalf("list: %d %v", len(vols), err)
	}
	got, err := s.Inspect("data")
	if err != nil || got.Name != "data" || got.Labels["app"] != "web" {
		t.Errorf("inspect %+v %v", got, err)
	}
	for _, bad := range []string{"a", "../x", "a/b", ".hidden", "-x"} {
		if _, err := s.Create(bad, CreateOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("create %q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.Create("x1", CreateOptions{Driver: "nfs"}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("driver nfs: %v", err)
	}
	if _, err := s.Create("x1", CreateOptions{Options: map[string]string{"device": "/dev/sda"}}); !errors.Is(err, ErrNotSupported) {
		t.Errorf("option device: %v", err)
	}
	if _, err := s.Create("x1", CreateOptions{Options: map[string]string{"size": "lots"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("option size=lots: %v", err)
	}
	// In use: rm refused unless forced.
	if err := s.Acquire("data", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire("data", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("data", false); !errors.Is(err, ErrInUse) {
		t.Errorf("remove in use: %v", err)
	}
	if v, _ := s.Inspect("data"); !slices.Equal(v.UsedBy, []string{"c1"}) {
		t.Errorf("users %v", v.UsedBy)
	}
	if err := s.Release("data", "c1"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(got.Mountpoint, "f"), []byte("x"), 0o644)
	if err := s.Remove("data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Inspect("data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after rm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volume directory left: %v", err)
	}
	if err := s.Remove("data", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("rm twice: %v", err)
	}
	// Force removes a volume in use.
	s.Acquire(anon.Name, "c2")
	if err := s.Remove(anon.Name, true); err != nil {
		t.Errorf("force rm: %v", err)
	}
}

func TestPrune(t *testing.T) {
	s := open(t)
	for _, n := range []string{"named", "used", "labelled"} {
		if _, err := s.Create(n, CreateOptions{Labels: map[string]string{"keep": map[bool]string{true: "no"}[n == "labelled"]}}); err != nil {
			t.Fatal(err)
		}
	}
	a1, _ := s.Create("", CreateOptions{})
	a2, _ := s.Create("", CreateOptions{})
	s.Acquire("used", "c1")
	s.Acquire(a2.Name, "c1")
	os.WriteFile(filepath.Join(a1.Mountpoint, "f"), make([]byte, 64<<10), 0o644)
	removed, reclaimed, err := s.Prune(PruneOptions{})
	if err != nil || !slices.Equal(removed, []string{a1.Name}) || reclaimed < 64<<10 {
		t.Errorf("prune: %v %d %v, want only %s", removed, reclaimed, err, a1.Name)
	}
	removed, _, err = s.Prune(PruneOptions{All: true, Labels: map[string]string{"keep": "no"}})
	if err != nil || !slices.Equal(removed, []string{"labelled"}) {
		t.Errorf("prune --all --filter label=keep=no: %v %v", removed, err)
	}
	removed, _, err = s.Prune(PruneOptions{All: true})
	if err != nil || !slices.Equal(removed, []string{"named"}) {
		t.Errorf("prune --all: %v %v", removed, err)
	}
	vols, _ := s.List()
	if len(vols) != 2 {
		t.Errorf("left %d volumes, want the 2 in use", len(vols))
	}
}

// TestConcurrentAcquire: users recorded by parallel processes (here
// goroutines through the same flock) are all kept.
func TestConcurrentAcquire(t *testing.T) {
	s := open(t)
	if _, err := s.Create("shared", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s2, err := Open(s.Dir())
			if err == nil {
				err = s2.Acquire("shared", "c"+string(rune('a'+i)))
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, _ := s.Inspect("shared"); len(v.UsedBy) != 20 {
		t.Errorf("%d users recorded, want 20", len(v.UsedBy))
	}
}

func TestCopyUp(t *testing.T) {
	needRoot(t)
	s := open(t)
	root := t.TempDir()
	src := filepath.Join(root, "var", "lib", "app")
	if err := os.MkdirAll(src, 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chown(src, 1000, 1000)
	os.WriteFile(filepath.Join(src, "conf"), []byte("image\n"), 0o640)
	os.Chown(filepath.Join(src, "conf"), 33, 44)
	if err := unix.Setxattr(filepath.Join(src, "conf"), "user.tag", []byte("v1"), 0); err != nil {
		t.Logf("user xattr: %v", err)
	}
	os.Link(filepath.Join(src, "conf"), filepath.Join(src, "conf.link"))
	os.Symlink("/var/lib/app", filepath.Join(root, "link")) // resolved inside root
	ctx := context.Background()

	v, _ := s.Create("empty", CreateOptions{})
	copied, err := s.CopyUp(ctx, "empty", root, "/link")
	if err != nil || !copied {
		t.Fatalf("copy up into an empty volume: %v %v", copied, err)
	}
	var st unix.Stat_t
	unix.Stat(filepath.Join(v.Mountpoint, "conf"), &st)
	if b, _ := os.ReadFile(filepath.Join(v.Mountpoint, "conf")); string(b) != "image\n" || st.Uid != 33 || st.Gid != 44 || st.Mode&0o777 != 0o640 || st.Nlink != 2 {
		t.Errorf("copied file %q uid %d gid %d mode %o nlink %d", b, st.Uid, st.Gid, st.Mode&0o777, st.Nlink)
	}
	if val := make([]byte, 8); true {
		if n, err := unix.Getxattr(filepath.Join(v.Mountpoint, "conf"), "user.tag", val); err == nil && string(val[:n]) != "v1" {
			t.Errorf("xattr %q", val[:n])
		}
	}
	unix.Stat(v.Mountpoint, &st)
	if st.Uid != 1000 || st.Mode&0o777 != 0o750 {
		t.Errorf("volume root uid %d mode %o, want the image directory's 1000 0750", st.Uid, st.Mode&0o777)
	}
	// Not empty any more: a second use copies nothing.
	os.WriteFile(filepath.Join(v.Mountpoint, "conf"), []byte("mine\n"), 0o640)
	if copied, err := s.CopyUp(ctx, "empty", root, "/var/lib/app"); err != nil || copied {
		t.Errorf("copy up into a used volume: %v %v", copied, err)
	}
	if b, _ := os.ReadFile(filepath.Join(v.Mountpoint, "conf")); string(b) != "mine\n" {
		t.Errorf("volume data overwritten: %q", b)
	}
	// A volume with data keeps it; a missing image path copies nothing.
	s.Create("full", CreateOptions{})
	full, _ := s.Inspect("full")
	os.WriteFile(filepath.Join(full.Mountpoint, "own"), []byte("1"), 0o644)
	if copied, err := s.CopyUp(ctx, "full", root, "/var/lib/app"); err != nil || copied {
		t.Errorf("copy up into a non-empty volume: %v %v", copied, err)
	}
	if _, err := os.Stat(filepath.Join(full.Mountpoint, "conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("image content copied into a non-empty volume")
	}
	if copied, err := s.CopyUp(ctx, "full", root, "/nope"); err != nil || copied {
		t.Errorf("missing source: %v %v", copied, err)
	}
	// "../.." cannot leave the image root.
	s.Create("esc", CreateOptions{})
	if copied, err := s.CopyUp(ctx, "esc", root, "/../../../etc"); err != nil || copied {
		t.Errorf("copy up of /../../../etc: %v %v (the image has no /etc)", copied, err)
	}
}

func TestSizeCappedVolume(t *testing.T) {
	needRoot(t)
	s := open(t)
	if quota.Check(quota.Loop, s.Dir()) != nil {
		t.Skip("no loop devices or e2fsprogs")
	}
	v, err := s.Create("capped", CreateOptions{Options: map[string]string{"size": "20m", "quota": quota.Loop}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Quota == nil || v.Quota.Driver != quota.Loop || v.Quota.Size != 20<<20 {
		t.Errorf("quota %+v", v.Quota)
	}
	if empty, _ := isEmpty(v.Mountpoint); !empty {
		t.Error("a new capped volume is not empty (lost+found?)")
	}
	f, err := os.Create(filepath.Join(v.Mountpoint, "big"))
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{1}, 1<<20)
	var n int64
	for ; n < 100<<20; n += 1 << 20 {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if !errors.Is(err, unix.ENOSPC) && !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("wrote %d into a 20 MiB volume: %v", n, err)
	}
	us, err := s.DiskUsage(context.Background())
	if err != nil || len(us) != 1 || us[0].Size < n*9/10 || us[0].Limit < 20<<20 {
		t.Errorf("disk usage %+v %v after %d bytes", us, err, n)
	}
	if err := s.Remove("capped", false); err != nil {
		t.Fatal(err)
	}
	if devs, _ := quota.LoopDevices(s.Dir()); len(devs) != 0 {
		t.Errorf("loop devices left: %+v", devs)
	}
}

func TestOpenBindSource(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenBindSource("rel/path", false); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative: %v", err)
	}
	if _, err := OpenBindSource(filepath.Join(dir, "missing"), false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing without create: %v", err)
	}
	f, err := OpenBindSource(filepath.Join(dir, "a", "b"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st, want unix.Stat_t
	unix.Fstat(int(f.Fd()), &st)
	if err := unix.Stat(filepath.Join(dir, "a", "b"), &want); err != nil || st.Ino != want.Ino {
		t.Errorf("handle is not the created directory: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if g, err := OpenBindSource(filepath.Join(dir, "file"), true); err != nil {
		t.Errorf("existing file with create: %v", err)
	} else {
		g.Close()
	}
}

// TestRepairCrashedRemove: a capped volume whose removal crashed after
// the rename (its loop image still mounted) is unmounted, detached and
// deleted by the next Open.
func TestRepairCrashedRemove(t *testing.T) {
	needRoot(t)
	s := open(t)
	if quota.Check(quota.Loop, s.Dir()) != nil {
		t.Skip("no loop devices or e2fsprogs")
	}
	if _, err := s.Create("keep", CreateOptions{Options: map[string]string{"size": "8m", "quota": quota.Loop}}); err != nil {
		t.Fatal(err)
	}
	defer s.Remove("keep", true)
	if _, err := s.Create("lost", CreateOptions{Options: map[string]string{"size": "8m", "quota": quota.Loop}}); err != nil {
		t.Fatal(err)
	}
	devs, _ := quota.LoopDevices(s.Dir())
	t.Cleanup(func() {
		for _, l := range devs {
			quota.DetachLoop(l.Dev, l.Backing)
		}
	})
	crashed := filepath.Join(s.Dir(), ".tmp-rm-crashed")
	os.Mkdir(crashed, 0o700)
	if err := os.Rename(filepath.Join(s.Dir(), "lost"), filepath.Join(crashed, "v")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(crashed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("crashed removal left: %v", err)
	}
	left, _ := quota.LoopDevices(s.Dir())
	if len(left) != 1 || left[0].Backing != filepath.Join(s.Dir(), "keep", "_data.img") {
		t.Errorf("loop devices after repair: %+v, want only keep's", left)
	}
	if p, err := s.Path("keep"); err != nil || p == "" {
		t.Errorf("kept volume: %v", err)
	}
}
