package main

// `cove update`: change resource limits of containers, live.

import (
	"fmt"
	"maps"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"cove/internal/engine"
	"cove/internal/engine/container"
)

func init() { register(newUpdateCommand) }

func newUpdateCommand() *cobra.Command {
	var f resourceFlags
	var restart string
	var storageOpt []string
	c := &cobra.Command{
		Use:   "update [flags] CONTAINER...",
		Short: "Update the resource limits (and restart policy) of containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			fs := c.Flags()
			n := 0
			fs.Visit(func(fl *pflag.Flag) {
				if c.InheritedFlags().Lookup(fl.Name) == nil {
					n++
				}
			})
			if n == 0 {
				return fmt.Errorf("update: give at least one limit to change")
			}
			if fs.Changed("restart") {
				if _, _, err := engine.RestartPolicy(restart); err != nil {
					return err
				}
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			return forEach(e, args, false, func(r *container.Record) error {
				return e.Update(r, func(o *engine.RunOptions) error {
					if fs.Changed("restart") {
						o.Restart = restart
						if restart == "no" {
							o.Restart = ""
						}
					}
					if fs.Changed("storage-opt") {
						so, err := kvMap(storageOpt, "--storage-opt")
						if err != nil {
							return err
						}
						m := maps.Clone(o.StorageOpt)
						if m == nil {
							m = map[string]string{}
						}
						maps.Copy(m, so)
						o.StorageOpt = m
					}
					return f.parse(fs, &o.Resources)
				})
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringArrayVar(&storageOpt, "storage-opt", nil, "storage option: size=SIZE resizes the writable layer")
	c.Flags().StringVar(&restart, "restart", "", "restart policy: no, on-failure[:N], always, unless-stopped")
	return c
}
