package main

import (
	"flag"
	"os/exec"

	"cove/internal/runtime"
)

func init() {
	commands["checkpoint"] = command{"checkpoint [--image-path D] [--work-path D] [--leave-running] [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--manage-cgroups-mode M] [--page-server IP:PORT] [--lazy-pages] [--status-fd N] [--parent-path D] [--pre-dump] [--empty-ns NS] [--auto-dedup] ID", cmdCheckpoint}
	commands["restore"] = command{"restore [--bundle D] [--detach] [--pid-file F] [--console-socket S] [--no-subreaper] [--no-pivot] [--image-path D] [--work-path D] [--tcp-established] [--ext-unix-sk] [--shell-job] [--file-locks] [--manage-cgroups-mode M] [--lazy-pages] [--empty-ns NS] [--auto-dedup] [--lsm-profile P] [--lsm-mount-context C] ID", cmdRestore}
}

// coveCriu is where .ci/criu.sh installs its wrapper.
const coveCriu = "/usr/local/sbin/cove-criu"

// criuPath is the CRIU binary to run: --criu, except that the default name
// "criu" means the cove-criu wrapper (CRIU 4.2 that .ci/criu.sh installs
// beside Debian's older criu) when that is in PATH.
func (g *globals) criuPath() string {
	if g.criu == "criu" {
		if p, err := exec.LookPath("cove-criu"); err == nil {
			return p
		}
		// Engines may run us with a PATH that lacks /usr/local/sbin.
		if p, err := exec.LookPath(coveCriu); err == nil {
			return p
		}
	}
	return g.criu
}

func criuFlags(fs *flag.FlagSet, o *runtime.CRIUOptions, emptyNs *listFlag) {
	fs.StringVar(&o.ImagePath, "image-path", "", "")
	fs.StringVar(&o.WorkPath, "work-path", "", "")
	fs.BoolVar(&o.TCPEstablished, "tcp-established", false, "")
	fs.BoolVar(&o.ExtUnixSk, "ext-unix-sk", false, "")
	fs.BoolVar(&o.ShellJob, "shell-job", false, "")
	fs.BoolVar(&o.FileLocks, "file-locks", false, "")
	fs.BoolVar(&o.LazyPages, "lazy-pages", false, "")
	fs.BoolVar(&o.AutoDedup, "auto-dedup", false, "")
	fs.StringVar(&o.ManageCgroupsMode, "manage-cgroups-mode", "", "")
	fs.Var(emptyNs, "empty-ns", "")
}

func cmdCheckpoint(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
	o := &runtime.CheckpointOptions{StatusFd: -1}
	var emptyNs listFlag
	criuFlags(fs, &o.CRIUOptions, &emptyNs)
	fs.BoolVar(&o.LeaveRunning, "leave-running", false, "")
	fs.StringVar(&o.PageServer, "page-server", "", "")
	fs.IntVar(&o.StatusFd, "status-fd", -1, "")
	fs.StringVar(&o.ParentPath, "parent-path", "", "")
	fs.BoolVar(&o.PreDump, "pre-dump", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	if o.ID, err = oneID("checkpoint", pos); err != nil {
		return 1, err
	}
	o.EmptyNs = emptyNs
	o.CriuPath = g.criuPath()
	return 0, g.runtime().Checkpoint(o)
}

func cmdRestore(g *globals, args []string) (int, error) {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	o := &runtime.RestoreOptions{}
	var emptyNs listFlag
	criuFlags(fs, &o.CRIUOptions, &emptyNs)
	stringVar(fs, &o.Bundle, ".", "bundle", "b")
	boolVar(fs, &o.Detach, "detach", "d")
	fs.StringVar(&o.PidFile, "pid-file", "", "")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "")
	fs.BoolVar(&o.NoSubreaper, "no-subreaper", false, "")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "")
	fs.StringVar(&o.LSMProfile, "lsm-profile", "", "")
	fs.StringVar(&o.LSMMountContext, "lsm-mount-context", "", "")
	var noNewKeyring bool
	fs.BoolVar(&noNewKeyring, "no-new-keyring", false, "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 1, err
	}
	if o.ID, err = oneID("restore", pos); err != nil {
		return 1, err
	}
	o.EmptyNs = emptyNs
	o.CriuPath = g.criuPath()
	return g.runtime().Restore(o)
}
