package main

// `cove cp`: files between a container and the host.

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func init() { register(newCpCommand) }

func newCpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cp CONTAINER:SRC DEST | SRC CONTAINER:DEST",
		Short: "Copy files between a container and the host",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			e, err := openEngine()
			if err != nil {
				return err
			}
			split := func(s string) (string, string, bool) {
				if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
					return "", s, false
				}
				name, p, ok := strings.Cut(s, ":")
				return name, p, ok
			}
			sc, sp, sok := split(args[0])
			dc, dp, dok := split(args[1])
			switch {
			case sok && !dok:
				r, err := lookup(e, sc)
				if err != nil {
					return err
				}
				return e.CopyFrom(c.Context(), r, sp, args[1])
			case dok && !sok:
				r, err := lookup(e, dc)
				if err != nil {
					return err
				}
				return e.CopyTo(c.Context(), r, args[0], dp)
			}
			return fmt.Errorf("cp: exactly one of the two paths must be CONTAINER:PATH")
		},
	}
}
