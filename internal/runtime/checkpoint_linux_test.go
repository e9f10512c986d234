package runtime

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPageServer(t *testing.T) {
	for _, tc := range []struct {
		in, addr string
		port     int32
		err      bool
	}{
		{in: "127.0.0.1:27000", addr: "127.0.0.1", port: 27000},
		{in: "[::1]:9", addr: "::1", port: 9},
		{in: "host.example:65535", addr: "host.example", port: 65535},
		{in: "127.0.0.1", err: true},
		{in: "127.0.0.1:0", err: true},
		{in: "127.0.0.1:70000", err: true},
		{in: "127.0.0.1:x", err: true},
	} {
		ps, err := pageServer(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("pageServer(%q) = %v, want an error", tc.in, ps)
			}
			continue
		}
		if err != nil || ps.GetAddress() != tc.addr || ps.GetPort() != tc.port {
			t.Errorf("pageServer(%q) = %v, %v; want %s port %d", tc.in, ps, err, tc.addr, tc.port)
		}
	}
}

func TestCRIUOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o    CRIUOptions
		want string // "" for valid
	}{
		{o: CRIUOptions{}},
		{o: CRIUOptions{ManageCgroupsMode: "soft", EmptyNs: []string{"network"}}},
		{o: CRIUOptions{ManageCgroupsMode: "ignore"}},
		{o: CRIUOptions{ManageCgroupsMode: "props"}, want: "--manage-cgroups-mode"},
		{o: CRIUOptions{EmptyNs: []string{"pid"}}, want: "--empty-ns"},
	} {
		err := tc.o.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("validate(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestIsBindMount(t *testing.T) {
	for _, tc := range []struct {
		m    specs.Mount
		want bool
	}{
		{specs.Mount{Type: "bind"}, true},
		{specs.Mount{Type: "none", Options: []string{"rbind", "ro"}}, true},
		{specs.Mount{Options: []string{"bind"}}, true},
		{specs.Mount{Type: "tmpfs", Options: []string{"nosuid"}}, false},
		{specs.Mount{Type: "proc"}, false},
	} {
		if got := isBindMount(tc.m); got != tc.want {
			t.Errorf("isBindMount(%+v) = %v, want %v", tc.m, got, tc.want)
		}
	}
}

func TestCgroupRootsOfSelf(t *testing.T) {
	roots, err := cgroupRoots(0)
	if err == nil {
		t.Fatalf("cgroupRoots(0) = %v, want an error (no /proc/0)", roots)
	}
	// Our own process: one root per controller, each an absolute path.
	roots, err = cgroupRoots(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) == 0 {
		t.Fatal("no cgroup roots for our own process")
	}
	for _, r := range roots {
		if !strings.HasPrefix(r.GetPath(), "/") || strings.Contains(r.GetCtrl(), ",") || r.Ctrl != nil && r.GetCtrl() == "" {
			t.Errorf("root %v: want one controller (none for cgroup2) and an absolute path", r)
		}
	}
}
