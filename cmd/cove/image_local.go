package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"cove/internal/engine/image"

	"github.com/spf13/cobra"
)

func init() {
	register(func() *cobra.Command { return newListCommand("images") })
	register(func() *cobra.Command { return newRemoveCommand("rmi") })
	register(newTagCommand)
	register(newSaveCommand)
	register(newLoadCommand)
	register(newImportCommand)
	register(newHistoryCommand)
}

// listRow is one line of `cove images`; its fields are the --format names.
type listRow struct {
	ID         string    `json:"Id"`
	Repository string    `json:"Repository"`
	Tag        string    `json:"Tag"`
	Digest     string    `json:"Digest"`
	Names      []string  `json:"Names"`
	Size       int64     `json:"Size"`
	Created    time.Time `json:"Created"`
}

// CreatedSince is "3 hours ago" style.
func (r listRow) CreatedSince() string { return since(r.Created) }

// CreatedAt is the creation time.
func (r listRow) CreatedAt() string { return r.Created.Format(time.RFC3339) }

func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	case d < 2*365*24*time.Hour:
		return fmt.Sprintf("%d months ago", int(d.Hours()/24/30))
	}
	return fmt.Sprintf("%d years ago", int(d.Hours()/24/365))
}

func shortID(id string) string { return short(id) }

func rowsOf(imgs []*image.Image) []listRow {
	var rows []listRow
	for _, img := range imgs {
		r := listRow{ID: img.ID(), Digest: img.RepoDigest(), Names: img.Names, Size: img.Size(), Repository: "<none>", Tag: "<none>"}
		if img.Config.Created != nil {
			r.Created = *img.Config.Created
		}
		if ref, err := image.ParseReference(img.Name); err == nil && !strings.HasPrefix(img.Name, "sha256:") {
			r.Repository = ref.Repository()
			if ref.Tag != "" {
				r.Tag = ref.Tag
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func newListCommand(use string) *cobra.Command {
	var format string
	var asJSON, quiet, digests, noTrunc bool
	c := &cobra.Command{
		Use:   use + " [flags]",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			rows := rowsOf(imgs)
			if asJSON || format == "json" {
				return printJSON(rows)
			}
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Println(idText(r.ID, noTrunc))
					}
				}
				return nil
			}
			if format != "" && format != "table" {
				return printTemplate(format, rows)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			head := "REPOSITORY\tTAG\t"
			if digests {
				head += "DIGEST\t"
			}
			fmt.Fprintln(tw, head+"IMAGE ID\tCREATED\tSIZE")
			for _, r := range rows {
				line := r.Repository + "\t" + r.Tag + "\t"
				if digests {
					line += r.Digest + "\t"
				}
				fmt.Fprintf(tw, "%s%s\t%s\t%s\n", line, idText(r.ID, noTrunc), since(r.Created), humanSize(r.Size))
			}
			return tw.Flush()
		},
	}
	if use == "ls" {
		c.Aliases = []string{"list"}
	}
	f := c.Flags()
	f.StringVar(&format, "format", "", "output: table, json, or a Go template ({{.Repository}}, {{.Tag}}, {{.ID}}, {{.Digest}}, {{.Size}}, {{.CreatedAt}})")
	f.BoolVar(&asJSON, "json", false, "output JSON (same as --format json)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print image IDs only")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	return c
}

func idText(id string, full bool) string {
	if full {
		return id
	}
	return shortID(id)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func printTemplate(format string, rows any) error {
	t, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) string { b, _ := json.Marshal(v); return string(b) },
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	switch v := rows.(type) {
	case []listRow:
		for _, r := range v {
			if err := t.Execute(os.Stdout, r); err != nil {
				return err
			}
			fmt.Println()
		}
	case []inspectView:
		for _, r := range v {
			if err := t.Execute(os.Stdout, r); err != nil {
				return err
			}
			fmt.Println()
		}
	}
	return nil
}

// inspectView is what `cove image inspect` prints, in Docker's field names.
type inspectView struct {
	ID                string            `json:"Id"`
	Digest            string            `json:"Digest"`
	RepoTags          []string          `json:"RepoTags"`
	RepoDigests       []string          `json:"RepoDigests"`
	Created           *time.Time        `json:"Created,omitempty"`
	Author            string            `json:"Author,omitempty"`
	Architecture      string            `json:"Architecture"`
	Os                string            `json:"Os"`
	Variant           string            `json:"Variant,omitempty"`
	Size              int64             `json:"Size"`
	Config            any               `json:"Config"`
	RootFS            any               `json:"RootFS"`
	History           any               `json:"History"`
	ManifestMediaType string            `json:"ManifestMediaType"`
	Layers            any               `json:"Layers"`
	Labels            map[string]string `json:"Labels,omitempty"`
}

func newInspectCommand() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [flags] IMAGE...",
		Short: "Show an image's configuration, layers and history",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			all, err := s.List()
			if err != nil {
				return err
			}
			var out []inspectView
			for _, a := range args {
				img, err := s.Get(a)
				if err != nil {
					return err
				}
				v := inspectView{ID: img.ID(), Digest: img.Digest, RepoTags: []string{}, RepoDigests: []string{},
					Created: img.Config.Created, Author: img.Config.Author, Architecture: img.Config.Architecture,
					Os: img.Config.OS, Variant: img.Config.Variant, Size: img.Size(), Config: img.Config.Config,
					RootFS: img.Config.RootFS, History: img.Config.History, ManifestMediaType: img.MediaType,
					Layers: img.Manifest.Layers, Labels: img.Config.Config.Labels}
				for _, o := range all {
					if o.Digest != img.Digest || strings.HasPrefix(o.Name, "sha256:") {
						continue
					}
					v.RepoTags = append(v.RepoTags, o.Name)
					if ref, err := image.ParseReference(o.Name); err == nil {
						v.RepoDigests = append(v.RepoDigests, ref.Repository()+"@"+o.RepoDigest())
					}
				}
				sort.Strings(v.RepoTags)
				out = append(out, v)
			}
			if format != "" && format != "json" {
				return printTemplate(format, out)
			}
			return printJSON(out)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template applied to each image")
	return c
}

func newRemoveCommand(use string) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   use + " [flags] IMAGE...",
		Short: "Remove images (refused while containers use them, unless --force)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			var errs []error
			for _, a := range args {
				res, err := s.Remove(c.Context(), a, force)
				for _, n := range res.Untagged {
					fmt.Println("Untagged:", n)
				}
				for _, id := range res.Deleted {
					fmt.Println("Deleted:", id)
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "remove even if containers use the image")
	return c
}

func newTagCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "tag IMAGE TARGET...",
		Short: "Give an image more names",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			for _, t := range args[1:] {
				if err := s.Tag(args[0], t); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func newPruneCommand() *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Remove unreferenced blobs, snapshots and partial downloads (--all: also unused images)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_ = force // no prompt: cove never asks interactively
			s, err := openImages()
			if err != nil {
				return err
			}
			if all {
				imgs, err := s.List()
				if err != nil {
					return err
				}
				for _, img := range imgs {
					res, err := s.Remove(c.Context(), img.Name, false)
					if errors.Is(err, image.ErrInUse) || errors.Is(err, image.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					for _, n := range res.Untagged {
						fmt.Println("Untagged:", n)
					}
				}
			}
			rep, err := s.GC(c.Context(), image.GCOptions{All: true})
			if err != nil {
				return err
			}
			for _, r := range rep.Records {
				fmt.Println("Repaired (blobs missing, removed):", r)
			}
			fmt.Printf("Removed %d blobs, %d snapshots, %d partial downloads\nTotal reclaimed space: %s\n",
				len(rep.Blobs), len(rep.Snapshots), len(rep.Ingests), humanSize(rep.Bytes))
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt (cove never prompts)")
	return c
}

func newSaveCommand() *cobra.Command {
	var output, format string
	c := &cobra.Command{
		Use:   "save [flags] IMAGE...",
		Short: "Write images to a docker-archive, OCI archive or OCI layout directory",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			if format == image.FormatOCIDir {
				if output == "" {
					return errors.New("save --format oci-dir needs --output DIR")
				}
				return s.Save(c.Context(), args, format, nil, output)
			}
			if output == "" {
				if isTerminal(os.Stdout) {
					return errors.New("refusing to write an archive to a terminal: use --output or redirect stdout")
				}
				return s.Save(c.Context(), args, format, os.Stdout, "")
			}
			tmp, err := os.CreateTemp(filepath.Dir(output), ".cove-save-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if err := s.Save(c.Context(), args, format, tmp, ""); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			os.Chmod(tmp.Name(), 0o644)
			return os.Rename(tmp.Name(), output)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to this file (or directory for oci-dir) instead of stdout")
	c.Flags().StringVar(&format, "format", image.FormatDockerArchive, "docker-archive, oci-archive or oci-dir")
	return c
}

func newLoadCommand() *cobra.Command {
	var input, platform string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [flags]",
		Short: "Load images from a docker-archive, OCI archive or OCI layout directory",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			p := newProgress(os.Stderr, quiet)
			o := image.LoadOptions{Platform: platform, Progress: p.event}
			var names []string
			if st, err := os.Stat(input); input != "" && err == nil && st.IsDir() {
				names, err = s.LoadDir(c.Context(), input, o)
				if err != nil {
					return err
				}
			} else {
				in := os.Stdin
				if input != "" {
					f, err := os.Open(input)
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				} else if isTerminal(os.Stdin) {
					return errors.New("load: give --input or pipe an archive to stdin")
				}
				if names, err = s.Load(c.Context(), in, o); err != nil {
					return err
				}
			}
			p.finish()
			for _, n := range names {
				fmt.Println("Loaded image:", n)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "archive file or OCI layout directory (default stdin)")
	c.Flags().StringVar(&platform, "platform", "", "platform to pick from multi-platform OCI indexes")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return c
}

func newImportCommand() *cobra.Command {
	var message string
	var changes []string
	c := &cobra.Command{
		Use:   "import [flags] TARBALL|DIR|- [REFERENCE]",
		Short: "Make a one-layer image from a rootfs tarball or directory",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			o := image.ImportOptions{Message: message}
			for _, ch := range changes {
				rest, ok := strings.CutPrefix(ch, "CMD ")
				if !ok {
					return fmt.Errorf("--change %q: only CMD is supported", ch)
				}
				if err := json.Unmarshal([]byte(rest), &o.Cmd); err != nil {
					o.Cmd = []string{"/bin/sh", "-c", rest}
				}
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			img, err := s.Import(c.Context(), args[0], os.Stdin, ref, o)
			if err != nil {
				return err
			}
			fmt.Println(img.ID())
			return nil
		},
	}
	c.Flags().StringVarP(&message, "message", "m", "", "history comment")
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction (CMD only)")
	return c
}

func newHistoryCommand() *cobra.Command {
	var noTrunc, quiet bool
	c := &cobra.Command{
		Use:   "history [flags] IMAGE",
		Short: "Show how an image's layers were made",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			img, err := s.Get(args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			}
			layer := len(img.Manifest.Layers)
			hist := img.Config.History
			for i := len(hist) - 1; i >= 0; i-- {
				h := hist[i]
				id, size := "<missing>", int64(0)
				if !h.EmptyLayer {
					layer--
					if layer >= 0 {
						id, size = img.Manifest.Layers[layer].Digest.String(), img.Manifest.Layers[layer].Size
					}
				}
				if quiet {
					fmt.Fprintln(tw, idText(id, noTrunc))
					continue
				}
				by := strings.ReplaceAll(h.CreatedBy, "\t", " ")
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				created := "N/A"
				if h.Created != nil {
					created = since(*h.Created)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", idText(id, noTrunc), created, by, humanSize(size), h.Comment)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print layer digests only")
	return c
}
