package main

// `cove run`, `cove create` and `cove start`.

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"cove/internal/engine"
	"cove/internal/engine/container"
)

func init() {
	register(func() *cobra.Command { return newCreateRunCommand(true) })
	register(func() *cobra.Command { return newCreateRunCommand(false) })
	register(newStartCommand)
}

// runFlags are the flags of create and run.
type runFlags struct {
	o          engine.RunOptions
	env        []string
	envFiles   []string
	labels     []string
	annots     []string
	entrypoint string
	shmSize    string
	detach     bool
	res        resourceFlags
	storageOpt []string
}

func (f *runFlags) add(fs *pflag.FlagSet, run bool) {
	o := &f.o
	if run {
		fs.BoolVarP(&f.detach, "detach", "d", false, "run in the background and print the container id")
	}
	fs.BoolVarP(&o.Stdin, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&o.Tty, "tty", "t", false, "allocate a pseudo-terminal")
	fs.BoolVar(&o.AutoRemove, "rm", false, "remove the container when it exits")
	fs.StringVar(&o.Name, "name", "", "container name")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY from this environment)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&o.User, "user", "u", "", "user[:group] to run as")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fs.StringVarP(&o.Hostname, "hostname", "h", "", "container hostname")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set a label (KEY=VALUE)")
	fs.StringArrayVar(&f.annots, "annotation", nil, "set an OCI annotation (KEY=VALUE)")
	fs.BoolVar(&o.Init, "init", false, "run a tiny init as pid 1 that reaps and forwards signals")
	fs.StringVar(&o.Restart, "restart", "no", "restart policy: no, on-failure[:N], always, unless-stopped")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "mount the root filesystem read-only")
	fs.StringArrayVar(&o.Tmpfs, "tmpfs", nil, "mount a tmpfs (PATH[:OPTIONS])")
	fs.StringArrayVar(&o.CapAdd, "cap-add", nil, "add a capability")
	fs.StringArrayVar(&o.CapDrop, "cap-drop", nil, "drop a capability")
	fs.BoolVar(&o.Privileged, "privileged", false, "all capabilities, no seccomp, no masked paths, all devices")
	fs.StringArrayVar(&o.SecurityOpt, "security-opt", nil, "seccomp=PROFILE|unconfined, no-new-privileges")
	fs.StringArrayVar(&o.Ulimits, "ulimit", nil, "resource limit NAME=SOFT[:HARD]")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm (e.g. 64m)")
	fs.StringVar(&o.StopSignal, "stop-signal", "", "signal to stop the container (default SIGTERM)")
	fs.IntVar(&o.StopTimeout, "stop-timeout", 0, "seconds to wait before killing on stop (default 10)")
	fs.StringVar(&o.Pull, "pull", "missing", "pull the image: missing, always, never")
	fs.StringVar(&o.Runtime, "runtime", "", "OCI runtime: cove-runc (default), runc, crun or a path")
	fs.StringVar(&o.LogDriver, "log-driver", "json-file", "json-file or none")
	fs.StringVar(&o.PidMode, "pid", "", "pid namespace: host or container:NAME")
	fs.StringVar(&o.IpcMode, "ipc", "", "ipc namespace: host or container:NAME")
	fs.StringVar(&o.UtsMode, "uts", "", "uts namespace: host or container:NAME")
	addNetworkFlags(fs, o)
	fs.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a port [IP:][HOSTPORT:]CONTAINERPORT[/PROTO]")
	fs.StringArrayVar(&o.DNS, "dns", nil, "DNS server")
	fs.StringArrayVar(&o.AddHosts, "add-host", nil, "add NAME:IP to /etc/hosts")
	fs.StringArrayVar(&o.NetworkAliases, "network-alias", nil, "DNS alias on the network")
	fs.StringArrayVar(&o.Sysctls, "sysctl", nil, "namespaced kernel parameter KEY=VALUE")
	fs.StringArrayVar(&o.Devices, "device", nil, "add a host device HOST[:CONTAINER[:rwm]]")
	fs.StringArrayVar(&o.GroupAdd, "group-add", nil, "additional group")
	fs.StringVar(&o.CgroupParent, "cgroup-parent", "", "parent cgroup of the container's (default /cove)")
	f.res.add(fs, false)
	fs.StringArrayVar(&f.storageOpt, "storage-opt", nil, "storage option: size=SIZE caps the writable layer")
	fs.StringArrayVarP(&o.VolumeFlags, "volume", "v", nil, "mount a volume or host path [SOURCE:]TARGET[:OPTIONS]")
	fs.StringArrayVar(&o.MountFlags, "mount", nil, "mount type=volume|bind|tmpfs,source=..,target=..[,readonly]")
	fs.StringArrayVar(&o.VolumesFrom, "volumes-from", nil, "mount the volumes of another container CONTAINER[:ro|rw]")
}

// options completes the run options from flags and positional arguments.
func (f *runFlags) options(c *cobra.Command, args []string) (*engine.RunOptions, error) {
	o := &f.o
	o.Image = args[0]
	o.Args = args[1:]
	if c.Flags().Changed("entrypoint") {
		ep := f.entrypoint
		o.Entrypoint = &ep
	}
	for _, file := range f.envFiles {
		lines, err := readEnvFile(file)
		if err != nil {
			return nil, err
		}
		o.Env = append(o.Env, lines...)
	}
	o.Env = append(o.Env, f.env...)
	var err error
	if o.Labels, err = kvMap(f.labels, "--label"); err != nil {
		return nil, err
	}
	if o.Annotations, err = kvMap(f.annots, "--annotation"); err != nil {
		return nil, err
	}
	if f.shmSize != "" {
		if o.ShmSize, err = parseBytes(f.shmSize); err != nil {
			return nil, fmt.Errorf("--shm-size: %w", err)
		}
	}
	if o.Restart == "no" {
		o.Restart = ""
	}
	if err := f.res.parse(c.Flags(), &o.Resources); err != nil {
		return nil, err
	}
	if o.StorageOpt, err = kvMap(f.storageOpt, "--storage-opt"); err != nil {
		return nil, err
	}
	return o, o.Validate()
}

func kvMap(list []string, flag string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// parseBytes parses sizes like 64m, 1g, 512k, 1024.
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	s = strings.TrimSuffix(s, "b")
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult, s = 1<<10, s[:n-1]
		case 'm':
			mult, s = 1<<20, s[:n-1]
		case 'g':
			mult, s = 1<<30, s[:n-1]
		}
	}
	var v int64
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

func newCreateRunCommand(run bool) *cobra.Command {
	var f runFlags
	use, short := "create", "Create a container"
	if run {
		use, short = "run", "Run a command in a new container"
	}
	c := &cobra.Command{
		Use:   use + " [flags] IMAGE [COMMAND [ARG...]]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := f.options(c, args)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			rec, err := e.Create(c.Context(), o)
			if err != nil {
				return engineExit(err)
			}
			if !run {
				fmt.Println(rec.ID)
				return nil
			}
			if f.detach {
				if _, err := e.Start(c.Context(), rec, engine.StartOptions{}); err != nil {
					if o.AutoRemove {
						e.Remove(rec, true)
					}
					return engineExit(err)
				}
				fmt.Println(rec.ID)
				return nil
			}
			st, err := e.Start(c.Context(), rec, engine.StartOptions{Attach: true, Claim: true})
			if err != nil {
				if o.AutoRemove {
					e.Remove(rec, true)
				}
				return engineExit(err)
			}
			code := attachStream(st.Attach, st.Pid, o.Tty, o.Stdin, true)
			engine.Trace("exited")
			if r, err := e.Containers.Get(rec.ID); err == nil {
				if err := e.CleanupAttached(r); err != nil {
					fmt.Fprintln(os.Stderr, "Error: cleanup:", err)
				}
			}
			engine.Trace("cleaned up")
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	// -h is --hostname, as in docker: help is only --help.
	c.Flags().Bool("help", false, "help for "+use)
	f.add(c.Flags(), run)
	return c
}

func newStartCommand() *cobra.Command {
	var attach, interactive bool
	c := &cobra.Command{
		Use:   "start [flags] CONTAINER...",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			if attach {
				if len(args) != 1 {
					return fmt.Errorf("start -a takes one container")
				}
				r, err := lookup(e, args[0])
				if err != nil {
					return err
				}
				o, err := engine.Options(r.Options)
				if err != nil {
					return err
				}
				st, err := e.Start(c.Context(), r, engine.StartOptions{Attach: true, Claim: true})
				if err != nil {
					return engineExit(err)
				}
				code := attachStream(st.Attach, st.Pid, o.Tty, interactive && o.Stdin, true)
				if r, err := e.Containers.Get(r.ID); err == nil {
					e.CleanupAttached(r)
				}
				if code != 0 {
					os.Exit(code)
				}
				return nil
			}
			return forEach(e, args, false, func(r *container.Record) error {
				if e.State(r).Running {
					return nil
				}
				_, err := e.Start(c.Context(), r, engine.StartOptions{})
				return engineExit(err)
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "attach to the container's output")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	return c
}
