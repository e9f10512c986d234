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
