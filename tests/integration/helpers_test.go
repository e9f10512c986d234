package integration

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// withoutNamespace removes a namespace type from the spec.
func withoutNamespace(typ specs.LinuxNamespaceType) func(*specs.Spec) {
	return func(s *specs.Spec) {
		var keep []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != typ {
				keep = append(keep, ns)
			}
		}
		s.Linux.Namespaces = keep
	}
}

// setNamespace adds or replaces a namespace entry.
func setNamespace(s *specs.Spec, ns specs.LinuxNamespace) {
	withoutNamespace(ns.Type)(s)
	s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i:], ") Z") && !strings.HasPrefix(s[i:], ") X")
}

func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// containerCgroup returns the host directory of pid's cgroup in the given
// v1 controller hierarchy (or "unified" for cgroup2).
func containerCgroup(t *testing.T, pid int, controller string) string {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// On a pure v2 host every controller is in the one "0::" hierarchy.
	pureV2 := cgroupMount(controller) == "/sys/fs/cgroup"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (controller == "unified" || pureV2) && parts[0] == "0" {
			return filepath.Join(cgroupMount("unified"), parts[2])
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return filepath.Join(cgroupMount(controller), parts[2])
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup", pid, controller)
	return ""
}

// cgroupMount finds where a hierarchy is mounted: /sys/fs/cgroup/<name> on
// this hybrid host, /sys/fs/cgroup on a pure v2 one.
func cgroupMount(controller string) string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "/sys/fs/cgroup"
	}
	return filepath.Join("/sys/fs/cgroup", controller)
}

// nsInode returns the namespace identity of pid's namespace typ
// ("net", "mnt", ...).
func nsInode(t *testing.T, pid string, typ string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + typ)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
