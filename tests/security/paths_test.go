package security

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostTarget makes a host directory an attack aims at, holding one file,
// and returns it with a check that it is unchanged: same single file, no
// mount on or under it in our mount table.
func hostTarget(t *testing.T) (string, func(what string)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "host-target")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func(what string) {
		t.Helper()
		if got := listTree(t, dir); len(got) != 1 || got[0] != "file" {
			t.Errorf("%s: host directory %s changed: %v", what, dir, got)
		}
		if m := hostMounts(t, dir); len(m) > 0 {
			t.Errorf("%s: mounts on the host directory: %v", what, m)
		}
	}
}

// TestProcSysSymlinks is CVE-2019-19921 and CVE-2023-27561: /proc or /sys
// in the image is a symlink (absolute or relative) to a host directory.
// procfs and sysfs must not be mounted through it: create fails, and the
// host directory gets nothing.
func TestProcSysSymlinks(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		host, unchanged := hostTarget(t)
		for _, c := range []struct{ name, dir, target string }{
			{"proc-abs", "proc", host},
			{"proc-rel", "proc", "../../../../../../../../.." + host},
			{"sys-abs", "sys", host},
			{"sys-rel", "sys", "../../../../../../../../.." + host},
		} {
			e := newEnv(t, []string{"true"}, nil)
			e.noOpenat2 = noOpenat2
			p := filepath.Join(e.rootfs, c.dir)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(c.target, p); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := e.run("esc-" + c.name)
			if code == 0 {
				t.Errorf("%s: container started with /%s a symlink to %s", c.name, c.dir, c.target)
			} else if !strings.Contains(errOut, "symlink") {
				t.Errorf("%s: refused without saying why: %s", c.name, errOut)
			}
			unchanged(c.name)
		}
	})
}

// TestMountDestinationSymlinks is CVE-2021-30465's family: bind and tmpfs
// mount destinations through absolute, relative, ".." and dangling
// symlinks, and ".." in the destination itself. Each resolves inside the
// root: the host directory and the dangling target's host path get
// nothing, and the bind's content shows inside the container.
func TestMountDestinationSymlinks(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		host, unchanged := hostTarget(t)
		host2, unchanged2 := hostTarget(t) // not shadowed by the binds on host
		src := filepath.Join(t.TempDir(), "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "payload"), []byte("payload"), 0o644); err != nil {
			t.Fatal(err)
		}
		dangling := "/esc-dangling-" + filepath.Base(filepath.Dir(host))
		links := map[string]string{
			"mnt/abs":      host,
			"mnt/rel":      "../../../../../../../../.." + host,
			"mnt/dotdot":   "../" + strings.Repeat("x/../../", 12) + host[1:],
			"mnt/dangling": dangling + "/x",
			"mnt/tmpabs":   host2,
		}
		mounts := []specs.Mount{
			{Destination: "/mnt/abs", Type: "bind", Source: src, Options: []string{"bind"}},
			{Destination: "/mnt/rel", Type: "bind", Source: src, Options: []string{"bind"}},
			{Destination: "/mnt/dotdot", Type: "bind", Source: src, Options: []string{"bind"}},
			{Destination: "/mnt/dangling", Type: "bind", Source: src, Options: []string{"bind"}},
			{Destination: "/../../../../../../.." + host2 + "/dest", Type: "bind", Source: src, Options: []string{"bind"}},
			{Destination: "/mnt/tmpabs/sub", Type: "tmpfs", Source: "tmpfs"},
		}
		e := newEnv(t, sh("cat /mnt/abs/payload /mnt/rel/payload /mnt/dotdot/payload /mnt/dangling/payload "+host2+"/dest/payload"), func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, mounts...)
		})
		e.noOpenat2 = noOpenat2
		os.MkdirAll(filepath.Join(e.rootfs, "mnt"), 0o755)
		for l, target := range links {
			if err := os.Symlink(target, filepath.Join(e.rootfs, l)); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := e.run("esc-mntdest")
		if code != 0 {
			t.Errorf("run: exit %d: %s", code, errOut)
		} else if got := strings.Count(out, "payload"); got != 5 {
			t.Errorf("bind mounts not visible inside: %q", out)
		}
		unchanged("destinations")
		unchanged2("destinations")
		if _, err := os.Lstat(dangling); !os.IsNotExist(err) {
			os.RemoveAll(dangling)
			t.Errorf("dangling symlink target created on the host: %s (%v)", dangling, err)
		}
		// They all landed inside the root instead.
		for _, p := range []string{host2 + "/dest", host2 + "/sub", dangling + "/x"} {
			if _, err := os.Stat(filepath.Join(e.rootfs, p)); err != nil {
				t.Errorf("%s not created inside the root: %v", p, err)
			}
		}
	})
}

// raceStarts is the number of container starts of TestSymlinkExchangeRace
// in each resolver mode.
const raceStarts = 200

// TestSymlinkExchangeRace is CVE-2024-45310 and CVE-2021-30465: a shared
// volume is bind-mounted into every container, and a host goroutine (as a
// second container sharing it would) swaps a directory and a symlink to a
// host path with renameat2(RENAME_EXCHANGE) while containers start with
// mount destinations inside it. Nothing may be created or mounted in the
// host directory, in any of the starts.
func TestSymlinkExchangeRace(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		host, unchanged := hostTarget(t)
		vol := filepath.Join(t.TempDir(), "vol")
		if err := os.MkdirAll(filepath.Join(vol, "d"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(host, filepath.Join(vol, "l")); err != nil {
			t.Fatal(err)
		}
		src := t.TempDir()
		e := newEnv(t, []string{"true"}, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"bind"}},
				specs.Mount{Destination: "/vol/d/sub", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/vol/d/bind", Type: "bind", Source: src, Options: []string{"bind"}},
			)
		})
		e.noOpenat2 = noOpenat2
		var stop atomic.Bool
		var swaps atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, l := filepath.Join(vol, "d"), filepath.Join(vol, "l")
			for !stop.Load() {
				if unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, l, unix.RENAME_EXCHANGE) == nil {
					swaps.Add(1)
				}
			}
		}()
		ok := 0
		for range raceStarts {
			if _, _, code := e.run("esc-race"); code == 0 {
				ok++
			}
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("%d starts, %d succeeded, %d swaps", raceStarts, ok, swaps.Load())
		if ok == 0 {
			t.Error("no container started: the race was not exercised")
		}
		unchanged("race")
	})
}
