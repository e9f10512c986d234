package rootfs

import "testing"

// A hierarchy mounted twice (the host's, then CRIU's cgroup yard) must be
// mounted once in the container: the second mount on the same spot fails
// with EBUSY.
func TestCgroupHierarchiesFirstWins(t *testing.T) {
	mounts := []mountInfo{
		{mountpoint: "/sys/fs/cgroup", fstype: "tmpfs"},
		{mountpoint: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOpts: "rw,cpu,cpuacct"},
		{mountpoint: "/sys/fs/cgroup/pids", fstype: "cgroup", superOpts: "rw,pids"},
		{mountpoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", superOpts: "rw"},
		{mountpoint: "/tmp/x/.criu.cgyard.1/pids", fstype: "cgroup", superOpts: "rw,pids"},
		{mountpoint: "/tmp/x/.criu.cgyard.1/cpu,cpuacct", fstype: "cgroup", superOpts: "rw,cpuacct,cpu"},
		{mountpoint: "/tmp/x/.criu.cgyard.1/unified", fstype: "cgroup2", superOpts: "rw"},
	}
	v1, v2 := cgroupHierarchies(mounts)
	var got []string
	for _, m := range v1 {
		got = append(got, m.mountpoint)
	}
	if len(got) != 2 || got[0] != "/sys/fs/cgroup/cpu,cpuacct" || got[1] != "/sys/fs/cgroup/pids" {
		t.Errorf("v1 hierarchies = %q, want the two under /sys/fs/cgroup", got)
	}
	if v2 == nil || v2.mountpoint != "/sys/fs/cgroup/unified" {
		t.Errorf("cgroup2 = %+v, want /sys/fs/cgroup/unified", v2)
	}
}
