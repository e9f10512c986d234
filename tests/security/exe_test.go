package security

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/tests/internal/testenv"
)

// TestProcSelfExeOverwrite is CVE-2019-5736. The container's pid 1 watches
// for new processes and tries to write the runtime binary through
// /proc/PID/exe: directly while they run, and through /proc/self/fd
// reopens of O_PATH handles once they are gone. Execs make the runtime
// binary itself the container's process: a script whose interpreter is
// /proc/self/exe, and /proc/self/exe as the command. The binary on the host
// must keep its hash and every write must fail.
//
// Both ways of sealing are attacked: the read-only overlayfs and the sealed
// memfd (_COVE_SEAL=memfd). The container gets the runtime's shared
// libraries so that it can execute it at all.
func TestProcSelfExeOverwrite(t *testing.T) {
	for _, method := range []string{"overlay", "memfd"} {
		t.Run(method, func(t *testing.T) { exeOverwrite(t, method, false) })
	}
	// With CAP_SYS_ADMIN the attacker may also open /proc/PID/map_files,
	// which names the file really mapped.
	t.Run("overlay-sysadmin", func(t *testing.T) { exeOverwrite(t, "overlay", true) })
}

func exeOverwrite(t *testing.T, method string, sysAdmin bool) {
	e := newEnv(t, []string{"/bin/esc", "exe-attack", "/result"}, func(s *specs.Spec) {
		if sysAdmin {
			c := s.Process.Capabilities
			c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
			c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
			c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
		}
	})
	e.extraEnv = []string{"_COVE_SEAL=" + method}
	copyLibs(t, runtimeBin, e.rootfs)
	// A private copy: a working exploit damages only it.
	e.bin = filepath.Join(e.dir, "cove-runc")
	if out, err := exec.Command("cp", runtimeBin, e.bin).CombinedOutput(); err != nil {
		t.Fatalf("copy cove-runc: %v: %s", err, out)
	}
	before := hashFile(t, e.bin)
	id := "esc-exe-" + method
	if sysAdmin {
		id += "-sysadmin"
	}
	pid := e.start(id)

	// "init" with _COVE_SYNCFD=0 keeps the runtime binary running in the
	// container, reading its stdin, until we close it.
	script := "#!/proc/self/exe init\n"
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/evil"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"/bin/evil"},
		{"/proc/self/exe", "init"},
	} {
		cmd := e.command(append([]string{"exec", "-e", "_COVE_SYNCFD=0", id}, args...)...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		stdin.Close()
		if err := testenv.RunTimeout(cmd, 20*time.Second); err != nil && !strings.Contains(err.Error(), "exit status") && !strings.Contains(err.Error(), "already started") {
			t.Fatalf("exec %v: %v", args, err)
		}
		cmd.Wait()
	}
	// The original exploit's shape: /bin/sh replaced, exec'd, gone at once.
	sh := filepath.Join(e.rootfs, "bin/sh")
	os.Remove(sh)
	if err := os.WriteFile(sh, []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runtime("exec", id, "/bin/sh")

	if err := os.WriteFile(filepath.Join(e.rootfs, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFor(15*time.Second, func() bool { return !alive(pid) }) {
		t.Fatal("attacker did not finish")
	}
	b, err := os.ReadFile(filepath.Join(e.rootfs, "result"))
	if err != nil {
		t.Fatalf("no attack result: %v", err)
	}
	res := string(b)
	t.Logf("attack results:\n%s", res)
	if after := hashFile(t, e.bin); after != before {
		t.Fatalf("runtime binary changed: sha256 %s -> %s", before, after)
	}
	held := 0
	for _, l := range strings.Split(strings.TrimSpace(res), "\n") {
		// Getting an O_PATH handle (of the exe, or through map_files) is
		// not yet an attack; writing through it is.
		if strings.HasSuffix(l, "result=ok") && !strings.HasPrefix(l, "op=open-path") && !strings.HasPrefix(l, "op=map-files") {
			t.Errorf("attack step succeeded: %s", l)
		}
		if strings.HasPrefix(l, "op=open-path") && strings.HasSuffix(l, "result=ok") {
			held++
		}
	}
	// The attack must have got as far as a handle of the runtime binary
	// running in the container, or the test proved nothing.
	if held == 0 {
		t.Error("the attacker never got a handle of the runtime's exe: the attack was not exercised")
	}
}

// copyLibs copies the shared libraries and loader bin needs (ldd) into
// rootfs at their host paths.
func copyLibs(t *testing.T, bin, rootfs string) {
	t.Helper()
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Logf("ldd %s: %v (static?)", bin, err)
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if !strings.HasPrefix(f, "/") {
			continue
		}
		dst := filepath.Join(rootfs, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("cp", "-L", f, dst).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", f, err, b)
		}
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i:], ") Z") && !strings.HasPrefix(s[i:], ") X")
}
