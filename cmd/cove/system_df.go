package main

// `cove system df` (disk use of images, containers, volumes, docker's
// layout) and `cove info` (storage and quota drivers, counts, runtime).

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"cove/internal/engine"
	"cove/internal/engine/quota"
)

func init() { register(newInfoCommand) }

func newSystemDfCommand() *cobra.Command {
	var verbose bool
	var format string
	c := &cobra.Command{
		Use:   "df [flags]",
		Short: "Show disk use of images, containers and volumes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			du, err := e.DiskUsage(c.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				b, _ := json.MarshalIndent(du, "", "    ")
				fmt.Println(string(b))
				return nil
			}
			if format != "" {
				return fmt.Errorf("--format %s: only json", format)
			}
			if verbose {
				return printDfVerbose(du)
			}
			return printDf(du)
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "one line per image, container and volume")
	c.Flags().StringVar(&format, "format", "", "json")
	return c
}

func reclaim(size, reclaimable int64) string {
	pct := 0
	if size > 0 {
		pct = int(reclaimable * 100 / size)
	}
	return fmt.Sprintf("%s (%d%%)", humanSize(reclaimable), pct)
}

func printDf(du *engine.DiskUsage) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
	size, free := du.ImagesSize, int64(0)
	active := 0
	for _, i := range du.Images {
		if i.Containers > 0 {
			active++
		} else {
			free += i.Size - i.Shared
		}
	}
	fmt.Fprintf(w, "Images\t%d\t%d\t%s\t%s\n", len(du.Images), active, humanSize(size), reclaim(size, free))
	size, free, active = 0, 0, 0
	for _, c := range du.Containers {
		size += c.SizeRw
		if c.Running {
			active++
		} else {
			free += c.SizeRw
		}
	}
	fmt.Fprintf(w, "Containers\t%d\t%d\t%s\t%s\n", len(du.Containers), active, humanSize(size), reclaim(size, free))
	size, free, active = 0, 0, 0
	for _, v := range du.Volumes {
		size += v.Size
		if v.RefCount > 0 {
			active++
		} else {
			free += v.Size
		}
	}
	fmt.Fprintf(w, "Local Volumes\t%d\t%d\t%s\t%s\n", len(du.Volumes), active, humanSize(size), reclaim(size, free))
	fmt.Fprintf(w, "Build Cache\t0\t0\t0B\t0B\n")
	return w.Flush()
}

func printDfVerbose(du *engine.DiskUsage) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
	for _, i := range du.Images {
		names := i.Names
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			repo, tag := n, "<none>"
			if k := strings.LastIndex(n, ":"); k > strings.LastIndex(n, "/") {
				repo, tag = n[:k], n[k+1:]
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", repo, tag, shortID(i.ID), since(i.Created),
				humanSize(i.Size), humanSize(i.Shared), humanSize(i.Size-i.Shared), i.Containers)
		}
	}
	fmt.Fprintln(w, "\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
	for _, c := range du.Containers {
		cmd := strings.Join(c.Command, " ")
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
		fmt.Fprintf(w, "%s\t%s\t%q\t%d\t%s\t%s\t%s\t%s\n", c.ID[:12], c.Image, cmd, c.Volumes, humanSize(c.SizeRw),
			since(c.Created), c.Status, c.Name)
	}
	fmt.Fprintln(w, "\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE\tLIMIT")
	for _, v := range du.Volumes {
		limit := ""
		if v.Limit > 0 {
			limit = humanSize(v.Limit)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", v.Name, v.RefCount, humanSize(v.Size), limit)
	}
	return w.Flush()
}

// systemInfo is what `cove info` reports.
type systemInfo struct {
	Containers        int      `json:"Containers"`
	ContainersRunning int      `json:"ContainersRunning"`
	ContainersPaused  int      `json:"ContainersPaused"`
	ContainersStopped int      `json:"ContainersStopped"`
	Images            int      `json:"Images"`
	Volumes           int      `json:"Volumes"`
	Driver            string   `json:"Driver"`
	QuotaDriver       string   `json:"QuotaDriver"`
	QuotaDrivers      []string `json:"QuotaDrivers"`
	VolumeQuota       []string `json:"VolumeQuotaDrivers"`
	CgroupVersion     string   `json:"CgroupVersion"`
	DefaultRuntime    string   `json:"DefaultRuntime"`
	RootDir           string   `json:"DockerRootDir"`
}

func newInfoCommand() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info [flags]",
		Short: "Show system-wide information: storage and quota drivers, counts",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			in := systemInfo{RootDir: e.Root(), CgroupVersion: cgroupVersion()}
			if rt, err := e.RuntimePath(""); err == nil {
				in.DefaultRuntime = rt
			}
			recs, err := e.Containers.List()
			if err != nil {
				return err
			}
			for _, r := range recs {
				st := e.State(r)
				switch {
				case st.Paused:
					in.ContainersPaused++
				case st.Running:
					in.ContainersRunning++
				default:
					in.ContainersStopped++
				}
			}
			in.Containers = len(recs)
			snaps, err := e.Snapshots()
			if err != nil {
				return err
			}
			in.Driver, in.QuotaDriver, in.QuotaDrivers = snaps.Driver(), snaps.QuotaDriver(), snaps.QuotaDrivers()
			if imgs, err := e.Images(); err == nil {
				if list, err := imgs.List(); err == nil {
					ids := map[string]bool{}
					for _, i := range list {
						ids[i.ID()] = true
					}
					in.Images = len(ids)
				}
			}
			if vols, err := e.Volumes(); err == nil {
				if list, err := vols.List(); err == nil {
					in.Volumes = len(list)
				}
				in.VolumeQuota = quota.Available(vols.Dir())
			}
			if format == "json" {
				b, _ := json.MarshalIndent(in, "", "    ")
				fmt.Println(string(b))
				return nil
			}
			if format != "" {
				return fmt.Errorf("--format %s: only json", format)
			}
			none := func(s string) string {
				if s == "" {
					return "none"
				}
				return s
			}
			fmt.Printf("Containers: %d\n Running: %d\n Paused: %d\n Stopped: %d\n", in.Containers,
				in.ContainersRunning, in.ContainersPaused, in.ContainersStopped)
			fmt.Printf("Images: %d\nVolumes: %d\n", in.Images, in.Volumes)
			fmt.Printf("Storage Driver: %s\n Quota Driver (--storage-opt size): %s\n Quota Drivers Available: %s\n",
				in.Driver, none(in.QuotaDriver), none(strings.Join(in.QuotaDrivers, ", ")))
			fmt.Printf("Volume Quota Drivers (--opt size): %s\n", none(strings.Join(in.VolumeQuota, ", ")))
			fmt.Printf("Cgroup Driver: cgroupfs\nCgroup Version: %s\nDefault Runtime: %s\nRoot Dir: %s\n",
				in.CgroupVersion, in.DefaultRuntime, in.RootDir)
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "json")
	return c
}

// cgroupVersion is 2 on a unified host, 1 (hybrid when cgroup2 is
// mounted beside the v1 hierarchies) otherwise.
func cgroupVersion() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "1 (hybrid)"
	}
	return "1"
}
