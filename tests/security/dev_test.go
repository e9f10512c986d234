package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withoutDevMounts drops the spec's /dev tmpfs and its submounts (but
// keepPts keeps /dev/pts), so the image's own /dev is used.
func withoutDevMounts(keepPts bool) func(*specs.Spec) {
	return func(s *specs.Spec) {
		var keep []specs.Mount
		for _, m := range s.Mounts {
			d := filepath.Clean(m.Destination)
			if d == "/dev" || strings.HasPrefix(d, "/dev/") && !(keepPts && d == "/dev/pts") {
				continue
			}
			keep = append(keep, m)
		}
		s.Mounts = keep
	}
}

// corePattern returns the host's kernel.core_pattern, which the attacks
// below aim at.
func corePattern(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDevSymlinkedToHost: the image's /dev is a symlink (absolute or
// relative) to a host directory. With the spec's /dev tmpfs and without it
// (device nodes then made in the image's /dev), no mount and no node may
// land in the host directory.
func TestDevSymlinkedToHost(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		host, unchanged := hostTarget(t)
		for _, c := range []struct {
			name   string
			target string
			mutate func(*specs.Spec)
		}{
			{"abs-tmpfs", host, nil},
			{"rel-tmpfs", "../../../../../../../../.." + host, nil},
			{"abs-image", host, withoutDevMounts(false)},
			{"rel-image", "../../../../../../../../.." + host, withoutDevMounts(false)},
		} {
			e := newEnv(t, sh("test -c /dev/null && test -c /dev/zero"), c.mutate)
			e.noOpenat2 = noOpenat2
			dev := filepath.Join(e.rootfs, "dev")
			if err := os.Remove(dev); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(c.target, dev); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := e.run("esc-devlink")
			t.Logf("%s: exit %d %s", c.name, code, strings.TrimSpace(errOut))
			unchanged(c.name)
		}
	})
}

// TestDevNullSymlink is CVE-2025-31133: /dev/null is a symlink to a procfs
// file before masking, so a runtime binding "/dev/null" over masked paths
// would bind that file instead. In the image's /dev the runtime replaces
// it with the real node and masking masks; in a /dev volume it refuses.
// core_pattern on the host never changes.
func TestDevNullSymlink(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		before := corePattern(t)
		// The image's /dev.
		e := newEnv(t, sh(`stat -c '%t:%T' /dev/null /proc/timer_list /proc/keys; wc -c </proc/timer_list; /bin/esc write /proc/timer_list x`), withoutDevMounts(false))
		e.noOpenat2 = noOpenat2
		null := filepath.Join(e.rootfs, "dev/null")
		os.Remove(null)
		if err := os.Symlink("/proc/sys/kernel/core_pattern", null); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := e.run("esc-null-image")
		if code != 0 {
			t.Errorf("image /dev: exit %d: %s", code, errOut)
		} else if f := strings.Fields(out); len(f) != 5 || f[0] != "1:3" || f[1] != "1:3" || f[2] != "1:3" || f[3] != "0" {
			// The write lands in the null device: harmless, not checked.
			t.Errorf("image /dev: /dev/null or masking wrong (want the null device 1:3 at /dev/null and both masked files, empty): %q", out)
		}

		// A /dev volume from the host: nothing there may be replaced, so
		// the runtime must refuse to mask with it.
		for _, kind := range []string{"symlink", "file"} {
			vol := filepath.Join(t.TempDir(), "devvol")
			os.MkdirAll(vol, 0o755)
			if kind == "symlink" {
				os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(vol, "null"))
			} else {
				os.WriteFile(filepath.Join(vol, "null"), nil, 0o666)
			}
			e := newEnv(t, sh("cat /proc/timer_list | wc -c"), func(s *specs.Spec) {
				withoutDevMounts(false)(s)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev", Type: "bind", Source: vol, Options: []string{"rbind"}})
			})
			e.noOpenat2 = noOpenat2
			out, errOut, code := e.run("esc-null-vol")
			if code == 0 && strings.TrimSpace(out) != "0" {
				t.Errorf("/dev volume with null a %s: masked path readable: %q", kind, out)
			}
			if code != 0 && !strings.Contains(errOut, "null device") {
				t.Errorf("/dev volume with null a %s: unclear error: %s", kind, errOut)
			}
			if got := listTree(t, vol); len(got) != 1 || got[0] != "null" {
				t.Errorf("/dev volume changed: %v", got)
			}
		}
		if after := corePattern(t); after != before {
			t.Fatalf("host core_pattern changed: %q -> %q", before, after)
		}
	})
}

// TestConsoleSymlinks is CVE-2025-52565: /dev/console, or the /dev/pts
// entries, are symlinks to a procfs file when the runtime sets up the
// console. The console must be a pty or the start must fail; core_pattern
// on the host never changes.
func TestConsoleSymlinks(t *testing.T) {
	resolverModes(t, func(t *testing.T, noOpenat2 bool) {
		before := corePattern(t)
		script := `stat -c '%t %F' /dev/console; stat -L -c '%t' /proc/self/fd/0`
		e := newEnv(t, sh(script), func(s *specs.Spec) {
			withoutDevMounts(true)(s)
			s.Process.Terminal = true
		})
		e.noOpenat2 = noOpenat2
		if err := os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(e.rootfs, "dev/console")); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := e.run("esc-console")
		if code == 0 {
			// Majors in hex: 88 is 136, the first pty slave major.
			if f := strings.Fields(out); len(f) < 3 || f[0] != "88" || f[len(f)-1] != "88" {
				t.Errorf("/dev/console or stdin is not a pty: %q", out)
			}
		} else if !strings.Contains(errOut, "console") {
			t.Errorf("console symlink: unclear error: %s", errOut)
		}

		// /dev/pts is a host directory whose ptmx and 0 are symlinks.
		pts := filepath.Join(t.TempDir(), "pts")
		os.MkdirAll(pts, 0o755)
		for _, n := range []string{"ptmx", "0", "1"} {
			os.Symlink("/proc/sys/kernel/core_pattern", filepath.Join(pts, n))
		}
		e = newEnv(t, sh(script), func(s *specs.Spec) {
			withoutDevMounts(false)(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/pts", Type: "bind", Source: pts, Options: []string{"bind"}})
			s.Process.Terminal = true
		})
		e.noOpenat2 = noOpenat2
		out, errOut, code = e.run("esc-pts")
		// Refused before anything behind the symlinks is opened.
		if code == 0 {
			t.Errorf("fake /dev/pts: container started: %q", out)
		} else if !strings.Contains(errOut, "not the pty multiplexer") {
			t.Errorf("fake /dev/pts: the runtime opened what /dev/ptmx points to: %s", errOut)
		}
		if got := listTree(t, pts); len(got) != 3 {
			t.Errorf("fake /dev/pts volume changed: %v", got)
		}
		if after := corePattern(t); after != before {
			t.Fatalf("host core_pattern changed: %q -> %q", before, after)
		}
	})
}
