package cgroups

import (
	"os"
	"testing"
)

// TestPrimeAttachMovesNothing: the priming write names a cgroup.procs file
// that lists this process, and leaves the process where it was.
func TestPrimeAttachMovesNothing(t *testing.T) {
	procs := ownProcsFile()
	if procs == "" {
		t.Skip("no cgroup.procs file listing this process under /sys/fs/cgroup")
	}
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	primeAttach()
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatalf("cgroups changed:\nbefore %s\nafter %s", before, after)
	}
	if got := ownProcsFile(); got != procs {
		t.Fatalf("own cgroup.procs %q, then %q", procs, got)
	}
}
