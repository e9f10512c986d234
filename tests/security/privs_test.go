package security

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestPtraceJoiningExec is CVE-2016-9962: the container's pid 1 polls for
// new processes and attacks each one while it is not yet the exec'd
// command (PTRACE_ATTACH, PTRACE_SEIZE, process_vm_readv, /proc/PID/mem
// and environ). The joining process is the runtime with host privileges
// until it executes: every attack on it must fail.
func TestPtraceJoiningExec(t *testing.T) {
	e := newEnv(t, []string{"/bin/esc", "ptrace-attack", "/result"}, nil)
	const id = "esc-ptrace"
	pid := e.start(id)
	seen := func() int {
		b, _ := os.ReadFile(filepath.Join(e.rootfs, "result"))
		return strings.Count(string(b), "\n")
	}
	for i := range 30 {
		// The exec'd sleep lives a moment, so that an attack landing just
		// after its execve reads after=sleep rather than after=- (gone).
		if out, err := e.runtime("exec", id, "sleep", "0.1"); err != nil {
			b, _ := os.ReadFile(filepath.Join(e.rootfs, "result"))
			t.Fatalf("exec %d: %v: %s\nattacks so far:\n%s", i, err, out, b)
		}
	}
	if err := os.WriteFile(filepath.Join(e.rootfs, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !waitFor(15*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("attacker did not finish (%d lines)", seen())
	}
	b, err := os.ReadFile(filepath.Join(e.rootfs, "result"))
	if err != nil {
		t.Fatalf("no attack result: %v", err)
	}
	attempts := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(l) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["before"] == "sleep" || f["after"] == "sleep" {
			continue // the exec'd command itself may be traced
		}
		attempts++
		if f["result"] == "ok" {
			t.Errorf("attack on the joining runtime succeeded: %s", l)
		}
	}
	t.Logf("%d attacks on joining processes before they executed, all refused:\n%s", attempts, b)
	if attempts == 0 {
		t.Error("the attacker never saw a joining process before its execve: the attack was not exercised")
	}
}

// idsOf parses `esc ids` output.
func idsOf(t *testing.T, out string) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		base := 10
		if strings.HasPrefix(k, "Cap") {
			base = 16
		}
		n, err := strconv.ParseUint(v, base, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", l, err)
		}
		m[k] = n
	}
	return m
}

// fileCaps returns a security.capability xattr (VFS_CAP_REVISION_2) with
// the given permitted and inheritable sets, and the effective bit if asked.
func fileCaps(permitted, inheritable uint64, effective bool) []byte {
	b := make([]byte, 20)
	magic := uint32(0x02000000) // revision 2
	if effective {
		magic |= 1
	}
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(permitted))
	binary.LittleEndian.PutUint32(b[8:], uint32(inheritable))
	binary.LittleEndian.PutUint32(b[12:], uint32(permitted>>32))
	binary.LittleEndian.PutUint32(b[16:], uint32(inheritable>>32))
	return b
}

const (
	capKill     = 1 << unix.CAP_KILL
	capNetAdmin = 1 << unix.CAP_NET_ADMIN
	capSysAdmin = 1 << unix.CAP_SYS_ADMIN
	capSysPtr   = 1 << unix.CAP_SYS_PTRACE
)

// TestSetuidAndFileCaps is noNewPrivileges and CVE-2022-29162: a setuid-root
// copy of the helper and one with file capabilities (SYS_ADMIN, NET_ADMIN,
// SYS_PTRACE and KILL, permitted and inheritable) run as uid 1000. Under
// noNewPrivileges neither gains anything. Without it (the control, showing
// the binaries work) setuid gives euid 0, and file capabilities give only
// what the bounding set holds; inheritable and ambient stay empty.
func TestSetuidAndFileCaps(t *testing.T) {
	prep := func(e *env) {
		t.Helper()
		suid := filepath.Join(e.rootfs, "bin/esc-suid")
		fcaps := filepath.Join(e.rootfs, "bin/esc-fcaps")
		fcapsEff := filepath.Join(e.rootfs, "bin/esc-fcaps-eff")
		for _, p := range []string{suid, fcaps, fcapsEff} {
			b, err := os.ReadFile(filepath.Join(e.rootfs, "bin/esc"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Chmod(suid, 0o4755); err != nil {
			t.Fatal(err)
		}
		all := uint64(capKill | capNetAdmin | capSysAdmin | capSysPtr)
		if err := unix.Setxattr(fcaps, "security.capability", fileCaps(all, all, false), 0); err != nil {
			t.Fatalf("set file capabilities: %v", err)
		}
		if err := unix.Setxattr(fcapsEff, "security.capability", fileCaps(all, all, true), 0); err != nil {
			t.Fatalf("set file capabilities: %v", err)
		}
	}
	user := func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000}
	}
	for _, nnp := range []bool{true, false} {
		e := newEnv(t, nil, func(s *specs.Spec) {
			user(s)
			s.Process.NoNewPrivileges = nnp
		})
		prep(e)
		for _, bin := range []string{"esc-suid", "esc-fcaps", "esc-fcaps-eff"} {
			e.spec.Process.Args = []string{"/bin/" + bin, "ids"}
			e.writeSpec()
			what := bin + " noNewPrivileges=" + strconv.FormatBool(nnp)
			out, errOut, code := e.run("esc-" + bin)
			if code != 0 {
				// The kernel refuses to run a capability-dumb binary
				// (effective bit) with fewer capabilities than it asks for.
				if bin != "esc-fcaps-eff" || !strings.Contains(errOut, "operation not permitted") {
					t.Errorf("%s: exit %d: %s", what, code, errOut)
				}
				continue
			}
			ids := idsOf(t, out)
			t.Logf("%s: %v", what, ids)
			if ids["CapInh"] != 0 || ids["CapAmb"] != 0 {
				t.Errorf("%s: inheritable %#x, ambient %#x, want none", what, ids["CapInh"], ids["CapAmb"])
			}
			if extra := ids["CapPrm"] &^ ids["CapBnd"]; extra != 0 {
				t.Errorf("%s: permitted %#x above the bounding set %#x", what, ids["CapPrm"], ids["CapBnd"])
			}
			if ids["CapEff"]&(capSysAdmin|capNetAdmin|capSysPtr) != 0 {
				t.Errorf("%s: effective %#x holds capabilities outside the bounding set", what, ids["CapEff"])
			}
			switch {
			case nnp && ids["euid"] != 1000:
				t.Errorf("%s: gained privileges: euid %d", what, ids["euid"])
			case !nnp && bin == "esc-suid" && ids["euid"] != 0:
				t.Errorf("control %s: setuid did not work (euid %d): the test proves nothing", what, ids["euid"])
			case !nnp && bin == "esc-fcaps" && ids["CapPrm"] != capKill:
				t.Errorf("control %s: permitted %#x, want KILL only (file caps bounded)", what, ids["CapPrm"])
			}
		}
	}
	// Root in the default profile: inheritable and ambient empty, in the
	// container's process and in an exec'd one.
	e := newEnv(t, []string{"sleep", "100"}, nil)
	e.start("esc-caps-root")
	for _, out := range []string{e.mustRuntime("exec", "esc-caps-root", "/bin/esc", "ids")} {
		ids := idsOf(t, out)
		if ids["CapInh"] != 0 || ids["CapAmb"] != 0 || ids["CapPrm"] != ids["CapBnd"] {
			t.Errorf("root exec: %v, want empty inheritable and ambient, permitted = bounding", ids)
		}
	}
}

// TestDeviceCgroup: mknod of a block device is allowed where the spec's
// device rules allow "m", but opening it is denied; /dev/fuse, not in the
// default rules, cannot be opened either (created with mknod, which the
// rules allow for every node).
func TestDeviceCgroup(t *testing.T) {
	script := `echo "fuse-node $(test -e /dev/fuse && echo present || echo absent)"
mknod /tmp/loop b 7 200 && echo mknod-loop ok; echo "open-loop $(/bin/esc open /tmp/loop r)"
mknod /tmp/fuse c 10 229 && echo mknod-fuse ok; echo "open-fuse $(/bin/esc open /tmp/fuse rw)"`
	e := newEnv(t, sh(script), func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, "CAP_MKNOD")
		c.Effective = append(c.Effective, "CAP_MKNOD")
		c.Permitted = append(c.Permitted, "CAP_MKNOD")
		major := int64(7)
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: "b", Major: &major, Access: "m"})
	})
	out := e.mustRun("esc-devcg")
	t.Logf("results:\n%s", out)
	for _, want := range []string{"fuse-node absent", "mknod-loop ok", "open-loop EPERM", "open-fuse EPERM"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
}
