package pathrs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// modes runs f once with openat2 and once with the forced component walk.
func modes(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, walk := range []bool{false, true} {
		name := "openat2"
		if walk {
			name = "walk"
		}
		t.Run(name, func(t *testing.T) {
			old := forceWalk
			forceWalk = walk
			t.Cleanup(func() { forceWalk = old })
			f(t)
		})
	}
}

// tree builds a root with symlinks that try to leave it, and a sibling
// directory "outside" that no lookup may reach. It returns root and outside.
func tree(t testing.TB) (string, string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root + "/a/b", root + "/etc", outside + "/secret"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		root + "/a/b/file":   "inside",
		root + "/etc/passwd": "fake",
		outside + "/passwd":  "host",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"abs":       "/a",
		"escape":    "../../../..",
		"escfile":   "../../../../etc/passwd",
		"a/up":      "../../../../../a/b",
		"dangling":  "/nonexistent/dir",
		"loop1":     "loop2",
		"loop2":     "loop1",
		"procroot":  "/proc/self/root",
		"hostabs":   outside,
		"hostrel":   "../outside",
		"a/b/self":  ".",
		"a/b/chain": "../../abs/b/self/file",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func fdPath(t testing.TB, f *os.File) string {
	t.Helper()
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

func TestOpenInRoot(t *testing.T) {
	modes(t, func(t *testing.T) {
		root, _ := tree(t)
		tests := []struct {
			path  string
			flags int
			want  string // path relative to root, or ""
			err   error
		}{
			{path: "/", flags: unix.O_PATH, want: "/"},
			{path: "", flags: unix.O_PATH, want: "/"},
			{path: "a/b/file", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "/abs/b/file", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "/escape", flags: unix.O_PATH | unix.O_DIRECTORY, want: "/"},
			{path: "/escape/a/b", flags: unix.O_PATH, want: "/a/b"},
			{path: "/../../../a", flags: unix.O_PATH, want: "/a"},
			{path: "a/../../../../a/b/../b/file", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "escfile", flags: unix.O_RDONLY, want: "/etc/passwd"},
			{path: "a/up/file", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "a/b/chain", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "a/b/self/self/self/file", flags: unix.O_RDONLY, want: "/a/b/file"},
			{path: "dangling", flags: unix.O_PATH, err: unix.ENOENT},
			{path: "dangling", flags: unix.O_PATH | unix.O_NOFOLLOW, want: "/dangling"},
			{path: "loop1", flags: unix.O_PATH, err: unix.ELOOP},
			{path: "loop1/x", flags: unix.O_PATH, err: unix.ELOOP},
			{path: "procroot", flags: unix.O_PATH, err: unix.ENOENT},
			{path: "procroot/etc/passwd", flags: unix.O_RDONLY, err: unix.ENOENT},
			{path: "hostabs/passwd", flags: unix.O_RDONLY, err: unix.ENOENT},
			{path: "hostrel/passwd", flags: unix.O_RDONLY, err: unix.ENOENT},
			{path: "a/b/file/", flags: unix.O_RDONLY, err: unix.ENOTDIR},
			{path: "a/b/file/x", flags: unix.O_RDONLY, err: unix.ENOTDIR},
			{path: "a/b/file", flags: unix.O_RDONLY | unix.O_DIRECTORY, err: unix.ENOTDIR},
		}
		for _, tc := range tests {
			f, err := OpenInRoot(root, tc.path, tc.flags)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("OpenInRoot(%q) = %v, want %v", tc.path, err, tc.err)
				}
				if f != nil {
					f.Close()
				}
				continue
			}
			if err != nil {
				t.Errorf("OpenInRoot(%q): %v", tc.path, err)
				continue
			}
			got := fdPath(t, f)
			f.Close()
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("OpenInRoot(%q) opened %s, want %s", tc.path, got, want)
			}
		}
	})
}

func TestOpenInRootCreate(t *testing.T) {
	modes(t, func(t *testing.T) {
		root, outside := tree(t)
		// O_CREAT through a symlink pointing at the host lands inside root
		// (or fails), never in outside.
		f, err := OpenInRoot(root, "hostabs/new", unix.O_CREAT|unix.O_WRONLY)
		if err == nil {
			p := fdPath(t, f)
			f.Close()
			if !within(root, p) {
				t.Fatalf("created %s outside root", p)
			}
		}
		if _, err := os.Lstat(filepath.Join(outside, "new")); !os.IsNotExist(err) {
			t.Fatalf("file created outside root: %v", err)
		}
		f, err = OpenInRoot(root, "/escape/created", unix.O_CREAT|unix.O_WRONLY)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := os.Stat(filepath.Join(root, "created")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSymlinkLimit(t *testing.T) {
	modes(t, func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "target"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		// l0 -> l1 -> ... -> lN -> target: N+1 symlinks.
		const n = 41
		for i := range n {
			next := "l" + strconv.Itoa(i+1)
			if i == n-1 {
				next = "target"
			}
			if err := os.Symlink(next, filepath.Join(root, "l"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := OpenInRoot(root, "l0", unix.O_RDONLY); !errors.Is(err, unix.ELOOP) {
			t.Errorf("41 symlinks: got %v, want ELOOP", err)
		}
		f, err := OpenInRoot(root, "l1", unix.O_RDONLY)
		if err != nil {
			t.Fatalf("40 symlinks: %v", err)
		}
		f.Close()
	})
}

func TestMagicLinks(t *testing.T) {
	modes(t, func(t *testing.T) {
		// With the host root as root, /proc/self is a plain symlink but
		// /proc/self/root is a magic link and must be refused.
		if _, err := OpenInRoot("/", "/proc/self/root/etc", unix.O_PATH); !errors.Is(err, unix.ELOOP) {
			t.Errorf("magic link: got %v, want ELOOP", err)
		}
		f, err := OpenInRoot("/", "/proc/self/status", unix.O_RDONLY)
		if err != nil {
			t.Fatalf("plain procfs symlink: %v", err)
		}
		f.Close()
	})
}

func TestMkdirAllInRoot(t *testing.T) {
	modes(t, func(t *testing.T) {
		root, outside := tree(t)
		tests := []struct {
			path string
			want string
			err  error
		}{
			{path: "/a/b", want: "/a/b"},
			{path: "x/y/z", want: "/x/y/z"},
			{path: "/abs/new", want: "/a/new"},
			{path: "../../../up", want: "/up"},
			{path: "/hostabs/secret/evil", want: outside + "/secret/evil"},
			{path: "/hostrel/evil", want: "/outside/evil"},
			{path: "/dangling/sub", want: "/nonexistent/dir/sub"},
			{path: "/escape/escape/e", want: "/e"},
			{path: "/a/b/file/sub", err: unix.ENOTDIR},
			{path: "/a/b/file", err: unix.ENOTDIR},
			{path: "/loop1/x", err: unix.ELOOP},
		}
		for _, tc := range tests {
			f, err := MkdirAllInRoot(root, tc.path, 0o755)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("MkdirAllInRoot(%q) = %v, want %v", tc.path, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("MkdirAllInRoot(%q): %v", tc.path, err)
				continue
			}
			got := fdPath(t, f)
			f.Close()
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("MkdirAllInRoot(%q) made %s, want %s", tc.path, got, want)
			}
			if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
				t.Errorf("MkdirAllInRoot(%q): %s not a directory: %v", tc.path, got, err)
			}
		}
		entries, err := os.ReadDir(filepath.Join(outside, "secret"))
		if err != nil || len(entries) != 0 {
			t.Errorf("outside directory changed: %v %v", entries, err)
		}
	})
}

func TestCreateInRoot(t *testing.T) {
	modes(t, func(t *testing.T) {
		root, outside := tree(t)
		tests := []struct {
			path string
			want string
			err  error
		}{
			{path: "/new/dir/file", want: "/new/dir/file"},
			{path: "/a/b/file", want: "/a/b/file"},
			{path: "/escfile", want: "/etc/passwd"},
			{path: "/hostabs/passwd", want: outside + "/passwd"},
			{path: "/dangling", want: "/nonexistent/dir"},
			{path: "/a/b", err: unix.EISDIR},
			{path: "/a/b/file/x", err: unix.ENOTDIR},
		}
		for _, tc := range tests {
			f, err := CreateInRoot(root, tc.path, 0o600)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Errorf("CreateInRoot(%q) = %v, want %v", tc.path, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("CreateInRoot(%q): %v", tc.path, err)
				continue
			}
			got := fdPath(t, f)
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("CreateInRoot(%q): not a regular file (%v)", tc.path, err)
			}
			f.Close()
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("CreateInRoot(%q) made %s, want %s", tc.path, got, want)
			}
		}
		if b, err := os.ReadFile(filepath.Join(outside, "passwd")); err != nil || string(b) != "host" {
			t.Errorf("outside file changed: %q %v", b, err)
		}
	})
}

func TestProcfdPath(t *testing.T) {
	f, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := ProcfdPath(f)
	if p != "/proc/self/fd/"+strconv.Itoa(int(f.Fd())) {
		t.Fatalf("ProcfdPath = %s", p)
	}
	if got, err := os.Readlink(p); err != nil || got != "/" {
		t.Fatalf("readlink %s = %q, %v", p, got, err)
	}
}

// FuzzOpenInRoot opens random paths in a tree full of escaping symlinks
// with both resolvers and checks that whatever opens is inside root, and
// that both resolvers agree.
func FuzzOpenInRoot(f *testing.F) {
	for _, s := range []string{"a/b/file", "../../..", "/escape/a", "hostabs/passwd", "a/up/../../x", "loop1", "a/b/chain"} {
		f.Add(s)
	}
	root, _ := tree(f)
	f.Fuzz(func(t *testing.T, path string) {
		if strings.ContainsRune(path, 0) {
			return
		}
		var got [2]string
		var errs [2]error
		for i, walk := range []bool{false, true} {
			forceWalk = walk
			fd, err := OpenInRoot(root, path, unix.O_PATH)
			forceWalk = false
			errs[i] = err
			if err != nil {
				continue
			}
			got[i] = fdPath(t, fd)
			fd.Close()
			if !within(root, got[i]) {
				t.Fatalf("OpenInRoot(%q) (walk=%v) escaped to %s", path, walk, got[i])
			}
		}
		if got[0] != got[1] || (errs[0] == nil) != (errs[1] == nil) {
			t.Fatalf("OpenInRoot(%q): openat2 %q %v, walk %q %v", path, got[0], errs[0], got[1], errs[1])
		}
	})
}
