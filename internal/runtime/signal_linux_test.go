package runtime

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"9", unix.SIGKILL, true},
		{"KILL", unix.SIGKILL, true},
		{"SIGKILL", unix.SIGKILL, true},
		{"sigterm", unix.SIGTERM, true},
		{"hup", unix.SIGHUP, true},
		{"RTMIN", 34, true},
		{"RTMIN+3", 37, true},
		{"SIGRTMAX-1", 63, true},
		{"64", 64, true},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"SIG", 0, false},
		{"NOPE", 0, false},
		{"RTMIN+31", 0, false},
		{"RTMIN+x", 0, false},
	} {
		got, err := ParseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseSignal: any input gives an error or a signal in 1..64.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"9", "KILL", "SIGRTMIN+3", "RTMAX-2", "sigusr1", "", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err == nil && (sig < 1 || sig > 64) {
			t.Fatalf("ParseSignal(%q) = %d", s, sig)
		}
	})
}

func TestProcStart(t *testing.T) {
	start, zombie, err := procStart(unix.Getpid())
	if err != nil || start == 0 || zombie {
		t.Fatalf("procStart(self) = %d, %v, %v", start, zombie, err)
	}
	if _, _, err := procStart(1 << 30); err == nil {
		t.Error("procStart of a missing pid succeeded")
	}
}

func TestStatusWithoutProcess(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		s    State
		want string
	}{
		{State{}, StatusCreating},
		{State{Ready: true}, StatusStopped},
		{State{Pid: 1 << 30, PidStart: 1, Ready: true}, StatusStopped},
		{State{Pid: unix.Getpid(), PidStart: 1, Ready: true}, StatusStopped}, // pid reused
	} {
		tc.s.dir = dir
		if got := tc.s.Status(); got != tc.want {
			t.Errorf("%+v: status %s, want %s", tc.s, got, tc.want)
		}
	}
	self, _, _ := procStart(unix.Getpid())
	s := State{Pid: unix.Getpid(), PidStart: self, Ready: true, dir: dir}
	if got := s.Status(); got != StatusRunning {
		t.Errorf("live process: %s", got)
	}
}
