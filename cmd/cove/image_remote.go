package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"cove/internal/engine/image"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() {
	register(newImageCommand)
	register(func() *cobra.Command { return newPullCommand("pull") })
	register(func() *cobra.Command { return newPushCommand("push") })
	register(newLoginCommand)
	register(newLogoutCommand)
}

// newImageCommand is `cove image VERB`; the verbs also exist at top level
// where docker has them (pull, push, images, rmi, tag, save, load, import, history).
func newImageCommand() *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	c.AddCommand(newPullCommand("pull"), newPushCommand("push"), newListCommand("ls"), newInspectCommand(),
		newRemoveCommand("rm"), newTagCommand(), newSaveCommand(), newLoadCommand(), newImportCommand(),
		newPruneCommand(), newHistoryCommand())
	return c
}

// remoteFlags are the flags of verbs that talk to registries.
type remoteFlags struct {
	tlsVerify bool
	authfile  string
	quiet     bool
}

func (f *remoteFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (false: allow HTTP and any certificate for this registry)")
	fs.StringVar(&f.authfile, "authfile", "", "credentials file (default <root>/auth.json, ~/.config/cove/auth.json for non-root)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print only the result, no progress")
}

func (f *remoteFlags) auth() *image.Auth {
	p := f.authfile
	if p == "" {
		p = os.Getenv("REGISTRY_AUTH_FILE")
	}
	if p == "" {
		p = image.DefaultAuthFile(global.root)
	}
	return &image.Auth{Path: p}
}

// options builds image.RemoteOptions for a reference; registries listed
// in <root>/registries.json ({"insecure": ["host:port"]}) are insecure too.
func (f *remoteFlags) options(ref string, p *progress) image.RemoteOptions {
	o := image.RemoteOptions{Keychain: f.auth()}
	if p != nil {
		o.Progress = p.event
	}
	if r, err := image.ParseReference(ref); err == nil && !f.tlsVerify {
		o.Insecure = append(o.Insecure, r.Domain)
	}
	if b, err := os.ReadFile(filepath.Join(global.root, "registries.json")); err == nil {
		var conf struct {
			Insecure []string `json:"insecure"`
		}
		if json.Unmarshal(b, &conf) == nil {
			o.Insecure = append(o.Insecure, conf.Insecure...)
		}
	}
	return o
}

func newPullCommand(use string) *cobra.Command {
	var rf remoteFlags
	var platform string
	c := &cobra.Command{
		Use:   use + " [flags] IMAGE",
		Short: "Pull an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			p := newProgress(os.Stderr, rf.quiet)
			img, err := s.Pull(c.Context(), args[0], image.PullOptions{RemoteOptions: rf.options(args[0], p), Platform: platform})
			p.finish()
			if err != nil {
				return err
			}
			if !rf.quiet {
				fmt.Fprintf(os.Stderr, "Pulled %s (digest %s)\n", img.Name, img.RepoDigest())
			}
			fmt.Println(img.ID())
			return nil
		},
	}
	rf.add(c.Flags())
	c.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pull from a multi-platform image (default linux/"+image.DefaultPlatform().Architecture+")")
	return c
}

func newPushCommand(use string) *cobra.Command {
	var rf remoteFlags
	var digestFile string
	c := &cobra.Command{
		Use:   use + " [flags] IMAGE [DESTINATION]",
		Short: "Push an image to a registry",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := openImages()
			if err != nil {
				return err
			}
			dest := ""
			if len(args) == 2 {
				dest = args[1]
			}
			target := dest
			if target == "" {
				target = args[0]
			}
			p := newProgress(os.Stderr, rf.quiet)
			d, err := s.Push(c.Context(), args[0], dest, rf.options(target, p))
			p.finish()
			if err != nil {
				return err
			}
			if digestFile != "" {
				if err := os.WriteFile(digestFile, []byte(d), 0o644); err != nil {
					return err
				}
			}
			if !rf.quiet {
				fmt.Fprintf(os.Stderr, "Pushed %s\n", d)
			}
			return nil
		},
	}
	rf.add(c.Flags())
	c.Flags().StringVar(&digestFile, "digestfile", "", "write the pushed manifest digest to this file")
	return c
}

func newLoginCommand() *cobra.Command {
	var rf remoteFlags
	var user, pass string
	var passStdin bool
	c := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "Log in to a registry (credentials stored with mode 0600)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if passStdin {
				b, err := io.ReadAll(bufio.NewReader(os.Stdin))
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || pass == "" {
				return errors.New("login: give --username and --password (or --password-stdin)")
			}
			s, err := openImages()
			if err != nil {
				return err
			}
			reg := args[0]
			reg = strings.TrimPrefix(strings.TrimPrefix(reg, "https://"), "http://")
			reg = strings.TrimSuffix(reg, "/")
			if err := s.Login(c.Context(), rf.auth(), reg, user, pass, rf.options(reg+"/x", nil)); err != nil {
				return err
			}
			fmt.Println("Login Succeeded!")
			return nil
		},
	}
	rf.add(c.Flags())
	c.Flags().StringVarP(&user, "username", "u", "", "user name")
	c.Flags().StringVarP(&pass, "password", "p", "", "password (prefer --password-stdin)")
	c.Flags().BoolVar(&passStdin, "password-stdin", false, "read the password from stdin")
	return c
}

func newLogoutCommand() *cobra.Command {
	var rf remoteFlags
	c := &cobra.Command{
		Use:   "logout [flags] REGISTRY",
		Short: "Remove stored credentials for a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			reg := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://"), "/")
			ok, err := rf.auth().Remove(reg)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("not logged in to %s", reg)
			}
			fmt.Printf("Removed login credentials for %s\n", reg)
			return nil
		},
	}
	rf.add(c.Flags())
	return c
}
