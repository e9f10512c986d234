package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The attacks below plant symlinks and ".." in the rootfs or the spec so
// that a naive runtime would mount onto the host directory hostDir. After
// each, hostDir must have no mount (in the child's namespace, before the
// root switch) and no new file.

func init() {
	scenarios["attack"] = scenario{
		afterPrepare: func(c *Config, arg string, r result) error {
			mounts, err := readMountinfo()
			if err != nil {
				return err
			}
			var at []string
			for _, m := range mounts {
				if m.mountpoint == arg || strings.HasPrefix(m.mountpoint, arg+"/") {
					at = append(at, m.mountpoint)
				}
			}
			r["host_mounts"] = strings.Join(at, " ")
			return nil
		},
		afterPivot: func(c *Config, arg string, r result) error {
			if os.Getenv("COVE_ROOTFS_PLANT") == "" {
				return nil
			}
			// Replace /dev/null before masking (CVE-2025-31133).
			if err := os.Remove("/dev/null"); err != nil {
				return err
			}
			if os.Getenv("COVE_ROOTFS_PLANT") == "file" {
				return os.WriteFile("/dev/null", nil, 0o666)
			}
			return os.Symlink("/proc/sys/kernel/core_pattern", "/dev/null")
		},
		probe: func(c *Config, arg string, r result) error { return mountinfo(r) },
	}
}

// attackEnv returns a rootfs, a host directory holding one file, and a
// bind source directory.
func attackEnv(t *testing.T) (root, hostDir, src string) {
	dir, root := newRootfs(t)
	hostDir = filepath.Join(dir, "host")
	src = filepath.Join(dir, "src")
	for _, d := range []string{hostDir, src} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hostDir, "file"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "payload"), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, hostDir, src
}

// hostUntouched checks that hostDir still holds only its one file.
func hostUntouched(t *testing.T, r result, hostDir string) {
	t.Helper()
	if r["host_mounts"] != "" {
		t.Errorf("mounts on the host directory: %s", r["host_mounts"])
	}
	ents, err := os.ReadDir(hostDir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "file" {
		t.Errorf("host directory changed: %v %v", ents, err)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "file")); err != nil || string(b) != "host" {
		t.Errorf("host file changed: %q %v", b, err)
	}
}

func TestProcSymlink(t *testing.T) {
	for _, typ := range []string{"proc", "sysfs"} {
		t.Run(typ, func(t *testing.T) {
			root, hostDir, _ := attackEnv(t)
			dest := map[string]string{"proc": "/proc", "sysfs": "/sys"}[typ]
			if err := os.Remove(filepath.Join(root, dest)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(hostDir, filepath.Join(root, dest)); err != nil {
				t.Fatal(err)
			}
			c := &Config{Rootfs: root, Mounts: []specs.Mount{{Destination: dest, Type: typ, Source: typ}}}
			r := run(t, "attack", c, hostDir, 0)
			if !strings.Contains(r["prepare_err"], "symlink") {
				t.Errorf("prepare error %q, want a refusal of the symlink", r["prepare_err"])
			}
			hostUntouched(t, r, hostDir)
		})
	}
}

func TestEscapingDestinations(t *testing.T) {
	tests := []struct {
		name  string
		link  string // rootfs path made a symlink to hostDir, if any
		dest  func(hostDir string) string
		file  bool // bind the file src/payload instead of the directory
		check string
	}{
		{name: "dotdot", dest: func(h string) string { return "/../../../../../.." + h + "/x" }},
		{name: "symlink-dir", link: "/link", dest: func(string) string { return "/link/sub" }},
		{name: "symlink-leaf", link: "/leaf", dest: func(string) string { return "/leaf" }},
		{name: "symlink-file", link: "/etc/evil", dest: func(string) string { return "/etc/evil" }, file: true},
		{name: "symlink-dotdot", link: "/link", dest: func(string) string { return "/link/../../../../x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, hostDir, src := attackEnv(t)
			if tc.link != "" {
				target := hostDir
				if tc.file {
					target = filepath.Join(hostDir, "file")
				}
				if err := os.Symlink(target, filepath.Join(root, tc.link)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.file {
				src = filepath.Join(src, "payload")
			}
			c := &Config{Rootfs: root, Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc"},
				{Destination: tc.dest(hostDir), Type: "bind", Source: src, Options: []string{"rbind"}},
			}}
			r := run(t, "attack", c, hostDir, 0)
			if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
				t.Fatalf("errors: %v", r)
			}
			hostUntouched(t, r, hostDir)
			// The mount exists, inside the root.
			mounts, err := parseMountinfo(strings.NewReader(r["mountinfo"]))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, m := range mounts {
				if m.fstype != "proc" && m.mountpoint != "/" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("want one bind mount inside the container, got\n%s", r["mountinfo"])
			}
		})
	}
}

func TestRelativeDestination(t *testing.T) {
	root, hostDir, src := attackEnv(t)
	c := &Config{Rootfs: root, Mounts: []specs.Mount{{Destination: "data/x", Type: "bind", Source: src, Options: []string{"bind"}}}}
	r := run(t, "attack", c, hostDir, 0)
	if !strings.Contains(r["prepare_err"], `"data/x"`) || !strings.Contains(r["prepare_err"], "not an absolute path") {
		t.Errorf("prepare error %q", r["prepare_err"])
	}
}

func TestDevSymlinkedToHost(t *testing.T) {
	root, hostDir, _ := attackEnv(t)
	if err := os.Remove(filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	c := &Config{Rootfs: root, Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}}
	r := run(t, "attack", c, hostDir, 0)
	if r["prepare_err"]+r["pivot_err"]+r["finalize_err"] != "" {
		t.Fatalf("errors: %v", r)
	}
	hostUntouched(t, r, hostDir)
	if got := describe(filepath.Join(root, hostDir, "null")); got != "c 1:3 0666 0:0" {
		t.Errorf("null not made inside the root: %s", got)
	}
}

func TestMaskWithFakeDevNull(t *testing.T) {
	for _, plant := range []string{"symlink", "file"} {
		t.Run(plant, func(t *testing.T) {
			t.Setenv("COVE_ROOTFS_PLANT", plant)
			root, hostDir, _ := attackEnv(t)
			c := &Config{
				Rootfs: root,
				Mounts: []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
				},
				MaskedPaths: []string{"/proc/keys"},
			}
			r := run(t, "attack", c, hostDir, 0)
			if !strings.Contains(r["finalize_err"], "not the null device") {
				t.Errorf("finalize error %q, want a refusal of the fake /dev/null", r["finalize_err"])
			}
		})
	}
}
