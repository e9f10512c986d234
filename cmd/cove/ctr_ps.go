package main

// `cove ps` and `cove inspect` of containers.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"cove/internal/engine"
	"cove/internal/engine/container"
)

func init() {
	register(func() *cobra.Command { return newCtrListCommand("ps") })
	register(newCtrInspectCommand)
}

// psView is one row of `cove ps`, with docker's field names for --format.
type psView struct {
	ID         string            `json:"ID"`
	Names      string            `json:"Names"`
	Image      string            `json:"Image"`
	Command    string            `json:"Command"`
	CreatedAt  string            `json:"CreatedAt"`
	RunningFor string            `json:"RunningFor"`
	Status     string            `json:"Status"`
	State      string            `json:"State"`
	Labels     map[string]string `json:"Labels"`
	Ports      string            `json:"Ports"`
	ExitCode   int               `json:"ExitCode"`
	Pid        int               `json:"Pid"`
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func statusText(st engine.State) string {
	switch st.Status {
	case engine.StatusRunning:
		s := "Up " + ago(st.StartedAt)
		if st.MonitorLost {
			s += " (supervisor lost)"
		}
		return s
	case engine.StatusPaused:
		return "Up " + ago(st.StartedAt) + " (Paused)"
	case engine.StatusExited:
		if st.Restarting {
			return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
		}
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, ago(st.FinishedAt))
	}
	return "Created"
}

// filterMatch applies one --filter KEY=VALUE.
func filterMatch(f string, r *container.Record, st engine.State) (bool, error) {
	k, v, ok := strings.Cut(f, "=")
	if !ok {
		return false, fmt.Errorf("--filter %q: want KEY=VALUE", f)
	}
	switch k {
	case "id":
		return strings.HasPrefix(r.ID, v), nil
	case "name":
		return strings.Contains(r.Name, v), nil
	case "status":
		return st.Status == v, nil
	case "label":
		lk, lv, hasV := strings.Cut(v, "=")
		got, ok := r.Labels[lk]
		return ok && (!hasV || got == lv), nil
	case "ancestor":
		return r.Image == v || strings.HasPrefix(r.ImageID, v) || strings.HasPrefix(strings.TrimPrefix(r.ImageID, "sha256:"), v), nil
	case "exited":
		return st.Status == engine.StatusExited && fmt.Sprint(st.ExitCode) == v, nil
	}
	return false, fmt.Errorf("--filter %q: unknown filter (id, name, status, label, ancestor, exited)", f)
}

func newCtrListCommand(use string) *cobra.Command {
	var all, quiet, noTrunc, latest bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     use + " [flags]",
		Aliases: []string{"list"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			recs, err := e.Containers.List()
			if err != nil {
				return err
			}
			var rows []psView
			for _, r := range recs {
				st := e.State(r)
				if !all && !st.Running && len(filters) == 0 {
					continue
				}
				keep := true
				for _, f := range filters {
					ok, err := filterMatch(f, r, st)
					if err != nil {
						return err
					}
					keep = keep && ok
				}
				if !keep {
					continue
				}
				id := r.ID
				if !noTrunc {
					id = id[:12]
				}
				rows = append(rows, psView{
					ID: id, Names: r.Name, Image: r.Image, Command: strings.Join(r.Args, " "),
					CreatedAt: r.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: ago(r.Created) + " ago",
					Status: statusText(st), State: st.Status, Labels: r.Labels, ExitCode: st.ExitCode, Pid: st.Pid,
				})
				if st.Running {
					if ports, err := e.Ports(r); err == nil && len(ports) > 0 {
						rows[len(rows)-1].Ports = strings.Join(portLines(ports), ", ")
					}
				}
				if latest {
					break
				}
			}
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Println(r.ID)
				}
			case format == "json":
				if rows == nil {
					rows = []psView{}
				}
				b, _ := json.MarshalIndent(rows, "", "  ")
				fmt.Println(string(b))
			case format != "" && format != "table":
				tmpl, err := template.New("ps").Funcs(template.FuncMap{"json": toJSON}).Parse(strings.TrimPrefix(format, "table "))
				if err != nil {
					return fmt.Errorf("--format: %w", err)
				}
				for _, r := range rows {
					if err := tmpl.Execute(os.Stdout, r); err != nil {
						return fmt.Errorf("--format: %w", err)
					}
					fmt.Println()
				}
			default:
				tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
				fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
				for _, r := range rows {
					cmd := r.Command
					if !noTrunc && len(cmd) > 20 {
						cmd = cmd[:19] + "…"
					}
					fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", r.ID, r.Image, cmd, r.RunningFor, r.Status, r.Ports, r.Names)
				}
				tw.Flush()
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.BoolVarP(&all, "all", "a", false, "all containers, not only running ones")
	fs.BoolVarP(&quiet, "quiet", "q", false, "only ids")
	fs.BoolVar(&noTrunc, "no-trunc", false, "full ids and commands")
	fs.BoolVarP(&latest, "latest", "l", false, "only the newest container")
	fs.StringVar(&format, "format", "", "json, or a Go template ({{.ID}} {{.Names}} {{.Status}} ...)")
	fs.StringArrayVarP(&filters, "filter", "f", nil, "filter KEY=VALUE (id, name, status, label, ancestor, exited)")
	return c
}

// printInspect prints inspect results: an indented JSON array, or each
// item through the --format template, which sees the JSON field names, as
// docker's do.
func printInspect[T any](items []T, format string) error {
	if format == "" {
		b, _ := json.MarshalIndent(items, "", "    ")
		fmt.Println(string(b))
		return nil
	}
	tmpl, err := template.New("inspect").Funcs(template.FuncMap{"json": toJSON}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	for _, v := range items {
		b, _ := json.Marshal(v)
		var m any
		json.Unmarshal(b, &m)
		if err := tmpl.Execute(os.Stdout, m); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Println()
	}
	return nil
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// inspectCtr is what `cove inspect` prints for a container, in docker's
// field names.
type inspectCtr struct {
	ID           string             `json:"Id"`
	Name         string             `json:"Name"`
	Created      time.Time          `json:"Created"`
	Path         string             `json:"Path"`
	Args         []string           `json:"Args"`
	State        engine.State       `json:"State"`
	Image        string             `json:"Image"`
	ImageName    string             `json:"ImageName"`
	RestartCount int                `json:"RestartCount"`
	LogPath      string             `json:"LogPath"`
	Driver       string             `json:"Driver"`
	Config       inspectConfig      `json:"Config"`
	HostConfig   *engine.RunOptions `json:"HostConfig"`
	// Mounts are the volume, bind and tmpfs mounts, as docker lists them.
	Mounts []engine.MountPoint `json:"Mounts"`
	// With --size: the writable layer's bytes, plus the image's, and its cap.
	SizeRw       *int64 `json:"SizeRw,omitempty"`
	SizeRootFs   *int64 `json:"SizeRootFs,omitempty"`
	StorageLimit *int64 `json:"StorageLimit,omitempty"`
}

type inspectConfig struct {
	Hostname    string            `json:"Hostname"`
	User        string            `json:"User"`
	Env         []string          `json:"Env"`
	Cmd         []string          `json:"Cmd"`
	Image       string            `json:"Image"`
	WorkingDir  string            `json:"WorkingDir"`
	Labels      map[string]string `json:"Labels"`
	Tty         bool              `json:"Tty"`
	OpenStdin   bool              `json:"OpenStdin"`
	StopSignal  string            `json:"StopSignal,omitempty"`
	Annotations map[string]string `json:"Annotations,omitempty"`
}

func newCtrInspectCommand() *cobra.Command {
	var format, typ string
	var size bool
	c := &cobra.Command{
		Use:   "inspect [flags] CONTAINER|IMAGE...",
		Short: "Show low-level information on containers (or images)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			var out []any
			for _, a := range args {
				r, err := lookup(e, a)
				if err != nil || typ == "image" {
					if typ == "container" {
						return err
					}
					// Not a container: maybe an image (docker inspect does both).
					imgs, ierr := e.Images()
					if ierr != nil {
						return err
					}
					img, ierr := imgs.Get(a)
					if ierr != nil {
						return fmt.Errorf("no such object: %s", a)
					}
					out = append(out, map[string]any{"Id": img.ID(), "RepoTags": img.Names, "Config": img.Config.Config,
						"Architecture": img.Config.Architecture, "Os": img.Config.OS, "Created": img.Config.Created})
					continue
				}
				o, err := engine.Options(r.Options)
				if err != nil {
					return err
				}
				st := e.State(r)
				v := inspectCtr{
					ID: r.ID, Name: "/" + r.Name, Created: r.Created, Args: r.Args, State: st,
					Image: r.ImageID, ImageName: r.Image, RestartCount: st.RestartCount,
					LogPath: e.Containers.LogPath(r.ID), HostConfig: o, Mounts: e.MountPoints(o),
					Config: inspectConfig{Hostname: o.Hostname, User: o.User, Env: o.Env, Cmd: o.Args, Image: r.Image,
						WorkingDir: o.Workdir, Labels: r.Labels, Tty: o.Tty, OpenStdin: o.Stdin, StopSignal: o.StopSignal,
						Annotations: r.Annotations},
				}
				if len(r.Args) > 0 {
					v.Path, v.Args = r.Args[0], r.Args[1:]
				}
				if snaps, err := e.Snapshots(); err == nil {
					v.Driver = snaps.Driver()
				}
				if size {
					if cs, err := e.Size(r); err == nil {
						v.SizeRw, v.SizeRootFs, v.StorageLimit = &cs.SizeRw, &cs.SizeRootFs, &cs.Limit
					}
				}
				out = append(out, v)
			}
			return printInspect(out, format)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template")
	c.Flags().StringVar(&typ, "type", "", "container or image")
	c.Flags().BoolVarP(&size, "size", "s", false, "show the container's disk use (SizeRw, SizeRootFs, StorageLimit)")
	return c
}
