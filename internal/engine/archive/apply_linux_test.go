package archive

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
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sandbox returns root (empty, to unpack into) inside a parent that also
// holds a canary directory; check fails the test if anything outside root
// changed.
func sandbox(t *testing.T) (root string, check func()) {
	t.Helper()
	parent := t.TempDir()
	root = filepath.Join(parent, "root")
	canary := filepath.Join(parent, "canary")
	for _, d := range []string{root, canary} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(canary, "passwd"), []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+rwX", root).Run() }) // read-only dirs
	return root, func() {
		t.Helper()
		ents, _ := os.ReadDir(parent)
		if len(ents) != 2 {
			t.Errorf("entries beside root: %v", ents)
		}
		ents, _ = os.ReadDir(canary)
		if len(ents) != 1 {
			t.Errorf("canary dir changed: %v", ents)
		}
		if b, err := os.ReadFile(filepath.Join(canary, "passwd")); err != nil || string(b) != "canary" {
			t.Errorf("canary file changed: %q %v", b, err)
		}
		if _, err := os.Lstat("/etc/cove-archive-test"); err == nil {
			t.Errorf("/etc/cove-archive-test created on the host")
			os.Remove("/etc/cove-archive-test")
		}
	}
}

func apply(t *testing.T, root string, opts Options, ents ...ent) (int64, error) {
	t.Helper()
	if opts.Layer == "" {
		opts.Layer = "sha256:test"
	}
	return Apply(context.Background(), root, bytes.NewReader(mkTar(t, ents...)), opts)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyBasic(t *testing.T) {
	root, check := sandbox(t)
	defer check()
	n, err := apply(t, root, Options{},
		dir("etc/"),
		file("etc/hosts", "127.0.0.1 localhost\n"),
		ent{name: "usr/bin/su", body: "#!/bin/false\n", typ: tar.TypeReg, mode: 0o4755},
		ent{name: "ro/", typ: tar.TypeDir, mode: 0o555},
		file("ro/inside", "x"),
		symlink("etc/mtab", "/proc/self/mounts"),
		hardlink("etc/hosts2", "etc/hosts"),
		ent{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		ent{name: "sock", typ: tar.TypeReg, mode: 0o140755},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		file("etc/dup", "first"), file("etc/dup", "second"), // a later entry replaces
		symlink("etc/l", "x"), file("etc/l/y", "through"), file("etc/l", "plain"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("127.0.0.1 localhost\n") + len("#!/bin/false\n") + 1 + 5 + 6 + 7 + 5); n != want {
		t.Errorf("size %d, want %d", n, want)
	}
	if got := readFile(t, filepath.Join(root, "etc/dup")); got != "second" {
		t.Errorf("replaced file %q", got)
	}
	if got := readFile(t, filepath.Join(root, "etc/l")); got != "plain" {
		t.Errorf("symlink replaced by a file: %q", got)
	}
	if got := readFile(t, filepath.Join(root, "etc/x/y")); got != "through" {
		t.Errorf("file through a relative symlink: %q", got)
	}
	if got := readFile(t, filepath.Join(root, "etc/hosts2")); got != "127.0.0.1 localhost\n" {
		t.Errorf("hard link content %q", got)
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(root, "etc/hosts"), &a)
	unix.Lstat(filepath.Join(root, "etc/hosts2"), &b)
	if a.Ino != b.Ino {
		t.Error("hard link is not the same inode")
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/mtab")); l != "/proc/self/mounts" {
		t.Errorf("symlink target %q, want verbatim /proc/self/mounts", l)
	}
	fi, _ := os.Stat(filepath.Join(root, "usr/bin/su"))
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("setuid file mode %v", fi.Mode())
	}
	fi, _ = os.Stat(filepath.Join(root, "ro"))
	if fi.Mode().Perm() != 0o555 || !fi.ModTime().Equal(testTime) {
		t.Errorf("read-only dir mode %v mtime %v (want 0555, %v: set after its children)", fi.Mode(), fi.ModTime(), testTime)
	}
	fi, _ = os.Lstat(filepath.Join(root, "etc/hosts"))
	if !fi.ModTime().Equal(testTime) {
		t.Errorf("file mtime %v", fi.ModTime())
	}
	fi, _ = os.Lstat(filepath.Join(root, "etc/mtab"))
	if !fi.ModTime().Equal(testTime) {
		t.Errorf("symlink mtime %v (Lutimes)", fi.ModTime())
	}
	if fi, err := os.Lstat(filepath.Join(root, "fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dev/null")); (err == nil) != (os.Geteuid() == 0) {
		t.Errorf("device node as uid %d: %v (created only as root)", os.Geteuid(), err)
	}
	if _, err := os.Lstat(filepath.Join(root, "sock")); err == nil {
		t.Error("socket entry unpacked")
	}
}

func TestApplyOwnershipXattrsDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root, check := sandbox(t)
	defer check()
	capV := string([]byte{1, 0, 0, 2, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // cap_net_bind_service+ep, v2
	_, err := apply(t, root, Options{},
		ent{name: "ping", body: "x", typ: tar.TypeReg, mode: 0o4711, uid: 1000, gid: 1001, xattrs: map[string]string{
			"security.capability":    capV,
			"user.note":              "hello",
			"trusted.overlay.opaque": "y",
			"user.overlay.redirect":  "/etc",
			"security.selinux":       "system_u:object_r:bin_t:s0",
		}},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		ent{name: "dev/loop9", typ: tar.TypeBlock, mode: 0o660, major: 7, minor: 9, gid: 6},
		ent{name: "home/u/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
	)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "ping"), &st)
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o4711 {
		t.Errorf("ping uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "ping"), "security.capability", buf); err != nil || string(buf[:n]) != capV {
		t.Errorf("security.capability: %q %v (must survive chown)", buf[:n], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(root, "ping"), "user.note", buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("user.note: %q %v", buf[:n], err)
	}
	for _, x := range []string{"trusted.overlay.opaque", "user.overlay.redirect", "security.selinux"} {
		if _, err := unix.Lgetxattr(filepath.Join(root, "ping"), x, buf); err == nil {
			t.Errorf("%s from the tar was applied", x)
		}
	}
	unix.Lstat(filepath.Join(root, "dev/null"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null mode %o rdev %x", st.Mode, st.Rdev)
	}
	unix.Lstat(filepath.Join(root, "dev/loop9"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(7, 9) || st.Gid != 6 {
		t.Errorf("dev/loop9 mode %o rdev %x gid %d", st.Mode, st.Rdev, st.Gid)
	}
	unix.Lstat(filepath.Join(root, "home/u"), &st)
	if st.Uid != 1000 || st.Mode&0o777 != 0o700 {
		t.Errorf("home/u uid %d mode %o", st.Uid, st.Mode&0o777)
	}
}

func TestApplyMalicious(t *testing.T) {
	tests := []struct {
		name  string
		ents  []ent
		want  error  // nil: must succeed
		check string // a path that must exist inside root afterwards
	}{
		{"dotdot", []ent{file("../../etc/cove-archive-test", "x")}, ErrUnsafePath, ""},
		{"dotdot inside", []ent{file("a/../../canary/passwd", "x")}, ErrUnsafePath, ""},
		{"absolute cleaned into root", []ent{file("/etc/cove-archive-test", "x")}, nil, "etc/cove-archive-test"},
		{"absolute dotdot", []ent{file("/../etc/cove-archive-test", "x")}, ErrUnsafePath, ""},
		{"symlink to /etc then file through it", []ent{symlink("evil", "/etc"), file("evil/cove-archive-test", "x")}, nil, "etc/cove-archive-test"},
		{"symlink to ../.. then file through it", []ent{symlink("evil", "../../canary"), file("evil/passwd", "x")}, nil, "canary/passwd"},
		{"symlink replaced by file is not followed", []ent{symlink("evil", "../canary/passwd"), file("evil", "x")}, nil, "evil"},
		{"symlink chain", []ent{dir("a/"), symlink("a/b", "../../.."), symlink("c", "a/b/etc"), file("c/cove-archive-test", "x")}, nil, "etc/cove-archive-test"},
		{"hardlink to /etc/passwd", []ent{hardlink("pw", "/etc/passwd")}, ErrLinkTarget, ""},
		{"hardlink dotdot", []ent{hardlink("pw", "../canary/passwd")}, ErrUnsafePath, ""},
		{"hardlink through symlink", []ent{symlink("evil", "/etc"), hardlink("pw", "evil/passwd")}, ErrLinkTarget, ""},
		{"hardlink to later entry", []ent{hardlink("a", "b"), file("b", "x")}, ErrLinkTarget, ""},
		{"hardlink to itself", []ent{hardlink("a", "a")}, ErrLinkTarget, ""},
		{"huge size", []ent{{name: "big", typ: tar.TypeReg, mode: 0o644, size: 1 << 40}}, ErrTooLarge, ""},
		{"whiteout through symlink", []ent{symlink("evil", "../canary"), file("evil/.wh.passwd", "")}, nil, ""},
		{"whiteout of dotdot", []ent{file(".wh..", "")}, ErrInvalidHeader, ""},
		{"opaque through symlink", []ent{symlink("evil", "../../canary"), file("evil/.wh..wh..opq", "")}, nil, ""},
		{"unknown type", []ent{{name: "x", typ: 'Z'}}, ErrUnsupportedType, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []WhiteoutMode{WhiteoutDelete, WhiteoutOverlay} {
				if mode == WhiteoutOverlay && os.Geteuid() != 0 {
					continue
				}
				root, check := sandbox(t)
				var err error
				if tc.name == "huge size" {
					// A header claiming 1 TiB with no content behind it.
					var buf bytes.Buffer
					tw := tar.NewWriter(&buf)
					tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40})
					_, err = Apply(context.Background(), root, &buf, Options{Layer: "sha256:test", Whiteouts: mode})
				} else {
					_, err = apply(t, root, Options{Whiteouts: mode}, tc.ents...)
				}
				if tc.want == nil && err != nil {
					t.Errorf("mode %d: %v", mode, err)
				}
				if tc.want != nil {
					var e *Error
					if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Layer != "sha256:test" || e.Entry == "" {
						t.Errorf("mode %d: error %v, want %v naming layer and entry", mode, err, tc.want)
					}
				}
				if tc.check != "" {
					if _, err := os.Lstat(filepath.Join(root, tc.check)); err != nil {
						t.Errorf("mode %d: %s not inside root: %v", mode, tc.check, err)
					}
				}
				check()
			}
		})
	}
}

func TestApplyTruncated(t *testing.T) {
	root, check := sandbox(t)
	defer check()
	tb := mkTar(t, file("a", strings.Repeat("x", 10000)), file("b", "y"))
	_, err := Apply(context.Background(), root, bytes.NewReader(tb[:4000]), Options{Layer: "sha256:t"})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `entry "a"`) {
		t.Errorf("truncated tar: %v, want unexpected EOF naming entry a", err)
	}
	root2, check2 := sandbox(t)
	defer check2()
	_, err = Apply(context.Background(), root2, bytes.NewReader(tb[:700]), Options{Layer: "sha256:t"})
	if err == nil {
		t.Error("tar cut inside the first file's data: no error")
	}
}

// slowReader yields data then blocks until ctx is done.
type slowReader struct {
	data []byte
	ctx  context.Context
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		<-r.ctx.Done()
		return 0, r.ctx.Err()
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestApplyCancel(t *testing.T) {
	root, _ := sandbox(t)
	tb := mkTar(t, file("a", strings.Repeat("x", 100000)))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Apply(ctx, root, &slowReader{tb[:50000], ctx}, Options{Layer: "sha256:t"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled apply: %v", err)
	}
}

func TestApplyWhiteoutDelete(t *testing.T) {
	root, check := sandbox(t)
	defer check()
	if _, err := apply(t, root, Options{}, file("a/x", "1"), file("a/y", "2"), file("d/old", "3"), file("d/sub/deep", "4"), file("keep", "5")); err != nil {
		t.Fatal(err)
	}
	_, err := apply(t, root, Options{},
		dir("d/"), file("d/sub/new", "n"), file("d/.wh..wh..opq", ""), file("d/after", "a"),
		file("a/.wh.x", ""), file("a/.wh.missing", ""), file(".wh.nodir/x", ""), file("b/.wh.y", ""),
		file("new", "n"), file(".wh.new", ""), // same layer: the whiteout does not hide it
	)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"a/x": false, "a/y": true, "d/old": false, "d/sub/deep": false, "d/sub/new": true,
		"d/after": true, "keep": true, "new": true, "nodir": false, "b": false,
	} {
		_, err := os.Lstat(filepath.Join(root, p))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
}

func TestApplyENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount tmpfs")
	}
	root, _ := sandbox(t)
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	_, err := apply(t, root, Options{}, file("small", "x"), file("usr/lib/big.so", strings.Repeat("z", 3<<20)))
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), `entry "usr/lib/big.so"`) || !strings.Contains(err.Error(), "sha256:test") {
		t.Errorf("full disk: %v, want ENOSPC naming layer and entry", err)
	}
}

func TestCopyTree(t *testing.T) {
	src := t.TempDir()
	if _, err := apply(t, src, Options{},
		file("a/f", "data"), hardlink("a/g", "a/f"), symlink("l", "/nowhere"),
		ent{name: "x/", typ: tar.TypeDir, mode: 0o711}, ent{name: "s", body: "s", typ: tar.TypeReg, mode: 0o2755},
	); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	n, err := CopyTree(context.Background(), src, dst)
	if err != nil || n != 5 {
		t.Fatalf("copy: %d %v", n, err)
	}
	out, err := exec.Command("diff", "-r", "--no-dereference", src, dst).CombinedOutput()
	if err != nil {
		t.Errorf("trees differ: %v\n%s", err, out)
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(dst, "a/f"), &a)
	unix.Lstat(filepath.Join(dst, "a/g"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Error("hard link not kept")
	}
	for _, p := range []string{"x", "s", "a"} {
		fs, _ := os.Lstat(filepath.Join(src, p))
		fd, _ := os.Lstat(filepath.Join(dst, p))
		if fs.Mode() != fd.Mode() || !fs.ModTime().Equal(fd.ModTime()) {
			t.Errorf("%s: mode %v/%v mtime %v/%v", p, fs.Mode(), fd.Mode(), fs.ModTime(), fd.ModTime())
		}
	}
}
