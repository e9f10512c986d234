package main

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cove/internal/runtime/seccomp"
)

// TestSeccompFeaturesCompile holds features to the truth: the seccomp
// compiler accepts a profile using each action, operator, architecture and
// flag listed.
func TestSeccompFeaturesCompile(t *testing.T) {
	profile := func(mut func(*specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		s := &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{
				Names: []string{"getpid"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, ValueTwo: 1, Op: specs.OpEqualTo}},
			}},
		}
		mut(s)
		return s
	}
	check := func(what string, s *specs.LinuxSeccomp) {
		t.Helper()
		if _, err := seccomp.Compile(s); err != nil {
			t.Errorf("features lists %s, but the compiler refuses it: %v", what, err)
		}
	}
	for _, a := range seccompActions {
		check(a, profile(func(s *specs.LinuxSeccomp) {
			s.Syscalls[0].Action = specs.LinuxSeccompAction(a)
			if a == string(specs.ActNotify) {
				s.ListenerPath = "/run/listener.sock"
			}
		}))
	}
	for _, op := range seccompOperators {
		check(op, profile(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Args[0].Op = specs.LinuxSeccompOperator(op) }))
	}
	for _, arch := range seccompArchs {
		check(arch, profile(func(s *specs.LinuxSeccomp) { s.Architectures = []specs.Arch{specs.Arch(arch)} }))
	}
	for _, fl := range seccompFlags {
		check(fl, profile(func(s *specs.LinuxSeccomp) { s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(fl)} }))
	}
	if _, err := seccomp.Compile(profile(func(s *specs.LinuxSeccomp) { s.Syscalls[0].Action = "SCMP_ACT_BOGUS" })); err == nil {
		t.Error("the compiler accepts an unknown action: this test checks nothing")
	}
}
