package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	rpc "github.com/checkpoint-restore/go-criu/v7/rpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
)

// Without a cgroup namespace, a "cgroup" mount is a bind of the
// container's own directory in each host hierarchy (see rootfs). CRIU
// cannot dump a bind whose source lies outside the container ("doesn't
// have a proper root mount"), so these are external mounts, as runc
// declares them: by mount point at dump, given the restored container's
// cgroup directories at restore. Podman on cgroup v1 runs containers so.

// cgroupMount is one cgroup or cgroup2 line of a mountinfo file.
type cgroupMount struct {
	root, mountpoint, fstype, superOpts string
}

// cgroupMounts lists the cgroup and cgroup2 mounts in a mountinfo file.
func cgroupMounts(path string) ([]cgroupMount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	s := bufio.NewScanner(f)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 3 || (b[0] != "cgroup" && b[0] != "cgroup2") {
			continue
		}
		out = append(out, cgroupMount{root: unescapeMount(a[3]), mountpoint: unescapeMount(a[4]), fstype: b[0], superOpts: b[2]})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes of space, tab, newline
// and backslash.
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// cgroupBindsExternal returns the container's cgroup mounts that are
// binds of a host subdirectory (root not "/"), as external mounts keyed by
// their mount point in the container.
func cgroupBindsExternal(pid int) ([]*rpc.ExtMountMap, error) {
	ms, err := cgroupMounts(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	var out []*rpc.ExtMountMap
	for _, m := range ms {
		if m.root != "/" {
			out = append(out, &rpc.ExtMountMap{Key: proto.String(m.mountpoint), Val: proto.String(m.mountpoint)})
		}
	}
	return out, nil
}

// cgroupBindsRestore maps the mount points cgroupBindsExternal may have
// recorded, for each "cgroup" mount of spec when it has no cgroup
// namespace, to the directories of pid (CRIU, already placed in the
// restored container's cgroups) in each host hierarchy.
func cgroupBindsRestore(spec *specs.Spec, pid int) ([]*rpc.ExtMountMap, error) {
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.CgroupNamespace {
				return nil, nil
			}
		}
	}
	var dests []string
	for _, m := range spec.Mounts {
		if m.Type == "cgroup" {
			dests = append(dests, m.Destination)
		}
	}
	if len(dests) == 0 {
		return nil, nil
	}
	host, err := cgroupMounts("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	own, err := procCgroups(pid)
	if err != nil {
		return nil, err
	}
	v1 := slices.ContainsFunc(host, func(m cgroupMount) bool { return m.fstype == "cgroup" })
	var out []*rpc.ExtMountMap
	for _, h := range host {
		var k, sub string
		switch {
		case h.fstype == "cgroup":
			k, sub = controllersKey(h.superOpts), filepath.Base(h.mountpoint)
		case v1:
			sub = "unified"
		}
		p, ok := own[k]
		if !ok {
			continue
		}
		rel, ok := strings.CutPrefix(p, h.root)
		if !ok {
			continue
		}
		src := filepath.Join(h.mountpoint, rel)
		for _, d := range dests {
			key := filepath.Join(d, sub)
			out = append(out, &rpc.ExtMountMap{Key: proto.String(key), Val: proto.String(src)})
		}
	}
	return out, nil
}

// controllersKey is the sorted controller list of a v1 hierarchy from its
// super options, as /proc/PID/cgroup names it ("cpu,cpuacct",
// "name=systemd").
func controllersKey(superOpts string) string {
	var c []string
	for _, o := range strings.Split(superOpts, ",") {
		switch {
		case o == "rw" || o == "ro" || o == "clone_children" || o == "noprefix" || o == "xattr" ||
			o == "cpuset_v2_mode" || strings.HasPrefix(o, "release_agent="):
		default:
			c = append(c, o)
		}
	}
	slices.Sort(c)
	return strings.Join(c, ",")
}

// procCgroups maps the sorted controller list of each hierarchy in
// /proc/PID/cgroup ("" for cgroup2) to pid's path in it.
func procCgroups(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		c := strings.Split(parts[1], ",")
		slices.Sort(c)
		out[strings.Join(c, ",")] = parts[2]
	}
	return out, nil
}
