package caps

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv selects a scenario run by TestMain in a re-executed test binary,
// so that capability changes never touch the test process itself.
const childEnv = "COVE_CAPS_TEST_CHILD"

func TestMain(m *testing.M) {
	if scenario := os.Getenv(childEnv); scenario != "" {
		runtime.LockOSThread()
		if err := runChild(scenario); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// snapshot is one reading of the five sets, as a child prints it.
type snapshot struct {
	Eff, Perm, Inh, Bnd, Amb Set
}

func printCurrent() error {
	var s snapshot
	var err error
	s.Eff, s.Perm, s.Inh, s.Bnd, s.Amb, err = Current()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}

func envSet(name string) Set {
	v, err := strconv.ParseUint(os.Getenv(name), 0, 64)
	if err != nil {
		panic(fmt.Sprintf("bad %s: %v", name, err))
	}
	return Set(v)
}

func runChild(scenario string) error {
	switch scenario {
	case "apply":
		if err := DropBounding(envSet("BND")); err != nil {
			return err
		}
		if err := Apply(envSet("EFF"), envSet("PERM"), envSet("INH"), envSet("AMB")); err != nil {
			return err
		}
		return printCurrent()
	case "setuid":
		// Keep the permitted set across the switch to uid 1000 (this thread
		// only: raw setresgid/setresuid), then raise the effective set again.
		want, amb := envSet("EFF"), envSet("AMB")
		ids := Set(1<<6 | 1<<7) // CAP_SETGID, CAP_SETUID
		if err := DropBounding(want | ids); err != nil {
			return err
		}
		if err := Apply(want|ids, want|ids, 0, 0); err != nil {
			return err
		}
		if err := SetKeepCaps(true); err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, 1000, 1000, 1000); e != 0 {
			return fmt.Errorf("setresgid: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 1000, 1000, 1000); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
		if err := printCurrent(); err != nil {
			return err
		}
		if err := SetKeepCaps(false); err != nil {
			return err
		}
		if err := Apply(want, want, amb, amb); err != nil {
			return err
		}
		return printCurrent()
	case "dropnosetpcap":
		kill := Set(1 << 5)
		if err := Apply(kill, kill, 0, 0); err != nil {
			return err
		}
		err := DropBounding(0)
		if err == nil {
			return fmt.Errorf("DropBounding without CAP_SETPCAP succeeded")
		}
		fmt.Fprintln(os.Stdout, err)
		return nil
	}
	return fmt.Errorf("unknown scenario %q", scenario)
}

// runScenario re-executes the test binary in a child scenario and returns
// the snapshots it printed.
func runScenario(t *testing.T, scenario string, env ...string) []snapshot {
	t.Helper()
	out := runScenarioRaw(t, scenario, env...)
	var snaps []snapshot
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var s snapshot
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("decode child output %q: %v", out, err)
		}
		snaps = append(snaps, s)
	}
	return snaps
}

func runScenarioRaw(t *testing.T, scenario string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+scenario)
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v: %s", scenario, err, stderr.String())
	}
	return string(out)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// hostBounding is the test process's bounding set: children cannot gain
// anything outside it (CAP_SYS_RESOURCE is missing on some hosts).
func hostBounding(t *testing.T) Set {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, _, bnd, _, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	return bnd
}

func hexEnv(name string, s Set) string {
	return fmt.Sprintf("%s=%#x", name, uint64(s))
}

func TestLast(t *testing.T) {
	last := Last()
	if last < 36 || last > 63 {
		t.Fatalf("Last() = %d", last)
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skip(err)
	}
	if want, _ := strconv.Atoi(strings.TrimSpace(string(b))); want != last {
		t.Fatalf("Last() = %d, cap_last_cap = %d", last, want)
	}
}

func TestCurrent(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _, _, bnd, _, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	if bnd == 0 {
		t.Fatal("empty bounding set")
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tx\nCapInh:\t0000000000000001\nCapPrm:\t0000000000000002\n" +
		"CapEff:\t0000000000000004\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000008\n"
	eff, perm, inh, bnd, amb, err := parseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if inh != 1 || perm != 2 || eff != 4 || bnd != 0x1fffeffffff || amb != 8 {
		t.Fatalf("got eff=%x perm=%x inh=%x bnd=%x amb=%x", eff, perm, inh, bnd, amb)
	}
	if _, _, _, _, _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no error for status without capability lines")
	}
	if _, _, _, _, _, err := parseStatus([]byte("CapEff:\tzz\n")); err == nil {
		t.Fatal("no error for bad hex")
	}
}

func TestApply(t *testing.T) {
	requireRoot(t)
	host := hostBounding(t)
	def, _ := Parse([]string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"})
	setpcap, _ := Parse([]string{"CAP_SETPCAP"})
	nbs, _ := Parse([]string{"CAP_NET_BIND_SERVICE"})
	tests := []struct {
		name                     string
		bnd, eff, perm, inh, amb Set
	}{
		{name: "runc default", bnd: def, eff: def, perm: def},
		{name: "empty", bnd: 0, eff: 0, perm: 0},
		{name: "effective subset", bnd: def | setpcap, eff: nbs, perm: def | setpcap},
		{name: "inheritable and ambient", bnd: def, eff: def, perm: def, inh: nbs, amb: nbs},
		{name: "all of host", bnd: host, eff: host, perm: host},
		// Bits above the kernel's last capability are ignored.
		{name: "above last", bnd: def | 1<<63, eff: def | 1<<63, perm: def | 1<<63, inh: 1 << 63, amb: 1 << 63},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snaps := runScenario(t, "apply", hexEnv("BND", tt.bnd), hexEnv("EFF", tt.eff),
				hexEnv("PERM", tt.perm), hexEnv("INH", tt.inh), hexEnv("AMB", tt.amb))
			if len(snaps) != 1 {
				t.Fatalf("got %d snapshots", len(snaps))
			}
			last := Last()
			want := snapshot{
				Eff: tt.eff.upTo(last), Perm: tt.perm.upTo(last), Inh: tt.inh.upTo(last),
				Bnd: tt.bnd.upTo(last) & host, Amb: tt.amb.upTo(last),
			}
			if snaps[0] != want {
				t.Fatalf("got  %+v\nwant %+v", snaps[0], want)
			}
		})
	}
}

func TestApplyAfterSetuid(t *testing.T) {
	requireRoot(t)
	want, _ := Parse([]string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"})
	amb, _ := Parse([]string{"CAP_KILL"})
	snaps := runScenario(t, "setuid", hexEnv("EFF", want), hexEnv("AMB", amb))
	if len(snaps) != 2 {
		t.Fatalf("got %d snapshots", len(snaps))
	}
	ids, _ := Parse([]string{"CAP_SETGID", "CAP_SETUID"})
	// Right after setresuid(1000) with keepcaps: permitted kept, effective cleared.
	if snaps[0].Perm != want|ids || snaps[0].Eff != 0 {
		t.Fatalf("after setuid: %+v, want perm %#x and empty effective", snaps[0], uint64(want|ids))
	}
	// Apply brings the effective set back, drops SETUID/SETGID from
	// permitted and raises the ambient set (which needs inheritable).
	got := snaps[1]
	if got.Eff != want || got.Perm != want || got.Inh != amb || got.Amb != amb || got.Bnd != want|ids {
		t.Fatalf("after Apply: %+v, want eff/perm %#x, inh/amb %#x, bnd %#x",
			got, uint64(want), uint64(amb), uint64(want|ids))
	}
}

func TestDropBoundingNeedsSetpcap(t *testing.T) {
	requireRoot(t)
	out := runScenarioRaw(t, "dropnosetpcap")
	if !strings.Contains(out, "drop bounding capability CAP_CHOWN") || !strings.Contains(out, "operation not permitted") {
		t.Fatalf("unexpected error text %q", out)
	}
}
