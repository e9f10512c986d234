package hooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// script writes an executable /bin/sh script to dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testState() *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          "c1",
		Status:      specs.StateCreated,
		Pid:         1234,
		Bundle:      "/bundles/c1",
		Annotations: map[string]string{"a": "b"},
	}
}

func intp(i int) *int { return &i }

func TestStateOnStdin(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "state.json")
	h := specs.Hook{Path: script(t, dir, "h", `cat > "$1"`+"\n"), Args: []string{"h", out}}
	st := testState()
	if err := Run([]specs.Hook{h}, st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	if !reflect.DeepEqual(&got, st) {
		t.Fatalf("got %+v, want %+v", got, *st)
	}
}

func TestArgsAndEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := script(t, dir, "h", `{ echo "argv0=$0"; echo "args=$*"; echo "FOO=$FOO"; echo "HOME=${HOME-unset}"; } > `+out+"\n")
	h := specs.Hook{Path: p, Args: []string{"/custom/argv0", "one", "two words"}, Env: []string{"FOO=bar baz"}}
	if err := Run([]specs.Hook{h}, testState()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// sh sets $0 to the script path it ran; argv[0] itself is checked below.
	want := "args=one two words\nFOO=bar baz\nHOME=unset\n"
	if got := string(b); !strings.HasSuffix(got, want) {
		t.Fatalf("got %q, want suffix %q", got, want)
	}
}

func TestArgv0(t *testing.T) {
	// /proc/self/cmdline of a real binary shows argv[0] as given.
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	h := specs.Hook{Path: "/bin/sh", Args: []string{"my-argv0", "-c", `echo "$0" > ` + out}}
	if err := Run([]specs.Hook{h}, testState()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != "my-argv0" {
		t.Fatalf("argv0 = %q", got)
	}
}

func TestNoArgsUsesPath(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := script(t, dir, "h", `echo "$#" > `+out+"\n")
	if err := Run([]specs.Hook{{Path: p}}, testState()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != "0" {
		t.Fatalf("argc-1 = %q", got)
	}
}

func TestFailure(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "fail", "echo line one >&2\necho 'it broke' >&2\nexit 3\n")
	err := Run([]specs.Hook{{Path: p}}, testState())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{p, "exit status 3", "line one; it broke"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStderrTail(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "noisy", "i=0; while [ $i -lt 2000 ]; do echo noise $i >&2; i=$((i+1)); done; echo last >&2; exit 1\n")
	err := Run([]specs.Hook{{Path: p}}, testState())
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.HasSuffix(err.Error(), "noise 1997; noise 1998; noise 1999; last") || len(err.Error()) > 400 {
		t.Fatalf("error %q", err)
	}
}

func TestMissingExecutable(t *testing.T) {
	err := Run([]specs.Hook{{Path: "/nonexistent/hook"}}, testState())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/hook") {
		t.Fatalf("error %v", err)
	}
}

func TestTimeout(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "slow", "echo started >&2\nsleep 10\n")
	start := time.Now()
	err := Run([]specs.Hook{{Path: p, Timeout: intp(1)}}, testState())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("no error")
	}
	if elapsed > 2500*time.Millisecond {
		t.Fatalf("took %s", elapsed)
	}
	for _, want := range []string{p, "timed out after 1s", "started"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestBadTimeout(t *testing.T) {
	err := Run([]specs.Hook{{Path: "/bin/true", Timeout: intp(0)}}, testState())
	if err == nil || !strings.Contains(err.Error(), "not positive") {
		t.Fatalf("error %v", err)
	}
}

func TestOrderAndStop(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	mk := func(name, extra string) specs.Hook {
		return specs.Hook{Path: script(t, dir, name, "echo "+name+" >> "+log+"\n"+extra)}
	}
	hooks := []specs.Hook{mk("first", ""), mk("second", ""), mk("third", "exit 1\n"), mk("fourth", "")}
	err := Run(hooks, testState())
	if err == nil || !strings.Contains(err.Error(), hooks[2].Path) {
		t.Fatalf("error %v", err)
	}
	b, _ := os.ReadFile(log)
	if got := string(b); got != "first\nsecond\nthird\n" {
		t.Fatalf("ran %q", got)
	}
}

func TestNoStrayFds(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fds")
	// Files the runtime has open (Go opens everything close-on-exec) must
	// not reach the hook. Fds the test process itself inherited without
	// close-on-exec are the caller's business and are not checked here.
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "ls /proc/self/fd > " + out}}
	if err := Run([]specs.Hook{h}, testState()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	for _, fd := range strings.Fields(string(b)) {
		for _, own := range []*os.File{f, r, w} {
			if fd == strconv.Itoa(int(own.Fd())) {
				t.Errorf("hook inherited fd %s of %s (all: %q)", fd, own.Name(), b)
			}
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	b.Write([]byte("abc"))
	b.Write([]byte("defgh"))
	b.Write([]byte("ij"))
	if got := string(b.buf); got != "cdefghij" {
		t.Fatalf("buf %q", got)
	}
	b.Write([]byte("0123456789"))
	if got := string(b.buf); got != "23456789" {
		t.Fatalf("buf %q", got)
	}
}
