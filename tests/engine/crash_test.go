package engine_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"cove/internal/engine"
)

// A cove killed with SIGKILL at each step of create, start and rm leaves
// nothing that `cove system check` does not repair, and the container is
// either gone or usable afterwards.
func TestEngineCrashAtEachStep(t *testing.T) {
	// A bridge network of the test's own, so start:network happens.
	prefix := fmt.Sprintf("cc%d", os.Getpid()%1000)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", prefix+"0").Run()
		exec.Command("nft", "delete", "table", "inet", prefix).Run()
	})
	e := newEnv(t)
	e.extra = []string{"COVE_DEFAULT_NETWORK=bridge", "COVE_NETWORK_PREFIX=" + prefix,
		"COVE_DEFAULT_SUBNET=" + fmt.Sprintf("10.214.%d.0/24", os.Getpid()%200)}
	for _, step := range engine.CrashSteps {
		t.Run(strings.ReplaceAll(step, ":", "-"), func(t *testing.T) {
			name := "ceng-crash-" + strings.ReplaceAll(step, ":", "-")
			if strings.HasPrefix(step, "rm:") {
				e.mustCove("create", "--name", name, img, "true")
			}
			cmd := e.command(t.Context(), "run", "--name", name, img, "sleep", "100")
			if strings.HasPrefix(step, "rm:") {
				cmd = e.command(t.Context(), "rm", name)
			}
			cmd.Env = append(cmd.Env, "COVE_TEST_CRASH="+step)
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
				t.Fatalf("cove did not die at %s: %v\n%s", step, err, out)
			}
			e.mustCove("system", "check")
			// Whatever is left can be removed, and the name is usable again.
			if _, code := e.cove("inspect", name); code == 0 {
				e.mustCove("rm", "-f", name)
			}
			if out := e.mustCove("system", "check"); out != "ok" {
				t.Fatalf("second system check: %s", out)
			}
			e.mustCove("run", "--rm", "--name", name, img, "true")
			if m := mountsUnder(e.runRoot); len(m) > 0 {
				t.Fatalf("mounts left: %v", m)
			}
			eventually(t, 5*time.Second, "supervisors to exit", func() bool { return len(monitorsUnder(e.runRoot)) == 0 })
			layers, _ := os.ReadDir(filepath.Join(e.root, "snapshots", "active"))
			if len(layers) != 0 {
				t.Fatalf("container layers left: %d", len(layers))
			}
			if links, _ := exec.Command("ip", "-o", "link").Output(); strings.Contains(string(links), prefix+"v") {
				t.Fatalf("veth left:\n%s", links)
			}
		})
	}
}

// Killing cove (foreground run) never kills the container; its
// supervisor keeps running it and cleans up at its exit.
func TestEngineSurvivesKillOfCove(t *testing.T) {
	e := newEnv(t)
	cmd := e.command(t.Context(), "run", "--name", "ceng-survive", img, "sh", "-c", "echo started; sleep 1.5; echo finished")
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "started", func() bool { return strings.Contains(out.String(), "started") })
	cmd.Process.Kill()
	cmd.Wait()
	if got := e.inspect("ceng-survive", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after kill -9 of cove: %s", got)
	}
	if got := e.mustCove("wait", "ceng-survive"); got != "0" {
		t.Fatalf("wait: %s", got)
	}
	if logs := e.mustCove("logs", "ceng-survive"); logs != "started\nfinished" {
		t.Fatalf("logs: %q", logs)
	}
	// The supervisor, left without its client, cleaned up: no run directory.
	eventually(t, 10*time.Second, "cleanup by the supervisor", func() bool {
		_, err := os.Stat(filepath.Join(e.runRoot, e.inspect("ceng-survive", "{{.Id}}")))
		return os.IsNotExist(err)
	})
}

// kill -9 of the supervisor: the container keeps running, ps reports the
// supervisor lost, stop and rm still work.
func TestEngineSupervisorLost(t *testing.T) {
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "ceng-lost", img, "sleep", "100")
	b, err := os.ReadFile(filepath.Join(e.runRoot, id, "monitor.pid"))
	if err != nil {
		t.Fatal(err)
	}
	mpid, _ := strconv.Atoi(strings.Fields(string(b))[0])
	pid, _ := strconv.Atoi(e.inspect(id, "{{.State.Pid}}"))
	syscall.Kill(mpid, syscall.SIGKILL)
	eventually(t, 5*time.Second, "supervisor gone", func() bool { return syscall.Kill(mpid, 0) != nil })
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the container died with its supervisor")
	}
	if got := e.mustCove("ps", "--format", "{{.Status}}"); !strings.Contains(got, "supervisor lost") {
		t.Fatalf("ps: %q", got)
	}
	if out, _ := e.cove("system", "check", "--dry-run"); !strings.Contains(out, "runs without its supervisor") {
		t.Fatalf("system check: %q", out)
	}
	if out := e.mustCove("exec", "ceng-lost", "echo", "still"); out != "still" {
		t.Fatalf("exec with a lost supervisor: %q", out)
	}
	e.mustCove("stop", "-t", "1", "ceng-lost")
	if syscall.Kill(pid, 0) == nil {
		t.Fatal("container still runs after stop")
	}
	e.mustCove("rm", "ceng-lost")
}

// A reboot (simulated: every supervisor and container killed, the run
// root wiped) leaves containers exited, and they start again.
func TestEngineAfterReboot(t *testing.T) {
	e := newEnv(t)
	id := e.mustCove("run", "-d", "--name", "ceng-boot", img, "sleep", "100")
	always := e.mustCove("run", "-d", "--name", "ceng-always-boot", "--restart", "always", img, "sleep", "100")
	stopped := e.mustCove("run", "-d", "--name", "ceng-stopped-boot", "--restart", "always", img, "sleep", "100")
	e.mustCove("stop", "-t", "0", stopped)
	for _, c := range []string{id, always} {
		b, _ := os.ReadFile(filepath.Join(e.runRoot, c, "monitor.pid"))
		mpid, _ := strconv.Atoi(strings.Fields(string(b))[0])
		pid, _ := strconv.Atoi(e.inspect(c, "{{.State.Pid}}"))
		syscall.Kill(mpid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
		eventually(t, 5*time.Second, "container gone", func() bool { return syscall.Kill(pid, 0) != nil })
	}
	for _, m := range mountsUnder(e.runRoot) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	ents, _ := os.ReadDir(e.runRoot)
	for _, ent := range ents {
		os.RemoveAll(filepath.Join(e.runRoot, ent.Name()))
	}
	if got := e.inspect("ceng-boot", "{{.State.Status}}"); got != "exited" {
		t.Fatalf("after reboot: %s", got)
	}
	e.mustCove("system", "check")
	// The boot hook brings back --restart always, not the others.
	if got := e.mustCove("system", "restart-policy"); got != always {
		t.Fatalf("restart-policy started %q, want only %s", got, always)
	}
	if got := e.inspect(always, "{{.State.Status}}"); got != "running" {
		t.Fatalf("--restart always after the boot hook: %s", got)
	}
	if got := e.inspect(stopped, "{{.State.Status}}"); got != "exited" {
		t.Fatalf("stopped --restart always container after the boot hook: %s", got)
	}
	e.mustCove("start", "ceng-boot")
	if got := e.inspect("ceng-boot", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after start: %s", got)
	}
}
