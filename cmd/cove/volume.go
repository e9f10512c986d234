package main

// `cove volume create/ls/inspect/rm/prune`.

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/spf13/cobra"

	"cove/internal/engine/quota"
	"cove/internal/engine/volume"
)

func init() { register(newVolumeCommand) }

func openVolumes() (*volume.Store, error) {
	e, err := openEngine()
	if err != nil {
		return nil, err
	}
	return e.Volumes()
}

// volumeEvent journals a volume event (best effort).
func volumeEvent(action, name string) {
	if e, err := openEngine(); err == nil {
		e.Emit("volume", action, name, nil)
	}
}

func newVolumeCommand() *cobra.Command {
	c := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	c.AddCommand(newVolumeCreateCommand(), newVolumeListCommand(), newVolumeInspectCommand(),
		newVolumeRemoveCommand(), newVolumePruneCommand())
	return c
}

func newVolumeCreateCommand() *cobra.Command {
	var driver string
	var opts, labels []string
	c := &cobra.Command{
		Use:   "create [flags] [NAME]",
		Short: "Create a volume (--opt size=10g caps it)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := kvMap(opts, "--opt")
			if err != nil {
				return err
			}
			l, err := kvMap(labels, "--label")
			if err != nil {
				return err
			}
			vols, err := openVolumes()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			v, err := vols.Create(name, volume.CreateOptions{Driver: driver, Options: o, Labels: l})
			if err != nil {
				return err
			}
			volumeEvent("create", v.Name)
			fmt.Println(v.Name)
			return nil
		},
	}
	c.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver (local)")
	c.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver option: size=SIZE, quota=btrfs|loop|project")
	c.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a label (KEY=VALUE)")
	return c
}

func newVolumeListCommand() *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			vols, err := openVolumes()
			if err != nil {
				return err
			}
			list, err := vols.List()
			if err != nil {
				return err
			}
			var keep []*volume.Volume
			for _, v := range list {
				ok, err := volumeMatches(v, filters)
				if err != nil {
					return err
				}
				if ok {
					keep = append(keep, v)
				}
			}
			if format != "" {
				tmpl, err := template.New("ls").Parse(format)
				if err != nil {
					return fmt.Errorf("--format: %w", err)
				}
				for _, v := range keep {
					if err := tmpl.Execute(os.Stdout, v); err != nil {
						return fmt.Errorf("--format: %w", err)
					}
					fmt.Println()
				}
				return nil
			}
			if quiet {
				for _, v := range keep {
					fmt.Println(v.Name)
				}
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "DRIVER\tVOLUME NAME\tSIZE LIMIT")
			for _, v := range keep {
				limit := ""
				if v.Quota != nil {
					limit = quota.HumanSize(v.Quota.Size) + " (" + v.Quota.Driver + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", v.Driver, v.Name, limit)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only names")
	c.Flags().StringVar(&format, "format", "", "Go template ({{.Name}} {{.Driver}} {{.Mountpoint}} ...)")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: name=, label=KEY[=VALUE], dangling=true|false")
	return c
}

func volumeMatches(v *volume.Volume, filters []string) (bool, error) {
	for _, f := range filters {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("--filter %s: want KEY=VALUE", f)
		}
		switch k {
		case "name":
			if !strings.Contains(v.Name, val) {
				return false, nil
			}
		case "label":
			lk, lv, hasV := strings.Cut(val, "=")
			got, has := v.Labels[lk]
			if !has || hasV && got != lv {
				return false, nil
			}
		case "dangling":
			if (val == "true" || val == "1") != (len(v.UsedBy) == 0) {
				return false, nil
			}
		case "driver":
			if v.Driver != val {
				return false, nil
			}
		default:
			return false, fmt.Errorf("--filter %s: unknown key (name, label, dangling, driver)", f)
		}
	}
	return true, nil
}

func newVolumeInspectCommand() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [flags] VOLUME...",
		Short: "Show volumes' details",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			vols, err := openVolumes()
			if err != nil {
				return err
			}
			var out []*volume.Volume
			for _, a := range args {
				v, err := vols.Inspect(a)
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return printInspect(out, format)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template")
	return c
}

func newVolumeRemoveCommand() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [flags] VOLUME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes (refused while a container uses one, unless -f)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			vols, err := openVolumes()
			if err != nil {
				return err
			}
			var failed int
			for _, a := range args {
				if err := vols.Remove(a, force); err != nil {
					fmt.Fprintln(os.Stderr, "Error:", err)
					failed++
					continue
				}
				volumeEvent("destroy", a)
				fmt.Println(a)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d volumes failed", failed, len(args))
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove even while containers use it")
	return c
}

func newVolumePruneCommand() *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Remove volumes no container uses (anonymous ones; -a: all)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			labels := map[string]string{}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "label" {
					return fmt.Errorf("--filter %s: only label=KEY[=VALUE]", f)
				}
				lk, lv, _ := strings.Cut(v, "=")
				labels[lk] = lv
			}
			vols, err := openVolumes()
			if err != nil {
				return err
			}
			names, size, err := vols.Prune(volume.PruneOptions{All: all, Labels: labels})
			if err != nil {
				return err
			}
			for _, n := range names {
				volumeEvent("destroy", n)
			}
			if len(names) > 0 {
				fmt.Println("Deleted Volumes:")
				for _, n := range names {
					fmt.Println(n)
				}
				fmt.Println()
			}
			fmt.Printf("Total reclaimed space: %s\n", quota.HumanSize(size))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "named volumes too")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt (cove never prompts)")
	c.Flags().StringArrayVar(&filters, "filter", nil, "label=KEY[=VALUE]")
	return c
}
