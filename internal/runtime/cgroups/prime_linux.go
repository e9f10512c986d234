package cgroups

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The first move of a process between cgroups after a quiet spell costs an
// RCU grace period (4-15 ms measured on the 2-CPU development VM): writing
// cgroup.procs takes cgroup_threadgroup_rwsem for writing, and its rcu_sync
// must first wait for every CPU to pass a quiescent state. Moves that follow
// within about one more grace period are quick (~50 us). Every runtime pays
// this once per container (crun included); PrimeAttach starts paying it
// early, in the background, so the wait overlaps the runtime's own work
// instead of following it. It writes this process's pid into the cgroup it
// is already in: the kernel takes the lock and moves nothing.
//
// The kernel holds cgroup_mutex while it waits, so cgroup directories made
// meanwhile wait too: call it after Create, before starting the process that
// Apply will move.

// PrimeAttach starts, in the background, a move of this process into its own
// cgroup, so that the next Apply finds the kernel's cgroup rwsem ready.
// Failures are ignored: it is only an optimisation.
func PrimeAttach() {
	go primeAttach()
}

// Where to look for this process's cgroup: the usual mount points (the pid
// check in ownProcsFile makes a wrong guess harmless).
const (
	primeRoot    = "/sys/fs/cgroup"
	primeUnified = "/sys/fs/cgroup/unified"
)

func primeAttach() {
	procs := ownProcsFile()
	if procs == "" {
		return
	}
	f, err := os.OpenFile(procs, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(strconv.Itoa(os.Getpid()))
}

// ownProcsFile returns the cgroup.procs file of a cgroup this process is in,
// checked by finding the pid listed in it (so a cgroup namespace or an
// unexpected mount layout can never make the write move the process), or
// "" when there is none.
func ownProcsFile() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	var candidates []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			candidates = append(candidates,
				filepath.Join(primeUnified, parts[2], "cgroup.procs"),
				filepath.Join(primeRoot, parts[2], "cgroup.procs"))
			continue
		}
		ctrl := strings.TrimPrefix(parts[1], "name=")
		if ctrl != "" {
			candidates = append(candidates, filepath.Join(primeRoot, ctrl, parts[2], "cgroup.procs"))
		}
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, c := range candidates {
		b, err := os.ReadFile(c)
		if err != nil {
			continue
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if bytes.Equal(l, pid) {
				return c
			}
		}
	}
	return ""
}
