package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEngineRestartPolicy(t *testing.T) {
	e := newEnv(t)
	// on-failure:2 runs the command three times in all, then stays exited.
	e.mustCove("run", "-d", "--name", "ceng-onfail", "--restart", "on-failure:2", img, "sh", "-c", "echo run; exit 3")
	eventually(t, 20*time.Second, "on-failure retries to end", func() bool {
		out, _ := e.cove("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.RestartCount}}", "ceng-onfail")
		return strings.TrimSpace(out) == "exited false 2"
	})
	if logs := e.mustCove("logs", "ceng-onfail"); logs != "run\nrun\nrun" {
		t.Fatalf("on-failure:2 logs: %q", logs)
	}
	// always restarts a zero exit too; stop ends it for good.
	e.mustCove("run", "-d", "--name", "ceng-always", "--restart", "always", img, "sh", "-c", "echo run; sleep 0.2")
	eventually(t, 20*time.Second, "two restarts", func() bool {
		out, _ := e.cove("inspect", "-f", "{{.RestartCount}}", "ceng-always")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n >= 2
	})
	e.mustCove("stop", "-t", "1", "ceng-always")
	n := e.inspect("ceng-always", "{{.RestartCount}}")
	time.Sleep(1500 * time.Millisecond)
	if got := e.inspect("ceng-always", "{{.State.Status}} {{.RestartCount}}"); got != "exited "+n {
		t.Fatalf("after stop of --restart always: %q (restarts before %s)", got, n)
	}
	if _, code := e.cove("run", "--rm", "--restart", "always", img, "true"); code != 125 {
		t.Fatal("--rm with --restart accepted")
	}
	if _, code := e.cove("run", "--restart", "sometimes", img, "true"); code != 125 {
		t.Fatal("bad --restart accepted")
	}
}

// 50 parallel `cove run --rm` of one image all succeed and leave nothing.
func TestEngineParallelRuns(t *testing.T) {
	e := newEnv(t)
	const n = 50
	parent := fmt.Sprintf("/ceng-par-%d", os.Getpid())
	defer func() {
		for _, h := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "unified"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, parent))
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, code := e.cove("run", "--rm", "--cgroup-parent", parent, "--name", fmt.Sprintf("ceng-par-%d", i), img, "echo", fmt.Sprint("hi ", i))
			if code != 0 || strings.TrimSpace(out) != fmt.Sprint("hi ", i) {
				errs <- fmt.Sprintf("run %d: exit %d: %s", i, code, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ids := e.mustCove("ps", "-aq"); ids != "" {
		t.Fatalf("containers left: %s", ids)
	}
	eventually(t, 10*time.Second, "supervisors to exit", func() bool { return len(monitorsUnder(e.runRoot)) == 0 })
	if m := mountsUnder(e.runRoot); len(m) > 0 {
		t.Fatalf("mounts left: %v", m)
	}
	layers, _ := os.ReadDir(filepath.Join(e.root, "snapshots", "active"))
	if len(layers) != 0 {
		t.Fatalf("%d container layers left", len(layers))
	}
	ents, _ := os.ReadDir(filepath.Join(e.runRoot, "runtimes", "cove-runc"))
	for _, ent := range ents {
		if len(ent.Name()) == 64 {
			t.Fatalf("runtime state left: %s", ent.Name())
		}
	}
	// No cgroups left behind by the runtime (cgroup v1 memory hierarchy).
	for _, h := range []string{"memory", "pids", "freezer", "devices"} {
		cg, err := os.ReadDir(filepath.Join("/sys/fs/cgroup", h, parent))
		if err != nil {
			t.Fatalf("cgroup parent %s in %s: %v", parent, h, err)
		}
		for _, c := range cg {
			if c.IsDir() {
				t.Fatalf("cgroup left: %s/%s/%s", h, parent, c.Name())
			}
		}
	}
}
