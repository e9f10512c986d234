package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"cove/internal/runtime/caps"
)

func init() {
	commands["features"] = command{"features", cmdFeatures}
}

// mountOptions are the mount options internal/runtime/rootfs accepts
// (options_linux.go): mount(2) flags, propagation, the recursive
// mount_setattr(2) forms and bind. idmap/ridmap are refused there, so they
// are not listed, and mountExtensions.idmap is false whatever the kernel
// supports.
var mountOptions = []string{
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
	"iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
	"noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
	"nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
	"relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
	"rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
	"rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
	"rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
	"suid", "symfollow", "sync", "tmpcopyup", "unbindable",
}

// The seccomp filter compiler (internal/runtime/seccomp) handles every
// runtime-spec action and operator, the three x86 ABIs of an x86_64 kernel
// and these filter flags (features_test.go compiles a profile with each).
var (
	seccompActions = []string{
		"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
		"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
	}
	seccompOperators = []string{
		"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
		"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
	}
	seccompArchs = []string{"SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"}
	seccompFlags = []string{
		"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
		"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
	}
)

// supportedFeatures is what this build of cove-runc implements, as the
// runtime-spec features document describes it.
func supportedFeatures() *features.Features {
	yes, no := true, false
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  slices.Sorted(slices.Values(mountOptions)),
		Linux: &features.Linux{
			Namespaces: []string{
				string(specs.CgroupNamespace), string(specs.IPCNamespace), string(specs.MountNamespace),
				string(specs.NetworkNamespace), string(specs.PIDNamespace), string(specs.TimeNamespace),
				string(specs.UserNamespace), string(specs.UTSNamespace),
			},
			Capabilities: caps.Set(1<<(caps.MaxKnown+1) - 1).Names(),
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &yes},
			Seccomp: &features.Seccomp{
				Enabled:        &yes,
				Actions:        seccompActions,
				Operators:      seccompOperators,
				Archs:          seccompArchs,
				KnownFlags:     seccompFlags,
				SupportedFlags: seccompFlags,
			},
			Apparmor:        &features.Apparmor{Enabled: &no},
			Selinux:         &features.Selinux{Enabled: &no},
			IntelRdt:        &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &no}},
		},
		Annotations: featureAnnotations(),
	}
}

// featureAnnotations are runc's informational annotations; the checkpoint
// one appears only when this binary implements checkpoint.
func featureAnnotations() map[string]string {
	a := map[string]string{
		"org.opencontainers.runc.version": version + " (cove-runc)",
		"org.opencontainers.runc.commit":  commit,
	}
	if c, ok := commands["checkpoint"]; ok && !strings.Contains(c.usage, "not implemented") {
		a["org.opencontainers.runc.checkpoint.enabled"] = "true"
	}
	return a
}

func cmdFeatures(g *globals, args []string) (int, error) {
	pos, err := parseArgs(flag.NewFlagSet("features", flag.ContinueOnError), args)
	if err != nil {
		return 1, err
	}
	if len(pos) != 0 {
		return 1, fmt.Errorf("features: takes no arguments, got %d", len(pos))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return 0, enc.Encode(supportedFeatures())
}
