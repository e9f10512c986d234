package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"cove/internal/engine/archive"
)

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestWhiteoutsThreeLayers(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		unpack(t, s, "l1", "",
			d("a/"), f("a/file1", "one"), f("a/file2", "two"),
			d("d/"), f("d/x", "x"), f("d/sub/y", "y"), f("keep", "k"), f("e/f", "f"),
			sym("evil", "/etc"), f("evil/cove-snapshot-test", "inside"))
		unpack(t, s, "l2", "l1",
			wh("a", "file1"), d("d/"), opq("d"), f("d/new", "n"), wh("", "e"), f("f3", "3"))
		unpack(t, s, "l3", "l2", f("a/file1", "again"), f("e/g", "g"))

		m := mountActive(t, s, "wh-c", "l3")
		for p, want := range map[string]string{
			"a/file1": "again", "a/file2": "two", "d/new": "n", "keep": "k", "f3": "3", "e/g": "g",
			"d/x": "", "d/sub": "", "e/f": "",
		} {
			b, err := os.ReadFile(filepath.Join(m, p))
			if want == "" {
				if err == nil || !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s visible through the mount (%v), want deleted", p, err)
				}
				continue
			}
			if err != nil || string(b) != want {
				t.Errorf("%s = %q %v, want %q", p, b, err, want)
			}
		}
		if l, _ := os.Readlink(filepath.Join(m, "evil")); l != "/etc" || exists("/etc/cove-snapshot-test") {
			t.Errorf("symlink evil -> %q; host /etc written: %v", l, exists("/etc/cove-snapshot-test"))
		}
		if b, _ := os.ReadFile(filepath.Join(m, "etc/cove-snapshot-test")); string(b) != "inside" {
			t.Errorf("file written through a symlink to /etc: %q, want it in the image's /etc", b)
		}
		ents, _ := os.ReadDir(filepath.Join(m, "d"))
		if len(ents) != 1 {
			t.Errorf("opaque d lists %v, want only new", ents)
		}

		v := mountActive(t, s, "wh-view", "l2", WithReadOnly())
		if exists(filepath.Join(v, "a/file1")) || !exists(filepath.Join(v, "a/file2")) {
			t.Error("view of l2: a/file1 must be gone, a/file2 kept")
		}
		if err := os.WriteFile(filepath.Join(v, "w"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("write into a read-only view: %v, want EROFS", err)
		}

		// The container writes: its layer changes, the image does not.
		if err := os.WriteFile(filepath.Join(m, "keep"), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m, "big"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		v1 := mountActive(t, s, "wh-v1", "l1", WithReadOnly())
		if b, _ := os.ReadFile(filepath.Join(v1, "keep")); string(b) != "k" {
			t.Errorf("image layer changed by a container write: %q", b)
		}
		u, err := s.Usage("wh-c")
		if err != nil || u.Size < 1<<20 || u.Inodes < 2 {
			t.Errorf("usage %+v %v, want >= 1 MiB and 2 inodes", u, err)
		}
	})
}

func TestHardlinkAcrossLayers(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		unpack(t, s, "h1", "", f("bin/busybox", "BUSYBOX"), f("bin/old", "old"), f("lib/x", "x"))
		unpack(t, s, "h2", "h1", ln("bin/sh", "bin/busybox"), ln("usr/bin/ls", "/bin/busybox"), ln("lib/y", "lib/x"), f("lib/x2", "2"))
		m := mountActive(t, s, "hl-c", "h2")
		var a, b, c unix.Stat_t
		for p, st := range map[string]*unix.Stat_t{"bin/busybox": &a, "bin/sh": &b, "usr/bin/ls": &c} {
			if err := unix.Lstat(filepath.Join(m, p), st); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(m, p)); string(got) != "BUSYBOX" {
				t.Errorf("%s = %q", p, got)
			}
		}
		if a.Ino != b.Ino || b.Ino != c.Ino || a.Nlink != 3 {
			t.Errorf("links not one inode: ino %d %d %d nlink %d", a.Ino, b.Ino, c.Ino, a.Nlink)
		}
		if s.Driver() == DriverOverlay {
			// Copy-up: the target now lives in h2's own layer too.
			h2 := filepath.Join(s.snapDir(chainID("h2")[7:]), "fs")
			if !exists(filepath.Join(h2, "bin/busybox")) || exists(filepath.Join(h2, "bin/old")) {
				t.Error("overlay layer h2: busybox not copied up, or more copied than needed")
			}
		}
		// A link to a file the same layer whited out is refused.
		_, err := s.Unpack(context.Background(), chainID("h3"), chainID("h2"), layer(t, wh("bin", "old"), ln("bin/o2", "bin/old")))
		if !errors.Is(err, archive.ErrLinkTarget) || !strings.Contains(err.Error(), chainID("h3")) {
			t.Errorf("link to a whited-out file: %v, want ErrLinkTarget naming the layer", err)
		}
		if s.Has(chainID("h3")) || len(tmpEntries(t, s)) != 0 {
			t.Error("failed unpack left a snapshot or tmp entry")
		}
	})
}

// failReader fails the test if Unpack reads it.
type failReader struct{ t *testing.T }

func (r failReader) Read([]byte) (int, error) {
	r.t.Error("idempotent Unpack read the layer")
	return 0, io.EOF
}

func TestUnpackIdempotentAndRemove(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		unpack(t, s, "r1", "", f("a", "12345"))
		n, err := s.Unpack(context.Background(), chainID("r1"), "", failReader{t})
		if err != nil || n != 5 {
			t.Errorf("second unpack: %d %v, want 5 nil", n, err)
		}
		unpack(t, s, "r2", "r1", f("b", "b"))
		if _, err := s.Unpack(context.Background(), chainID("r3"), chainID("nope"), layer(t)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unpack on a missing parent: %v", err)
		}
		if err := s.Remove(chainID("r1")); !errors.Is(err, ErrInUse) {
			t.Errorf("remove a parent: %v, want ErrInUse", err)
		}
		if err := s.Prepare("rm-c", chainID("r2")); err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare("rm-c", chainID("r2")); !errors.Is(err, ErrExists) {
			t.Errorf("prepare twice: %v", err)
		}
		if err := s.Remove(chainID("r2")); !errors.Is(err, ErrInUse) {
			t.Errorf("remove an image layer a container uses: %v, want ErrInUse", err)
		}
		target := t.TempDir()
		if err := s.Mount("rm-c", target); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveActive("rm-c"); !errors.Is(err, ErrInUse) {
			t.Errorf("remove a mounted active layer: %v, want ErrInUse", err)
		}
		if err := s.Unmount(target); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveActive("rm-c"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"r2", "r1"} {
			if err := s.Remove(chainID(id)); err != nil {
				t.Fatal(err)
			}
		}
		if l, err := s.List(); err != nil || len(l) != 0 {
			t.Errorf("list after removing all: %v %v", l, err)
		}
		if e := tmpEntries(t, s); len(e) != 0 {
			t.Errorf("tmp not empty: %v", e)
		}
	})
}

func TestStoreErrors(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "s")
	s, err := Open(dir, WithDriver(DriverCopy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, WithDriver(DriverOverlay)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("reopen with another driver: %v", err)
	}
	if _, err := s.Unpack(context.Background(), "sha256:xyz", "", layer(t)); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad chain id: %v", err)
	}
	if err := s.Prepare("../x", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad key: %v", err)
	}
	if err := s.Prepare("q", "", WithSizeLimit(1<<20), WithQuotaDriver("zfs")); !errors.Is(err, ErrNotSupported) {
		t.Errorf("size limit with an unknown quota driver: %v", err)
	}
	if err := s.Prepare("q", "", WithSizeLimit(-1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative size limit: %v", err)
	}
	_, err = s.Unpack(context.Background(), chainID("bad"), "", layer(t, f("ok", "1"), f("../../x", "2")))
	if !errors.Is(err, archive.ErrUnsafePath) || s.Has(chainID("bad")) || len(tmpEntries(t, s)) != 0 {
		t.Errorf("malicious layer: %v; committed %v; tmp %v", err, s.Has(chainID("bad")), tmpEntries(t, s))
	}
	// An active layer whose image vanished is reported as an orphan.
	unpack(t, s, "o1", "", f("a", "a"))
	if err := s.Prepare("orph", chainID("o1")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.snapDir(chainID("o1")[7:])); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Repair()
	if err != nil || len(rep.Orphans) != 1 || rep.Orphans[0] != "orph" {
		t.Errorf("repair: %+v %v, want orphan orph", rep, err)
	}
}

func TestDetectDriver(t *testing.T) {
	needRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver() != DriverOverlay {
		t.Errorf("on ext4 as root: driver %s, want overlay", s.Driver())
	}
}

// blockingLayer yields a layer's first n bytes, then calls hit and blocks
// until ctx is done.
type blockingLayer struct {
	r   io.Reader
	n   int
	hit func()
	ctx context.Context
}

func (b *blockingLayer) Read(p []byte) (int, error) {
	if b.n <= 0 {
		if b.hit != nil {
			b.hit()
			b.hit = nil
		}
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	if len(p) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

func bigLayer(t testing.TB) io.Reader {
	return layer(t, f("a", strings.Repeat("a", 1<<20)), f("b", strings.Repeat("b", 1<<20)), f("c", strings.Repeat("c", 1<<20)))
}

func TestCancelMidUnpack(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		unpack(t, s, "base", "", f("x", "x"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := s.Unpack(ctx, chainID("half"), chainID("base"), &blockingLayer{r: bigLayer(t), n: 3 << 19, hit: cancel, ctx: ctx})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled unpack: %v", err)
		}
		if s.Has(chainID("half")) || len(tmpEntries(t, s)) != 0 {
			t.Errorf("after cancel: committed %v, tmp %v", s.Has(chainID("half")), tmpEntries(t, s))
		}
	})
}

// TestKillMidUnpack kills a process in the middle of an unpack: a second
// Open must leave its tmp entry alone while it lives and remove it after.
func TestKillMidUnpack(t *testing.T) {
	if dir := os.Getenv("COVE_SNAPSHOT_HELPER"); dir != "" {
		s, err := Open(dir)
		if err != nil {
			os.Exit(3)
		}
		ctx := context.Background()
		s.Unpack(ctx, chainID("killed"), "", &blockingLayer{r: bigLayer(t), n: 3 << 19, hit: func() { os.Stdout.WriteString("half\n") }, ctx: ctx})
		os.Exit(4)
	}
	eachDriver(t, func(t *testing.T, s *Store) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillMidUnpack$")
		cmd.Env = append(os.Environ(), "COVE_SNAPSHOT_HELPER="+s.Dir())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "half\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper: %q %v", buf, err)
		}
		s2, err := Open(s.Dir())
		if err != nil || len(tmpEntries(t, s2)) != 1 {
			t.Errorf("Open while the unpack runs: %v; tmp %v (want the live entry kept)", err, tmpEntries(t, s2))
		}
		cmd.Process.Kill()
		cmd.Wait()
		s3, err := Open(s.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if s3.Has(chainID("killed")) || len(tmpEntries(t, s3)) != 0 {
			t.Errorf("after kill and Open: committed %v tmp %v", s3.Has(chainID("killed")), tmpEntries(t, s3))
		}
		if l, _ := s3.List(); len(l) != 0 {
			t.Errorf("snapshots after kill: %v", l)
		}
	})
}

func TestUnpackENOSPC(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	s, err := Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver() != DriverOverlay {
		t.Fatalf("tmpfs store driver %s", s.Driver())
	}
	_, err = s.Unpack(context.Background(), chainID("full"), "", bigLayer(t))
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), chainID("full")) || !strings.Contains(err.Error(), `entry "b"`) {
		t.Errorf("unpack onto a full disk: %v, want ENOSPC naming layer and entry b", err)
	}
	if s.Has(chainID("full")) || len(tmpEntries(t, s)) != 0 {
		t.Errorf("full disk: committed %v tmp %v", s.Has(chainID("full")), tmpEntries(t, s))
	}
	// The space is back: a small layer fits.
	unpack(t, s, "small", "", f("a", "a"))
}

func TestMountManyLayers(t *testing.T) {
	needRoot(t)
	s, err := Open(t.TempDir(), WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	parent := ""
	for i := range 80 { // 80 lowerdirs of ~90 bytes each exceed mount(2)'s one page
		id := "many" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		unpack(t, s, id, parent, f("layer", id), f(id, id))
		parent = id
	}
	m := mountActive(t, s, "many-c", parent)
	if b, _ := os.ReadFile(filepath.Join(m, "layer")); string(b) != parent || !exists(filepath.Join(m, "manyAa")) {
		t.Errorf("80-layer mount: layer=%q", b)
	}
}

func TestImplicitParentKeepsLowerMetadata(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		var l1 bytes.Buffer
		tw := tar.NewWriter(&l1)
		tw.WriteHeader(&tar.Header{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o710, Uid: 1000, Gid: 1000, ModTime: time.Unix(1e9, 0)})
		tw.Close()
		if _, err := s.Unpack(context.Background(), chainID("m1"), "", &l1); err != nil {
			t.Fatal(err)
		}
		unpack(t, s, "m2", "m1", f("opt/new", "n")) // no entry for opt/ itself
		m := mountActive(t, s, "meta-c", "m2")
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(m, "opt"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != 0o710 || st.Uid != 1000 {
			t.Errorf("opt mode %o uid %d through the mount, want the lower layer's 0710 uid 1000", st.Mode&0o7777, st.Uid)
		}
	})
}

func TestConcurrentUnpackSameLayer(t *testing.T) {
	eachDriver(t, func(t *testing.T, s *Store) {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.Unpack(context.Background(), chainID("same"), "", bigLayer(t))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if l, _ := s.List(); len(l) != 1 || len(tmpEntries(t, s)) != 0 {
			t.Errorf("after concurrent unpacks: %v, tmp %v", l, tmpEntries(t, s))
		}
	})
}

func TestMountWithMount2(t *testing.T) {
	needRoot(t)
	forceMount2 = true
	defer func() { forceMount2 = false }()
	s, err := Open(t.TempDir(), WithoutSync())
	if err != nil {
		t.Fatal(err)
	}
	unpack(t, s, "m2a", "", f("a", "a"), f("b", "b"))
	unpack(t, s, "m2b", "m2a", wh("", "a"), f("c", "c"))
	m := mountActive(t, s, "m2-c", "m2b")
	if exists(filepath.Join(m, "a")) || !exists(filepath.Join(m, "b")) || !exists(filepath.Join(m, "c")) {
		t.Error("overlay through mount(2): wrong merged view")
	}
	src, err := s.mountedAt("m2-c")
	if err != nil || src != m {
		t.Errorf("mountedAt = %q %v, want %s (found by upperdir)", src, err, m)
	}
}

func TestOverlayRefusesColonPath(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "a:b")
	if _, err := Open(dir, WithDriver(DriverOverlay)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("overlay store in %s: %v, want ErrNotSupported", dir, err)
	}
	s, err := Open(filepath.Join(t.TempDir(), "c,d"))
	if err != nil || s.Driver() != DriverCopy {
		t.Errorf("detected driver under a comma path: %v %v, want copy", s, err)
	}
}

// TestRepairSealedSubvolume: a crash after a btrfs layer was sealed
// read-only but before its commit leaves a read-only subvolume in tmp/,
// which the next Open must destroy.
func TestRepairSealedSubvolume(t *testing.T) {
	dir := btrfsDir(t, "1G")
	s, err := Open(filepath.Join(dir, "store"), WithDriver(DriverBtrfs))
	if err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(s.Dir(), "tmp", "unpack-crashed", "fs")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := createSubvolume(left); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setSubvolumeReadOnly(left); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "g"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("sealed subvolume writable: %v", err)
	}
	if _, err := Open(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if e := tmpEntries(t, s); len(e) != 0 {
		t.Errorf("tmp after Open: %v", e)
	}
}
