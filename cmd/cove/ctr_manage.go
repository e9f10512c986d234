package main

// Container verbs that act on existing containers: stop, restart, kill,
// rm, wait, rename, pause, unpause, top, stats, port, and `cove container`.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"cove/internal/engine"
	"cove/internal/engine/container"
	"cove/internal/engine/network"
)

func init() {
	register(newStopCommand)
	register(newRestartCommand)
	register(newKillCommand)
	register(func() *cobra.Command { return newCtrRemoveCommand("rm") })
	register(newWaitCommand)
	register(newRenameCommand)
	register(func() *cobra.Command { return newPauseCommand(true) })
	register(func() *cobra.Command { return newPauseCommand(false) })
	register(newTopCommand)
	register(newStatsCommand)
	register(newPortCommand)
	register(newContainerCommand)
}

// newContainerCommand is `cove container VERB`, docker's management form.
func newContainerCommand() *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "Manage containers", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	c.AddCommand(newCreateRunCommand(true), newCreateRunCommand(false), newStartCommand(), newStopCommand(),
		newRestartCommand(), newKillCommand(), newCtrRemoveCommand("rm"), newWaitCommand(), newRenameCommand(),
		newPauseCommand(true), newPauseCommand(false), newTopCommand(), newStatsCommand(), newPortCommand(),
		newCtrListCommand("ls"), newCtrInspectCommand(), newLogsCommand(), newExecCommand(), newAttachCommand(),
		newCtrPruneCommand(), newCleanupCommand())
	return c
}

func newStopCommand() *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "stop [flags] CONTAINER...",
		Short: "Stop running containers (the stop signal, then SIGKILL after the timeout)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			d := time.Duration(-1)
			if c.Flags().Changed("time") {
				d = time.Duration(timeout) * time.Second
			}
			return forEach(e, args, false, func(r *container.Record) error {
				return e.Stop(c.Context(), r, d)
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing")
	return c
}

func newRestartCommand() *cobra.Command {
	var timeout int
	c := &cobra.Command{
		Use:   "restart [flags] CONTAINER...",
		Short: "Restart containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			d := time.Duration(-1)
			if c.Flags().Changed("time") {
				d = time.Duration(timeout) * time.Second
			}
			return forEach(e, args, false, func(r *container.Record) error {
				if err := e.Stop(c.Context(), r, d); err != nil {
					return err
				}
				_, err := e.Start(c.Context(), r, engine.StartOptions{})
				return engineExit(err)
			})
		},
	}
	c.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing")
	return c
}

func newKillCommand() *cobra.Command {
	var sig string
	c := &cobra.Command{
		Use:   "kill [flags] CONTAINER...",
		Short: "Send a signal to containers (default SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := engine.ParseSignal(sig)
			if err != nil {
				return err
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			return forEach(e, args, false, func(r *container.Record) error {
				if s == syscall.SIGKILL || s == syscall.SIGTERM {
					// An explicit kill is not a failure to restart from.
					os.WriteFile(e.RunDir(r.ID)+"/stopped", nil, 0o600)
				}
				return e.Kill(r, s)
			})
		},
	}
	c.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send")
	return c
}

func newCtrRemoveCommand(use string) *cobra.Command {
	var force, volumes bool
	c := &cobra.Command{
		Use:   use + " [flags] CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			return forEach(e, args, false, func(r *container.Record) error {
				o, _ := engine.Options(r.Options)
				if err := e.Remove(r, force); err != nil {
					return err
				}
				if volumes {
					return e.RemoveAnonymousVolumes(r.ID, o)
				}
				return nil
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes too")
	return c
}

func newWaitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "Wait for containers to exit and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			for _, a := range args {
				r, err := lookup(e, a)
				if err != nil {
					return err
				}
				code, err := e.Wait(c.Context(), r)
				if err != nil {
					return err
				}
				fmt.Println(code)
			}
			return nil
		},
	}
}

func newRenameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			return e.Rename(r, args[1])
		},
	}
}

func newPauseCommand(pause bool) *cobra.Command {
	use, short := "pause", "Freeze all processes of containers"
	if !pause {
		use, short = "unpause", "Thaw paused containers"
	}
	return &cobra.Command{
		Use:   use + " CONTAINER...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			return forEach(e, args, false, func(r *container.Record) error {
				if pause {
					return e.Pause(r)
				}
				return e.Unpause(r)
			})
		},
	}
}

func newTopCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Show a container's processes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			out, err := e.Top(r, args[1:])
			if err != nil {
				return err
			}
			os.Stdout.Write(out)
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	return c
}

// statsView is one line of `cove stats`.
type statsView struct {
	ID       string  `json:"ID"`
	Name     string  `json:"Name"`
	CPUNanos uint64  `json:"CPUNanos"`
	CPUPerc  float64 `json:"CPUPerc"`
	MemUsage uint64  `json:"MemUsage"`
	MemLimit uint64  `json:"MemLimit"`
	Pids     uint64  `json:"PIDs"`
}

type runtimeStats struct {
	Data struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
		} `json:"pids"`
	} `json:"data"`
}

func newStatsCommand() *cobra.Command {
	var noStream, all bool
	var format string
	c := &cobra.Command{
		Use:   "stats [flags] [CONTAINER...]",
		Short: "Show containers' resource usage",
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			var recs []*container.Record
			if len(args) == 0 {
				list, err := e.Containers.List()
				if err != nil {
					return err
				}
				for _, r := range list {
					if all || e.State(r).Running {
						recs = append(recs, r)
					}
				}
			} else {
				for _, a := range args {
					r, err := lookup(e, a)
					if err != nil {
						return err
					}
					recs = append(recs, r)
				}
			}
			sample := func() map[string]statsView {
				m := map[string]statsView{}
				for _, r := range recs {
					v := statsView{ID: r.ID[:12], Name: r.Name}
					if out, err := e.Stats(r); err == nil {
						var rs runtimeStats
						if json.Unmarshal(out, &rs) == nil {
							v.CPUNanos = rs.Data.CPU.Usage.Total
							v.MemUsage, v.MemLimit = rs.Data.Memory.Usage.Usage, rs.Data.Memory.Usage.Limit
							v.Pids = rs.Data.Pids.Current
						}
					}
					m[r.ID] = v
				}
				return m
			}
			prev := sample()
			t0 := time.Now()
			for {
				time.Sleep(500 * time.Millisecond)
				cur := sample()
				dt := time.Since(t0)
				t0 = time.Now()
				if format != "json" {
					fmt.Printf("%-12s  %-20s  %7s  %22s  %5s\n", "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS")
				}
				for _, r := range recs {
					v := cur[r.ID]
					if p, ok := prev[r.ID]; ok && v.CPUNanos >= p.CPUNanos {
						v.CPUPerc = float64(v.CPUNanos-p.CPUNanos) / float64(dt.Nanoseconds()) * 100
					}
					if format == "json" {
						b, _ := json.Marshal(v)
						fmt.Println(string(b))
						continue
					}
					fmt.Printf("%-12s  %-20s  %6.2f%%  %10s / %-9s  %5d\n", v.ID, v.Name, v.CPUPerc,
						humanBytes(v.MemUsage), humanBytes(v.MemLimit), v.Pids)
				}
				if noStream {
					return nil
				}
				prev = cur
			}
		},
	}
	c.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	c.Flags().BoolVarP(&all, "all", "a", false, "all containers, not only running ones")
	c.Flags().StringVar(&format, "format", "", "json for one JSON object per container")
	return c
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n >= 1<<62 {
		return "unlimited"
	}
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newPortCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List a container's published ports",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := lookup(e, args[0])
			if err != nil {
				return err
			}
			ports, err := e.Ports(r)
			if err != nil {
				return err
			}
			for _, line := range portLines(ports) {
				if len(args) == 2 {
					want := args[1]
					if !strings.Contains(want, "/") {
						want += "/tcp"
					}
					if !strings.HasPrefix(line, want+" ") {
						continue
					}
					line = strings.TrimPrefix(line, want+" -> ")
				}
				fmt.Println(line)
			}
			return nil
		},
	}
}

// portLines renders mappings as docker does: "80/tcp -> 0.0.0.0:8080".
func portLines(ports []network.PortMapping) []string {
	var out []string
	for _, p := range ports {
		n := int(p.Range)
		if n < 1 {
			n = 1
		}
		for i := 0; i < n; i++ {
			ip := p.HostIP
			if ip == "" {
				ip = "0.0.0.0"
			}
			out = append(out, fmt.Sprintf("%d/%s -> %s:%d", int(p.ContainerPort)+i, p.Proto, ip, int(p.HostPort)+i))
		}
	}
	return out
}

func newCtrPruneCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			list, err := e.Containers.List()
			if err != nil {
				return err
			}
			for _, r := range list {
				st := e.State(r)
				if st.Status != engine.StatusExited && st.Status != engine.StatusCreated || st.MonitorPid != 0 {
					continue
				}
				if err := e.Remove(r, false); err != nil {
					fmt.Fprintln(os.Stderr, "Error:", err)
					continue
				}
				fmt.Println(r.ID)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt (cove never prompts)")
	return c
}

// newCleanupCommand is what a supervisor runs after a container's last exit.
func newCleanupCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "cleanup CONTAINER",
		Short:  "Undo a container's run after it exited (called by cove-monitor)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			r, err := e.Containers.Get(args[0])
			if err != nil {
				if strings.Contains(err.Error(), "no such container") {
					return nil
				}
				return err
			}
			return e.Cleanup(r)
		},
	}
}
