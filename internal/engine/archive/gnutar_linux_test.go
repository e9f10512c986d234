package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gnuTree builds a tree with what real layers hold: long names, a sparse
// file, hard links, symlinks, setuid, a FIFO, xattrs and, as root, owners
// and a device node.
func gnuTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	long := filepath.Join(src, strings.Repeat("d", 120), strings.Repeat("f", 140))
	must(os.MkdirAll(filepath.Dir(long), 0o755))
	must(os.WriteFile(long, []byte("long name"), 0o644))
	sp, err := os.Create(filepath.Join(src, "sparse"))
	must(err)
	must(sp.Truncate(10 << 20))
	_, err = sp.WriteAt(bytes.Repeat([]byte("s"), 4096), 5<<20)
	must(err)
	must(sp.Close())
	must(os.WriteFile(filepath.Join(src, "a"), []byte("linked"), 0o640))
	must(os.Link(filepath.Join(src, "a"), filepath.Join(src, "b")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs")))
	must(os.Symlink("../x/y", filepath.Join(src, "rel")))
	must(os.WriteFile(filepath.Join(src, "suid"), []byte("#!"), 0o755))
	must(os.Chmod(filepath.Join(src, "suid"), 0o4755|os.ModeSetuid))
	must(unix.Chmod(filepath.Join(src, "suid"), 0o4755))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	must(os.WriteFile(filepath.Join(src, "empty"), nil, 0o600))
	must(unix.Setxattr(filepath.Join(src, "a"), "user.origin", []byte("gnu"), 0))
	must(os.Mkdir(filepath.Join(src, "private"), 0o750))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(src, "a"), 1234, 5678))
		must(unix.Mknod(filepath.Join(src, "private", "tty"), unix.S_IFCHR|0o620, int(unix.Mkdev(5, 0))))
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	filepath.WalkDir(src, func(p string, _ fs.DirEntry, _ error) error {
		if p != src {
			unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())})
		}
		return nil
	})
	// Directories last, so their children did not change them again.
	unix.Lutimes(filepath.Join(src, "private"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())})
	return src
}

// TestApplyGNUTar unpacks layers written by GNU tar in its gnu and posix
// formats and compares the result with the tree they came from.
func TestApplyGNUTar(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar not installed")
	}
	src := gnuTree(t)
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			tf := filepath.Join(t.TempDir(), "layer.tar")
			args := []string{"--sparse", "--format=" + format, "-C", src, "-cpf", tf, "."}
			if format == "posix" { // GNU tar writes xattrs only as PAX records
				args = append([]string{"--xattrs", "--xattrs-include=user.*"}, args...)
			}
			out, err := exec.Command("tar", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("tar: %v %s", err, out)
			}
			r, err := os.Open(tf)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			dst := t.TempDir()
			if _, err := Apply(context.Background(), dst, r, Options{Layer: "gnu-" + format}); err != nil {
				t.Fatal(err)
			}
			compareTrees(t, src, dst, format == "posix")
		})
	}
}

// compareTrees checks that dst holds what src does: types, modes, owners
// (as root), content, symlink targets, devices, mtimes, user xattrs and
// hard-link groups.
func compareTrees(t *testing.T, src, dst string, xattrs bool) {
	t.Helper()
	links := map[uint64]uint64{} // src inode -> dst inode
	filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		var a, b unix.Stat_t
		if err := unix.Lstat(p, &a); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lstat(q, &b); err != nil {
			t.Errorf("%s: missing: %v", rel, err)
			return nil
		}
		if a.Mode != b.Mode || a.Size != b.Size || a.Mtim.Sec != b.Mtim.Sec {
			t.Errorf("%s: mode %o/%o size %d/%d mtime %d/%d", rel, a.Mode, b.Mode, a.Size, b.Size, a.Mtim.Sec, b.Mtim.Sec)
		}
		if os.Geteuid() == 0 && (a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev) {
			t.Errorf("%s: owner %d:%d/%d:%d rdev %x/%x", rel, a.Uid, a.Gid, b.Uid, b.Gid, a.Rdev, b.Rdev)
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if sum(t, p) != sum(t, q) {
				t.Errorf("%s: content differs", rel)
			}
			if a.Nlink > 1 {
				if prev, ok := links[a.Ino]; ok && prev != b.Ino {
					t.Errorf("%s: hard link group split", rel)
				}
				links[a.Ino] = b.Ino
			}
			va, vb := make([]byte, 64), make([]byte, 64)
			na, ea := unix.Getxattr(p, "user.origin", va)
			nb, eb := unix.Getxattr(q, "user.origin", vb)
			if !xattrs {
				break
			}
			if (ea == nil) != (eb == nil) || (ea == nil && string(va[:na]) != string(vb[:nb])) {
				t.Errorf("%s: user.origin %q(%v) / %q(%v)", rel, va[:max(na, 0)], ea, vb[:max(nb, 0)], eb)
			}
		case unix.S_IFLNK:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: symlink %q/%q", rel, la, lb)
			}
		}
		return nil
	})
}

func sum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
