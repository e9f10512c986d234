package cgroups

import (
	"maps"
	"strings"
	"testing"
)

const hybridMountinfo = `23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const v2Mountinfo = `23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
`

const v1Mountinfo = `23 1 254:0 / / rw,relatime - ext4 /dev/vda rw
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
34 31 0:30 / /mnt/again rw,relatime - cgroup cgroup rw,net_prio,net_cls
35 31 0:32 /lxc/c1 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory,release_agent=/x
`

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		mode    Mode
		v1      map[string]string // key -> mountpoint
		unified string
	}{
		{"hybrid", hybridMountinfo, Hybrid, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
			"memory": "/sys/fs/cgroup/memory", "name=systemd": "/sys/fs/cgroup/systemd",
		}, "/sys/fs/cgroup/unified"},
		{"v2", v2Mountinfo, Unified, map[string]string{}, "/sys/fs/cgroup"},
		{"v1", v1Mountinfo, Legacy, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio", "net_prio": "/sys/fs/cgroup/net_cls,net_prio",
			"memory": "/sys/fs/cgroup/memory",
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseMountinfo(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if l.mode != tt.mode {
				t.Errorf("mode = %v, want %v", l.mode, tt.mode)
			}
			got := map[string]string{}
			for _, h := range l.v1 {
				for _, k := range h.keys {
					got[k] = h.mountpoint
				}
			}
			if !maps.Equal(got, tt.v1) {
				t.Errorf("v1 = %v, want %v", got, tt.v1)
			}
			u := ""
			if l.unified != nil {
				u = l.unified.mountpoint
			}
			if u != tt.unified {
				t.Errorf("unified = %q, want %q", u, tt.unified)
			}
		})
	}
	if _, err := parseMountinfo(strings.NewReader("23 1 254:0 / / rw - ext4 /dev/vda rw\n")); err == nil {
		t.Error("no cgroup mounts: want an error")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\`: `/x\`, `/t\011\134`: "/t\t\\"} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got, err := parseProcCgroup(strings.NewReader("9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/u\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name=systemd": "/", "memory": "/process_api/abc", "cpu": "/x", "cpuacct": "/x", "": "/u"}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestContainerPath(t *testing.T) {
	tests := []struct {
		in, id string
		want   string
		abs    bool
		err    bool
	}{
		{"", "ctr1", "/ctr1", true, false},
		{"", "a/b", "", false, true},
		{"", "..", "", false, true},
		{"/a/b/../c/", "x", "/a/c", true, false},
		{"/", "x", "/", true, false},
		{"foo/bar", "x", "foo/bar", false, false},
		{"../escape", "x", "", false, true},
		{"a/../..", "x", "", false, true},
		{"system.slice:cove:abc", "x", "/system.slice/cove-abc.scope", true, false},
		{"machine-cove.slice:docker:abc", "x", "/machine.slice/machine-cove.slice/docker-abc.scope", true, false},
		{":cove:abc", "x", "/system.slice/cove-abc.scope", true, false},
		{"-.slice::abc", "x", "/abc.scope", true, false},
		{"system.slice:cove:my-app.slice", "x", "/my.slice/my-app.slice", true, false},
		{"bad:cove:abc", "x", "", true, true},
		{"a--b.slice:p:n", "x", "", true, true},
		{"system.slice:p:", "x", "", true, true},
	}
	for _, tt := range tests {
		got, abs, err := containerPath(tt.in, tt.id)
		if (err != nil) != tt.err {
			t.Errorf("containerPath(%q, %q) error = %v, want error %v", tt.in, tt.id, err, tt.err)
			continue
		}
		if err == nil && (got != tt.want || abs != tt.abs) {
			t.Errorf("containerPath(%q, %q) = %q, %v; want %q, %v", tt.in, tt.id, got, abs, tt.want, tt.abs)
		}
	}
}

func TestExpandSlice(t *testing.T) {
	for in, want := range map[string]string{
		"-.slice":         "",
		"system.slice":    "system.slice",
		"a-b-c.slice":     "a.slice/a-b.slice/a-b-c.slice",
		"user-1000.slice": "user.slice/user-1000.slice",
	} {
		got, err := expandSlice(in)
		if err != nil || got != want {
			t.Errorf("expandSlice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", ".slice", "-a.slice", "a-.slice", "a/b.slice"} {
		if _, err := expandSlice(bad); err == nil {
			t.Errorf("expandSlice(%q): want an error", bad)
		}
	}
}

func TestNewManagerPaths(t *testing.T) {
	own := map[string]string{"cpu": "/", "cpuacct": "/", "memory": "/process_api/abc", "name=systemd": "/", "": "/"}
	nsOwn := map[string]string{"cpu": "/", "cpuacct": "/", "net_cls": "/n", "net_prio": "/n", "memory": "/lxc/c1/sub"}
	tests := []struct {
		name  string
		text  string
		own   map[string]string
		path  string
		abs   bool
		want  map[string]string
		mode  Mode
		isErr bool
	}{
		{"hybrid absolute", hybridMountinfo, own, "/ctr", true, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/ctr", "cpuacct": "/sys/fs/cgroup/cpuacct/ctr", "memory": "/sys/fs/cgroup/memory/ctr",
			"name=systemd": "/sys/fs/cgroup/systemd/ctr", UnifiedKey: "/sys/fs/cgroup/unified/ctr",
		}, Hybrid, false},
		{"hybrid relative", hybridMountinfo, own, "a/ctr", false, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/a/ctr", "cpuacct": "/sys/fs/cgroup/cpuacct/a/ctr",
			"memory":       "/sys/fs/cgroup/memory/process_api/abc/a/ctr",
			"name=systemd": "/sys/fs/cgroup/systemd/a/ctr", UnifiedKey: "/sys/fs/cgroup/unified/a/ctr",
		}, Hybrid, false},
		{"v2 absolute", v2Mountinfo, own, "/x/y", true, map[string]string{UnifiedKey: "/sys/fs/cgroup/x/y"}, Unified, false},
		{"v1 relative in a namespace root", v1Mountinfo, nsOwn, "ctr", false, map[string]string{
			"cpu": "/sys/fs/cgroup/cpu,cpuacct/ctr", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/ctr",
			"net_cls": "/sys/fs/cgroup/net_cls,net_prio/n/ctr", "net_prio": "/sys/fs/cgroup/net_cls,net_prio/n/ctr",
			"memory": "/sys/fs/cgroup/memory/sub/ctr",
		}, Legacy, false},
		{"root refused", v2Mountinfo, own, "/", true, nil, Unified, true},
		{"relative without own entry", v2Mountinfo, map[string]string{}, "x", false, nil, Unified, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseMountinfo(strings.NewReader(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			m, err := newManager(l, tt.own, tt.path, tt.abs)
			if (err != nil) != tt.isErr {
				t.Fatalf("error = %v, want error %v", err, tt.isErr)
			}
			if err != nil {
				return
			}
			if !maps.Equal(m.Paths(), tt.want) || m.mode != tt.mode {
				t.Errorf("paths = %v (%v), want %v (%v)", m.Paths(), m.mode, tt.want, tt.mode)
			}
			if lm := Load(m.Paths()).(*manager); lm.mode != tt.mode || !maps.Equal(lm.paths, tt.want) {
				t.Errorf("Load: mode %v paths %v, want %v", lm.mode, lm.paths, tt.mode)
			}
		})
	}
}

func TestConversions(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 1, 2: 1, 1024: 39, 512: 20, 262144: 10000, 1 << 20: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{10: 1, 500: 4950, 1000: 10000, 1: 1} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}
