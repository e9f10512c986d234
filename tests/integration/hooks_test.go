package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	hook := filepath.Join(dir, "hook.sh")
	// Each hook appends its name, then the state it got on stdin.
	os.WriteFile(hook, []byte("#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> "+log+"\n"), 0o755)
	h := func(name string) []specs.Hook { return []specs.Hook{{Path: hook, Args: []string{"hook.sh", name}}} }
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			//lint:ignore SA1019 prestart is deprecated but still honoured
			Prestart:        h("prestart"),
			CreateRuntime:   h("createRuntime"),
			CreateContainer: h("createContainer"),
			StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer > /tmp/started"}}},
			Poststart:       h("poststart"),
			Poststop:        h("poststop"),
		}
		s.Annotations = map[string]string{"org.test": "yes"}
	})
	e.mustRuntime("create", "--bundle", e.bundle, "c1")
	lines := readHookLog(t, log)
	if got := hookNames(lines); got != "prestart createRuntime createContainer" {
		t.Fatalf("after create: hooks %q", got)
	}
	var st specs.State
	if err := json.Unmarshal([]byte(strings.SplitN(lines[1], " ", 2)[1]), &st); err != nil {
		t.Fatal(err)
	}
	if st.ID != "c1" || st.Pid == 0 || st.Bundle != e.bundle || st.Status != "creating" || st.Annotations["org.test"] != "yes" {
		t.Errorf("createRuntime state %+v", st)
	}
	e.mustRuntime("start", "c1")
	if got := hookNames(readHookLog(t, log)); got != "prestart createRuntime createContainer poststart" {
		t.Fatalf("after start: hooks %q", got)
	}
	// startContainer ran inside the container, before the process.
	if b, err := os.ReadFile(filepath.Join(e.bundle, "rootfs/tmp/started")); err != nil || string(b) != "startContainer\n" {
		t.Errorf("startContainer hook: %q %v", b, err)
	}
	e.mustRuntime("delete", "--force", "c1")
	lines = readHookLog(t, log)
	if got := hookNames(lines); got != "prestart createRuntime createContainer poststart poststop" {
		t.Fatalf("after delete: hooks %q", got)
	}
}

func readHookLog(t *testing.T, path string) []string {
	t.Helper()
	b, _ := os.ReadFile(path)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func hookNames(lines []string) string {
	var names []string
	for _, l := range lines {
		names = append(names, strings.SplitN(l, " ", 2)[0])
	}
	return strings.Join(names, " ")
}

func TestFailingHookCleansUp(t *testing.T) {
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-broke >&2; exit 7"}}}}
	})
	out, err := e.runtime("create", "--bundle", e.bundle, "c1")
	if err == nil || !strings.Contains(out, "hook-broke") {
		t.Fatalf("failing createRuntime hook: %v %q", err, out)
	}
	if l := e.mustRuntime("list", "-q"); l != "" {
		t.Errorf("container left after failed hook: %q", l)
	}

	e2 := newEnv(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "10"}, Timeout: ptr(1)}}}
	})
	start := time.Now()
	out, err = e2.runtime("create", "--bundle", e2.bundle, "c2")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("hook timeout: err %v after %s: %q", err, time.Since(start), out)
	}
}
