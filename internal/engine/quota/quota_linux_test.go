package quota

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"10G", 10 << 30}, {"10g", 10 << 30}, {"10GB", 10 << 30}, {"10GiB", 10 << 30},
		{"512m", 512 << 20}, {"1.5k", 1536}, {"4096", 4096}, {"20b", 20}, {"1T", 1 << 40},
	} {
		if got, err := ParseSize(c.in); err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "0", "ten", "1Q", "1e30T"} {
		if _, err := ParseSize(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSize(%q): %v, want ErrInvalid", bad, err)
		}
	}
	if s := HumanSize(3 << 29); s != "1.5GiB" {
		t.Errorf("HumanSize: %s", s)
	}
}

func TestAvailable(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	a := Available(dir)
	if !slices.Contains(a, Loop) {
		t.Errorf("Available(%s) = %v, want loop", dir, a)
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC && slices.Contains(a, Btrfs) {
		t.Errorf("Available(%s) = %v: btrfs on a non-btrfs filesystem", dir, a)
	}
	if err := Check(Btrfs, dir); st.Type != unix.BTRFS_SUPER_MAGIC && !errors.Is(err, ErrNotSupported) {
		t.Errorf("Check(btrfs) on non-btrfs: %v", err)
	}
	if _, err := New("zfs"); !errors.Is(err, ErrInvalid) {
		t.Errorf("New(zfs): %v", err)
	}
	if !slices.Contains(Available(btrfsMount(t, 256<<20)), Btrfs) {
		t.Error("btrfs not available on btrfs")
	}
}

// testDriver checks a driver's whole life on directories under base:
// writes stop at the cap, usage is reported, growth lets more in,
// shrinking below usage is refused, removal leaves nothing.
func testDriver(t *testing.T, d Driver, base string) {
	dir := filepath.Join(base, "capped")
	const size = 24 << 20
	if err := d.Create(dir, size); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Remove(dir) })
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("new capped dir: %v %v, want empty", ents, err)
	}
	n, err := fill(filepath.Join(dir, "big"), 100<<20)
	if !isQuotaErr(err) {
		t.Fatalf("wrote %d bytes past a %d cap: %v, want EDQUOT or ENOSPC", n, size, err)
	}
	if n < size*8/10 || n > size*11/10 {
		t.Errorf("wrote %d bytes before the cap of %d", n, size)
	}
	// Nothing outside is affected.
	if err := os.WriteFile(filepath.Join(base, "outside"), make([]byte, 1<<20), 0o644); err != nil {
		t.Errorf("write outside the capped dir: %v", err)
	}
	syncDir(t, dir)
	u, err := d.Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: wrote %d, usage %+v", d.Name(), n, u)
	if u.Used < n*9/10 || u.Limit < size || u.Limit > size*11/10 {
		t.Errorf("usage %+v after writing %d with cap %d", u, n, size)
	}
	if err := d.Resize(dir, 4<<20); !errors.Is(err, ErrBelowUsage) {
		t.Errorf("shrink below usage: %v, want ErrBelowUsage", err)
	}
	if err := d.Resize(dir, 48<<20); err != nil {
		t.Fatalf("grow: %v", err)
	}
	m, err := fill(filepath.Join(dir, "more"), 16<<20)
	if err != nil {
		t.Errorf("write after growing: %d bytes, %v", m, err)
	}
	if u2, err := d.Usage(dir); err != nil || u2.Limit < 48<<20 {
		t.Errorf("usage after grow: %+v %v", u2, err)
	}
	if err := d.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
}

func syncDir(t *testing.T, dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Syncfs(fd)
	unix.Close(fd)
}

func TestLoopDriver(t *testing.T) {
	needRoot(t)
	if err := loopSupported(); err != nil {
		t.Skip(err)
	}
	base := t.TempDir()
	testDriver(t, loopDriver{}, base)
	if devs, _ := LoopDevices(base); len(devs) != 0 {
		t.Errorf("loop devices left attached: %v", devs)
	}
	// Shrinking a loop image, even above usage, is refused clearly.
	dir := filepath.Join(base, "s")
	if err := (loopDriver{}).Create(dir, 32<<20); err != nil {
		t.Fatal(err)
	}
	defer loopDriver{}.Remove(dir)
	if err := (loopDriver{}).Resize(dir, 16<<20); !errors.Is(err, ErrNotSupported) {
		t.Errorf("shrink a loop image: %v, want ErrNotSupported", err)
	}
	// Growing while a file is open inside: live with CAP_SYS_RESOURCE
	// (online resize2fs), refused clearly without it.
	busy, err := os.Create(filepath.Join(dir, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	err = loopDriver{}.Resize(dir, 40<<20)
	busy.Close()
	if hasCapSysResource() && err != nil {
		t.Errorf("live grow: %v", err)
	}
	if !hasCapSysResource() && !errors.Is(err, ErrNotSupported) {
		t.Errorf("live grow without CAP_SYS_RESOURCE: %v, want ErrNotSupported", err)
	}
	// An overlay whose upper dir is on the image keeps the filesystem
	// alive after its own mount is gone: growing offline must see that and
	// refuse, leaving the overlay working on the same filesystem.
	if !hasCapSysResource() {
		lower := t.TempDir()
		ovl := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "u"), 0o755)
		os.MkdirAll(filepath.Join(dir, "w"), 0o755)
		opts := "lowerdir=" + lower + ",upperdir=" + filepath.Join(dir, "u") + ",workdir=" + filepath.Join(dir, "w")
		if err := unix.Mount("overlay", ovl, "overlay", 0, opts); err != nil {
			t.Fatal(err)
		}
		err := loopDriver{}.Resize(dir, 48<<20)
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("grow under a live overlay: %v, want ErrNotSupported", err)
		}
		if dev, _ := loopMounted(dir); dev == "" {
			t.Errorf("%s not mounted again after the refused grow", dir)
		}
		if err := os.WriteFile(filepath.Join(ovl, "via-overlay"), []byte("y"), 0o644); err != nil {
			t.Errorf("write through the overlay: %v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "u", "via-overlay")); err != nil || string(b) != "y" {
			t.Errorf("overlay write not on the image's filesystem: %q %v", b, err)
		}
		if err := unix.Unmount(ovl, 0); err != nil {
			t.Fatal(err)
		}
	}
	// After Deactivate (as after a reboot) Activate brings the data back.
	os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644)
	if err := (loopDriver{}).Deactivate(dir); err != nil {
		t.Fatal(err)
	}
	if devs, _ := LoopDevices(base); len(devs) != 0 {
		t.Errorf("unmount left loop devices attached: %v", devs)
	}
	if err := (loopDriver{}).Activate(dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "keep")); err != nil || string(b) != "x" {
		t.Errorf("after re-activation: %q %v", b, err)
	}
}

func TestBtrfsDriver(t *testing.T) {
	testDriver(t, btrfsDriver{}, btrfsMount(t, 512<<20))
}

func TestProjectDriverUnsupportedHere(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := projectSupported(dir); err == nil {
		testDriver(t, projectDriver{}, dir)
		return
	} else if !errors.Is(err, ErrNotSupported) {
		t.Errorf("projectSupported: %v, want ErrNotSupported", err)
	}
	t.Skip("project quotas not enabled on the test filesystem (this kernel has no CONFIG_QFMT_V2 / XFS_QUOTA)")
}

func TestDetachOrphanLoops(t *testing.T) {
	needRoot(t)
	if err := loopSupported(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "orphan.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(dir, "kept.img")
	if err := os.WriteFile(kept, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// Attached without autoclear and closed: stays attached, as after a
	// crash.
	var devs []string
	for _, p := range []string{img, kept} {
		dev, f, err := AttachLoop(p, false)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		devs = append(devs, dev)
		t.Cleanup(func() { DetachLoop(dev, p) })
	}
	got, err := DetachOrphanLoops(dir, func(p string) bool { return p == kept })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, devs[:1]) {
		t.Errorf("detached %v, want %v", got, devs[:1])
	}
	left, _ := LoopDevices(dir)
	if len(left) != 1 || left[0].Dev != devs[1] || left[0].Backing != kept {
		t.Errorf("left attached: %+v, want only %s", left, devs[1])
	}
	// Deleting the kept image makes it an orphan too.
	os.Remove(kept)
	if got, err := DetachOrphanLoops(dir, func(p string) bool { return p == kept }); err != nil || !slices.Equal(got, devs[1:]) {
		t.Errorf("deleted image: detached %v %v, want %v", got, err, devs[1:])
	}
}
