package engine

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"cove/internal/engine/specgen"
)

// RunOptions are the options of `cove create` and `cove run` kept with the
// container (Record.Options): the spec options plus what the engine itself
// acts on. Resource, volume and network options slot in here as fields.
type RunOptions struct {
	specgen.Options
	Image          string            `json:"image"`
	Name           string            `json:"name,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	AutoRemove     bool              `json:"autoRemove,omitempty"`
	Restart        string            `json:"restart,omitempty"` // no, always, unless-stopped, on-failure[:N]
	StopSignal     string            `json:"stopSignal,omitempty"`
	StopTimeout    int               `json:"stopTimeout,omitempty"` // seconds; 0: 10
	Runtime        string            `json:"runtime,omitempty"`     // resolved path
	LogDriver      string            `json:"logDriver,omitempty"`   // json-file (default) or none
	PidMode        string            `json:"pidMode,omitempty"`     // "", host, container:X
	IpcMode        string            `json:"ipcMode,omitempty"`
	UtsMode        string            `json:"utsMode,omitempty"`
	Network        string            `json:"network,omitempty"` // none (default without networks), host, bridge, NAME
	Publish        []string          `json:"publish,omitempty"` // -p
	DNS            []string          `json:"dns,omitempty"`
	AddHosts       []string          `json:"addHosts,omitempty"`
	NetworkAliases []string          `json:"networkAliases,omitempty"`
	// NetworkOptions are the other network flags and later connects.
	NetworkOptions
	// CgroupParent is where the container's cgroup goes (default /cove).
	CgroupParent string `json:"cgroupParent,omitempty"`
	Pull         string `json:"-"` // missing (default), always, never
	// VolumeOptions are -v, --mount, --volumes-from and what they resolved to.
	VolumeOptions
	// StorageOptions are --storage-opt (size= caps the writable layer).
	StorageOptions
}

// RestartPolicy splits --restart into its name and retry count.
func RestartPolicy(s string) (name string, max int, err error) {
	if s == "" || s == "no" {
		return "no", 0, nil
	}
	name, n, hasN := strings.Cut(s, ":")
	switch name {
	case "always", "unless-stopped":
		if hasN {
			return "", 0, fmt.Errorf("--restart %s: only on-failure takes a count", s)
		}
		return name, 0, nil
	case "on-failure":
		if hasN {
			max, err = strconv.Atoi(n)
			if err != nil || max < 0 {
				return "", 0, fmt.Errorf("--restart %s: bad retry count", s)
			}
		}
		return name, max, nil
	}
	return "", 0, fmt.Errorf("--restart %s: want no, always, unless-stopped or on-failure[:N]", s)
}

// Validate checks the options that need no store.
func (o *RunOptions) Validate() error {
	if _, _, err := RestartPolicy(o.Restart); err != nil {
		return err
	}
	if o.AutoRemove && o.Restart != "" && o.Restart != "no" {
		return fmt.Errorf("--rm and --restart cannot be combined")
	}
	if o.StopSignal != "" {
		if _, err := ParseSignal(o.StopSignal); err != nil {
			return fmt.Errorf("--stop-signal: %w", err)
		}
	}
	switch o.LogDriver {
	case "", "json-file", "k8s-file", "file", "none":
	default:
		return fmt.Errorf("--log-driver %s: want json-file or none", o.LogDriver)
	}
	for _, m := range []string{o.PidMode, o.IpcMode, o.UtsMode} {
		if m != "" && m != "host" && m != "private" && m != "shareable" && !strings.HasPrefix(m, "container:") {
			return fmt.Errorf("namespace mode %q: want host or container:NAME", m)
		}
	}
	if o.CgroupParent != "" && (!strings.HasPrefix(o.CgroupParent, "/") || strings.Contains(o.CgroupParent, "..")) {
		return fmt.Errorf("--cgroup-parent %s: want an absolute cgroup path with no .. in it", o.CgroupParent)
	}
	for _, p := range o.Publish {
		if _, err := ParsePublish(p); err != nil {
			return err
		}
	}
	if err := o.normalizeNetwork(); err != nil {
		return err
	}
	for _, u := range o.Ulimits {
		if _, err := specgen.ParseUlimit(u); err != nil {
			return err
		}
	}
	if _, err := specgen.Capabilities(o.Privileged, o.CapAdd, o.CapDrop); err != nil {
		return err
	}
	if err := o.Resources.Check(); err != nil {
		return err
	}
	if _, err := o.parseVolumeFlags(); err != nil {
		return err
	}
	if _, err := o.StorageSize(); err != nil {
		return err
	}
	return nil
}

func encodeOptions(o *RunOptions) (json.RawMessage, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode options: %w", err)
	}
	return b, nil
}

// Options decodes the run options stored with a record.
func Options(raw json.RawMessage) (*RunOptions, error) {
	var o RunOptions
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &o); err != nil {
			return nil, fmt.Errorf("decode container options: %w", err)
		}
	}
	return &o, nil
}

var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "ILL": syscall.SIGILL,
	"TRAP": syscall.SIGTRAP, "ABRT": syscall.SIGABRT, "BUS": syscall.SIGBUS, "FPE": syscall.SIGFPE,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "SEGV": syscall.SIGSEGV, "USR2": syscall.SIGUSR2,
	"PIPE": syscall.SIGPIPE, "ALRM": syscall.SIGALRM, "TERM": syscall.SIGTERM, "STKFLT": syscall.SIGSTKFLT,
	"CHLD": syscall.SIGCHLD, "CONT": syscall.SIGCONT, "STOP": syscall.SIGSTOP, "TSTP": syscall.SIGTSTP,
	"TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG, "XCPU": syscall.SIGXCPU,
	"XFSZ": syscall.SIGXFSZ, "VTALRM": syscall.SIGVTALRM, "PROF": syscall.SIGPROF, "WINCH": syscall.SIGWINCH,
	"IO": syscall.SIGIO, "PWR": syscall.SIGPWR, "SYS": syscall.SIGSYS,
}

// ParseSignal accepts KILL, SIGKILL, or 9.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	u := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[u]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}
