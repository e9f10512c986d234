package pathrs

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenProcfs(t *testing.T) {
	modes(t, func(t *testing.T) {
		for path, want := range map[string]string{
			"self/status":       "Pid:",
			"sys/kernel/ostype": "Linux",
			"thread-self/comm":  "",
		} {
			f, err := OpenProcfs(path, unix.O_RDONLY)
			if err != nil {
				t.Errorf("OpenProcfs(%q): %v", path, err)
				continue
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil || !strings.Contains(string(b), want) {
				t.Errorf("OpenProcfs(%q) read %q (%v), want %q in it", path, b, err, want)
			}
		}
		// Magic links and ".." lead out of procfs: refused.
		for _, path := range []string{"self/root/etc/passwd", "self/cwd", "self/fd/0", "../etc/passwd", "sys/../../etc/passwd"} {
			if f, err := OpenProcfs(path, unix.O_RDONLY); err == nil {
				f.Close()
				t.Errorf("OpenProcfs(%q) opened it", path)
			}
		}
	})
}

func TestReopen(t *testing.T) {
	p := t.TempDir() + "/f"
	f, err := OpenInRoot("/", p, unix.O_CREAT|unix.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	h, err := OpenInRoot("/", p, unix.O_PATH)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	w, err := Reopen(h, unix.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("x")); err != nil {
		t.Errorf("write through the reopened handle: %v", err)
	}
}
