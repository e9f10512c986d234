package bundle

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func intp(i int) *int { return &i }

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
		want   string // full error text; "" means valid
	}{
		{"default", func(*specs.Spec) {}, ""},
		{"rootless default", func(s *specs.Spec) { *s = *Default(true) }, ""},

		// ociVersion
		{"version missing", func(s *specs.Spec) { s.Version = "" }, `ociVersion: missing`},
		{"version major 2", func(s *specs.Spec) { s.Version = "2.0.0" }, `ociVersion: unsupported major version "2.0.0"`},
		{"version major 0", func(s *specs.Spec) { s.Version = "0.9.0" }, `ociVersion: unsupported major version "0.9.0"`},
		{"version garbage", func(s *specs.Spec) { s.Version = "abc" }, `ociVersion: invalid version "abc"`},
		{"version signed", func(s *specs.Spec) { s.Version = "+1.0.0" }, `ociVersion: invalid version "+1.0.0"`},
		{"version old 1.0", func(s *specs.Spec) { s.Version = "1.0.0" }, ""},
		{"version dev suffix", func(s *specs.Spec) { s.Version = "1.2.1-dev" }, ""},

		// root
		{"root missing", func(s *specs.Spec) { s.Root = nil }, `root: missing`},
		{"root path empty", func(s *specs.Spec) { s.Root.Path = "" }, `root.path: empty`},

		// process
		{"process missing", func(s *specs.Spec) { s.Process = nil }, `process: missing`},
		{"args empty", func(s *specs.Spec) { s.Process.Args = nil }, `process.args: empty`},
		{"cwd relative", func(s *specs.Spec) { s.Process.Cwd = "home" }, `process.cwd: "home" is not an absolute path`},
		{"cwd empty", func(s *specs.Spec) { s.Process.Cwd = "" }, `process.cwd: "" is not an absolute path`},
		{"env without =", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "FOO") }, `process.env[2]: "FOO" has no "="`},
		{"env empty name", func(s *specs.Spec) { s.Process.Env = []string{"=x"} }, `process.env[0]: "=x" has an empty name`},
		{"env NUL", func(s *specs.Spec) { s.Process.Env = []string{"A=b\x00c"} }, `process.env[0]: contains a NUL byte`},
		{"env empty value", func(s *specs.Spec) { s.Process.Env = []string{"A="} }, ""},

		// capabilities, all five sets
		{"cap bounding", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FOO")
		}, `process.capabilities.bounding[3]: unknown capability "CAP_FOO"`},
		{"cap effective", func(s *specs.Spec) { s.Process.Capabilities.Effective[1] = "KILL" },
			`process.capabilities.effective[1]: unknown capability "KILL"`},
		{"cap inheritable", func(s *specs.Spec) { s.Process.Capabilities.Inheritable = []string{"cap_kill"} },
			`process.capabilities.inheritable[0]: unknown capability "cap_kill"`},
		{"cap permitted", func(s *specs.Spec) { s.Process.Capabilities.Permitted[2] = "" },
			`process.capabilities.permitted[2]: unknown capability ""`},
		{"cap ambient", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_KILL", "CAP_SYS_EVERYTHING"} },
			`process.capabilities.ambient[1]: unknown capability "CAP_SYS_EVERYTHING"`},
		{"cap newest", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = []string{"CAP_CHECKPOINT_RESTORE", "CAP_BPF", "CAP_PERFMON"}
		}, ""},

		// rlimits
		{"rlimit unknown", func(s *specs.Spec) { s.Process.Rlimits[0].Type = "RLIMIT_FOO" },
			`process.rlimits[0].type: unknown rlimit "RLIMIT_FOO"`},
		{"rlimit lowercase", func(s *specs.Spec) { s.Process.Rlimits[0].Type = "nofile" },
			`process.rlimits[0].type: unknown rlimit "nofile"`},
		{"rlimit soft > hard", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 },
			`process.rlimits[0]: soft limit 2048 exceeds hard limit 1024`},
		{"rlimit duplicate", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1, Soft: 1})
		}, `process.rlimits[1].type: duplicate rlimit "RLIMIT_NOFILE"`},
		{"rlimit others", func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE"}, specs.POSIXRlimit{Type: "RLIMIT_RTTIME", Hard: 5, Soft: 5})
		}, ""},

		// oomScoreAdj
		{"oom too low", func(s *specs.Spec) { s.Process.OOMScoreAdj = intp(-1001) }, `process.oomScoreAdj: -1001 is outside -1000..1000`},
		{"oom too high", func(s *specs.Spec) { s.Process.OOMScoreAdj = intp(1001) }, `process.oomScoreAdj: 1001 is outside -1000..1000`},
		{"oom bounds", func(s *specs.Spec) { s.Process.OOMScoreAdj = intp(-1000) }, ""},

		// hostname
		{"hostname without uts", func(s *specs.Spec) { s.Linux.Namespaces = withoutNS(s, specs.UTSNamespace) }, `hostname: set without a UTS namespace`},
		{"domainname without uts", func(s *specs.Spec) {
			s.Hostname = ""
			s.Domainname = "example.org"
			s.Linux.Namespaces = withoutNS(s, specs.UTSNamespace)
		}, `domainname: set without a UTS namespace`},
		{"no hostname no uts", func(s *specs.Spec) { s.Hostname = ""; s.Linux.Namespaces = withoutNS(s, specs.UTSNamespace) }, ""},
		{"hostname joined uts", func(s *specs.Spec) {
			s.Linux.Namespaces = append(withoutNS(s, specs.UTSNamespace), specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/1/ns/uts"})
		}, ""},
		{"hostname no linux", func(s *specs.Spec) { s.Linux = nil }, `hostname: set without a UTS namespace`},
		{"no linux section", func(s *specs.Spec) { s.Linux = nil; s.Hostname = "" }, ""},

		// mounts
		{"mount relative", func(s *specs.Spec) { s.Mounts[2].Destination = "dev/pts" }, `mounts[2].destination: "dev/pts" is not an absolute path`},
		{"mount empty", func(s *specs.Spec) { s.Mounts = append(s.Mounts, specs.Mount{Type: "tmpfs"}) }, `mounts[7].destination: "" is not an absolute path`},
		{"mount idmap size 0", func(s *specs.Spec) {
			s.Mounts[0].UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 0}}
		}, `mounts[0].uidMappings[0].size: must not be 0`},

		// hooks
		{"hook relative path", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}, {Path: "true"}}}
		},
			`hooks.poststop[1].path: "true" is not an absolute path`},
		{"hook zero timeout", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: intp(0)}}}
		},
			`hooks.createRuntime[0].timeout: 0 is not positive`},
		{"hook prestart", func(s *specs.Spec) {
			//lint:ignore SA1019 deprecated prestart hooks are still validated
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: ""}}}
		},
			`hooks.prestart[0].path: "" is not an absolute path`},
		{"hooks fine", func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true", Timeout: intp(3)}}}
		}, ""},

		// namespaces
		{"ns unknown", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "foo"})
		}, `linux.namespaces[6].type: unknown namespace type "foo"`},
		{"ns duplicate", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "pid", Path: "/proc/1/ns/pid"})
		}, `linux.namespaces[6].type: duplicate namespace "pid"`},
		{"ns relative path", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "proc/1/ns/net" },
			`linux.namespaces[1].path: "proc/1/ns/net" is not an absolute path`},
		{"ns time", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}, ""},

		// id mappings
		{"uid map size 0", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 0}}
		}, `linux.uidMappings[1].size: must not be 0`},
		{"gid map size 0", func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000}}
		}, `linux.gidMappings[0].size: must not be 0`},
		{"uid map without userns", func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}} },
			`linux.uidMappings: set without a user namespace`},
		{"gid map without userns", func(s *specs.Spec) { s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}} },
			`linux.gidMappings: set without a user namespace`},

		// sysctl
		{"sysctl ipc", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{
				"kernel.shmmax": "68719476736", "kernel.msgmax": "65536", "kernel.sem": "250 32000 100 128",
				"fs.mqueue.msg_max": "10", "kernel.shm_rmid_forced": "1",
			}
		}, ""},
		{"sysctl net", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "net/ipv4/tcp_rmem": "4096\t87380 6291456"}
		}, ""},
		{"sysctl uts", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.domainname": "example.org"} }, ""},
		{"sysctl not namespaced", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/evil"} },
			`linux.sysctl["kernel.core_pattern"]: not a namespaced sysctl`},
		{"sysctl vm", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.overcommit_memory": "1"} },
			`linux.sysctl["vm.overcommit_memory"]: not a namespaced sysctl`},
		{"sysctl kernel.sem prefix", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.semfoo": "1"} },
			`linux.sysctl["kernel.semfoo"]: not a namespaced sysctl`},
		{"sysctl net without netns", func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNS(s, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]: needs a network namespace`},
		{"sysctl ipc without ipcns", func(s *specs.Spec) {
			s.Linux.Namespaces = withoutNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.msgmax": "1"}
		}, `linux.sysctl["kernel.msgmax"]: needs a ipc namespace`},
		{"sysctl hostname without uts", func(s *specs.Spec) {
			s.Hostname = ""
			s.Linux.Namespaces = withoutNS(s, specs.UTSNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.hostname": "x"}
		}, `linux.sysctl["kernel.hostname"]: needs a uts namespace`},
		{"sysctl injection plus", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/evil"}
		}, `linux.sysctl["kernel.shm_rmid_forced"]: value contains "="`},
		{"sysctl injection newline", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1\nkernel.core_pattern"}
		}, `linux.sysctl["net.ipv4.ip_forward"]: value contains control character '\n'`},
		{"sysctl key traversal", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net/../kernel/core_pattern": "x"}
		}, `linux.sysctl["net/../kernel/core_pattern"]: key mixes "/" and "." separators`},
		{"sysctl key empty part", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net..ipv4": "1"} },
			`linux.sysctl["net..ipv4"]: malformed key`},
		{"sysctl key odd char", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward=1": "1"} },
			`linux.sysctl["net.ipv4.ip_forward=1"]: malformed key`},
		{"sysctl first problem sorted", func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"vm.b": "1", "vm.a": "1", "net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["vm.a"]: not a namespaced sysctl`},

		// devices
		{"device bad type", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}, {Path: "/dev/x", Type: "x"}}
		}, `linux.devices[1].type: invalid device type "x"`},
		{"device relative", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/fuse", Type: "c"}} },
			`linux.devices[0].path: "dev/fuse" is not an absolute path`},
		{"device negative", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "b", Major: -1}} },
			`linux.devices[0]: negative device number -1:0`},
		{"device fifo", func(s *specs.Spec) { s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fifo", Type: "p"}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Default(false)
			tt.mutate(s)
			err := Validate(s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Fatalf("error %q\nwant  %q", err, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(tt.want, fe.Field+": ") {
				t.Fatalf("error %#v is not a FieldError for the field", err)
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil); err == nil {
		t.Fatal("no error for nil spec")
	}
}

func withoutNS(s *specs.Spec, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			out = append(out, n)
		}
	}
	return out
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id      string
		wantErr string
	}{
		{"abc", ""},
		{"A-b_c.d+e", ""},
		{"0123456789", ""},
		{"...", ""},
		{strings.Repeat("a", 1024), ""},
		{"", "container id is empty"},
		{".", `invalid container id "."`},
		{"..", `invalid container id ".."`},
		{"a/b", `invalid container id "a/b": "/" not allowed`},
		{"../etc", `invalid container id "../etc": "/" not allowed`},
		{"a\x00b", `invalid container id "a\x00b": "\x00" not allowed`},
		{"a b", `invalid container id "a b": " " not allowed`},
		{"a:b", `invalid container id "a:b": ":" not allowed`},
		{"é", `invalid container id "é": "\xc3" not allowed`},
		{strings.Repeat("a", 1025), "container id is 1025 bytes long, more than 1024"},
	}
	for _, tt := range tests {
		err := ValidateID(tt.id)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("ValidateID(%.20q) = %q, want %q", tt.id, got, tt.wantErr)
		}
	}
}
