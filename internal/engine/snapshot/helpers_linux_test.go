package snapshot

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
	"time"

	"golang.org/x/sys/unix"
)

// ent is one entry of a test layer.
type ent struct {
	name, body, link string
	typ              byte
}

func f(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg} }
func d(name string) ent       { return ent{name: name, typ: tar.TypeDir} }
func ln(name, to string) ent  { return ent{name: name, link: to, typ: tar.TypeLink} }
func wh(dir, name string) ent { return ent{name: filepath.Join(dir, ".wh."+name), typ: tar.TypeReg} }
func opq(dir string) ent      { return ent{name: filepath.Join(dir, ".wh..wh..opq"), typ: tar.TypeReg} }
func sym(name, to string) ent { return ent{name: name, link: to, typ: tar.TypeSymlink} }
func chainID(s string) string { return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(s))) }

func layer(t testing.TB, ents ...ent) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1e9, 0)}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, whiteout devices, trusted xattrs)")
	}
}

// btrfsDir loop-mounts a fresh btrfs filesystem and returns its mount
// point; it skips when mkfs.btrfs is missing.
func btrfsDir(t testing.TB, size string) string {
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
	if out, err := exec.Command("truncate", "-s", size, img).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v %s", err, out)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount btrfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount btrfs: %v %s", err, out)
		}
	})
	return mnt
}

// eachDriver runs fn with a fresh store of every driver.
func eachDriver(t *testing.T, fn func(t *testing.T, s *Store)) {
	needRoot(t)
	for _, drv := range []string{DriverOverlay, DriverBtrfs, DriverCopy} {
		t.Run(drv, func(t *testing.T) {
			dir := t.TempDir()
			if drv == DriverBtrfs {
				dir = btrfsDir(t, "1G")
			}
			s, err := Open(filepath.Join(dir, "store"), WithDriver(drv), WithoutSync())
			if err != nil {
				t.Fatal(err)
			}
			if s.Driver() != drv {
				t.Fatalf("driver %s, want %s", s.Driver(), drv)
			}
			fn(t, s)
		})
	}
}

func unpack(t testing.TB, s *Store, id, parent string, ents ...ent) {
	t.Helper()
	if _, err := s.Unpack(context.Background(), chainID(id), parentID(parent), layer(t, ents...)); err != nil {
		t.Fatalf("unpack %s: %v", id, err)
	}
}

func parentID(p string) string {
	if p == "" {
		return ""
	}
	return chainID(p)
}

// mountActive prepares key on top of id and mounts it; cleanup undoes both.
func mountActive(t *testing.T, s *Store, key, id string, opts ...PrepareOption) string {
	t.Helper()
	if err := s.Prepare(key, parentID(id), opts...); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := s.Mount(key, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Unmount(target, unix.MNT_DETACH)
		s.RemoveActive(key)
	})
	return target
}

// tmpEntries lists what is left in the store's tmp/.
func tmpEntries(t testing.TB, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
