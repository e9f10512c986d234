package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: each broken bundle or argument gets a one-line error that
// names the problem, exit code 1, and leaves no state, cgroup or process.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string // replaces config.json when set
		edit   func(e *env)
		id     string
		want   string
	}{
		{name: "syntax", config: `{"ociVersion": "1.0.2", "process": {`, want: "config.json"},
		{name: "type", config: `{"ociVersion": "1.0.2", "process": {"args": "notalist"}}`, want: "process.args"},
		{name: "major", config: `{"ociVersion": "2.0.0", "root": {"path": "rootfs"}, "process": {"args": ["true"], "cwd": "/"}}`, want: "ociVersion"},
		{name: "capability", edit: func(e *env) {
			e.spec.Process.Capabilities.Bounding = append(e.spec.Process.Capabilities.Bounding, "CAP_NOPE")
		}, want: "CAP_NOPE"},
		{name: "relative-cwd", edit: func(e *env) { e.spec.Process.Cwd = "tmp" }, want: "process.cwd"},
		{name: "missing-root", edit: func(e *env) { e.spec.Root.Path = "nothere" }, want: "root.path"},
		{name: "slash-id", id: "a/b", want: "id"},
		{name: "dotdot-id", id: "..", want: "id"},
		{name: "sysctl-host", edit: func(e *env) { e.spec.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/tmp/x"} }, want: "kernel.core_pattern"},
		{name: "apparmor", edit: func(e *env) { e.spec.Process.ApparmorProfile = "docker-default" }, want: "apparmorProfile"},
		{name: "sysctl-inject", edit: func(e *env) { e.spec.Linux.Sysctl = map[string]string{"kernel.shmmax": "1+kernel.core_pattern=|/x"} }, want: "sysctl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, []string{"true"}, nil)
			if tc.edit != nil {
				tc.edit(e)
				e.writeSpec()
			}
			if tc.config != "" {
				os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(tc.config), 0o644)
			}
			id := tc.id
			if id == "" {
				id = "bad1"
			}
			out, err := e.runtime("create", "--bundle", e.bundle, id)
			if err == nil {
				t.Fatalf("create succeeded: %q", out)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 || !strings.Contains(out, tc.want) {
				t.Errorf("error output %q, want one line naming %q", out, tc.want)
			}
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Errorf("state left behind: %v", ents)
			}
			if _, err := os.Stat(filepath.Join(cgroupMount("pids"), id)); err == nil && tc.id == "" {
				t.Errorf("cgroup left behind")
			}
		})
	}
	t.Run("bundle-not-dir", func(t *testing.T) {
		e := newEnv(t, []string{"true"}, nil)
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o644)
		if out, err := e.runtime("create", "--bundle", f, "x"); err == nil || !strings.Contains(out, f) {
			t.Errorf("bundle that is a file: %v %q", err, out)
		}
	})
	t.Run("exec-not-found", func(t *testing.T) {
		e := newEnv(t, []string{"/no/such/binary"}, nil)
		out, err := e.runtime("create", "--bundle", e.bundle, "x")
		if err == nil || !strings.Contains(out, "/no/such/binary") {
			t.Errorf("missing executable: %v %q", err, out)
		}
		if l := e.mustRuntime("list", "-q"); l != "" {
			t.Errorf("container left: %q", l)
		}
	})
}
