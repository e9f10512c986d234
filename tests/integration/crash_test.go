package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestKilledCreateIsCleanedByDeleteForce kills cove-runc create while a
// createRuntime hook runs (the init exists, cgroups exist) and checks that
// delete --force removes the process, the cgroup and the state.
func TestKilledCreateIsCleanedByDeleteForce(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "hook-running")
	e := newEnv(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + ready + "; sleep 100"}}}}
	})
	cmd := exec.Command(runtimeBin, "--root", e.root, "create", "--bundle", e.bundle, "c1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var st specs.State
	for i := 0; ; i++ {
		b, err := os.ReadFile(ready)
		if err == nil && json.Unmarshal(b, &st) == nil && st.Pid > 0 {
			break
		}
		if i > 500 {
			cmd.Process.Kill()
			t.Fatal("hook never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cg := containerCgroup(t, st.Pid, "pids")
	cmd.Process.Kill()
	cmd.Wait()

	if got := e.state("c1")["status"]; got != "creating" && got != "stopped" {
		t.Errorf("status after killed create: %v", got)
	}
	e.mustRuntime("delete", "--force", "c1")
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(st.Pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if syscall.Kill(st.Pid, 0) == nil {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/stat")
		if !strings.Contains(string(b), ") Z ") {
			t.Errorf("init %d alive after delete --force", st.Pid)
		}
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left", cg)
	}
	// Only the seccomp filter cache may stay in the root.
	if ents, _ := os.ReadDir(e.root); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "@cache" {
		t.Errorf("state left: %v", ents)
	}
}
