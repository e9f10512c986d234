package main

// `cove events`: the store's event journal, docker's way.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"cove/internal/engine/events"
)

func init() { register(newEventsCommand) }

// parseEventTime takes RFC 3339, Unix seconds, or a duration back from now (10m).
func parseEventTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %s: want RFC 3339, Unix seconds or a duration", flag, s)
}

func newEventsCommand() *cobra.Command {
	var since, until, format string
	var filters []string
	c := &cobra.Command{
		Use:   "events [flags]",
		Short: "Show events (container create/start/oom/die/destroy/update, volume create/destroy)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o := events.Options{Follow: true}
			var err error
			if o.Since, err = parseEventTime("--since", since); err != nil {
				return err
			}
			if o.Until, err = parseEventTime("--until", until); err != nil {
				return err
			}
			if since == "" {
				o.Since = time.Now()
			}
			if until != "" && !o.Until.After(time.Now()) {
				o.Follow = false
			}
			want := map[string][]string{}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				switch k {
				case "container", "event", "type", "image", "volume":
				default:
					ok = false
				}
				if !ok {
					return fmt.Errorf("--filter %s: want container=, event=, type=, image= or volume=", f)
				}
				want[k] = append(want[k], v)
			}
			e, err := openEngine()
			if err != nil {
				return err
			}
			names := map[string][2]string{}
			enrich := func(ev *events.Event) {
				if ev.Type != "container" {
					return
				}
				if ev.Attributes == nil {
					ev.Attributes = map[string]string{}
				}
				if ev.Attributes["name"] != "" {
					names[ev.ID] = [2]string{ev.Attributes["name"], ev.Attributes["image"]}
					return
				}
				n, ok := names[ev.ID]
				if !ok {
					if r, err := e.Containers.Get(ev.ID); err == nil {
						n = [2]string{r.Name, r.Image}
						names[ev.ID] = n
					}
				}
				if n[0] != "" {
					ev.Attributes["name"], ev.Attributes["image"] = n[0], n[1]
				}
			}
			o.Match = func(ev *events.Event) bool {
				enrich(ev)
				return eventMatches(ev, want)
			}
			var tmpl *template.Template
			if format != "" && format != "json" {
				if tmpl, err = template.New("events").Parse(format); err != nil {
					return fmt.Errorf("--format: %w", err)
				}
			}
			return events.Read(c.Context(), e.Root(), o, func(ev *events.Event) error {
				switch {
				case format == "json":
					b, _ := json.Marshal(ev)
					fmt.Println(string(b))
				case tmpl != nil:
					if err := tmpl.Execute(os.Stdout, ev); err != nil {
						return fmt.Errorf("--format: %w", err)
					}
					fmt.Println()
				default:
					fmt.Println(eventLine(ev))
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&since, "since", "", "show events since (RFC 3339, Unix seconds, or a duration ago)")
	c.Flags().StringVar(&until, "until", "", "stop at (past: print and exit)")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "container=, event=, type=, image=, volume=")
	c.Flags().StringVar(&format, "format", "", "json or a Go template ({{.Action}} {{.ID}} ...)")
	return c
}

func eventMatches(ev *events.Event, want map[string][]string) bool {
	for k, vals := range want {
		ok := false
		for _, v := range vals {
			switch k {
			case "container":
				ok = ok || ev.Type == "container" && (strings.HasPrefix(ev.ID, v) || ev.Attributes["name"] == v)
			case "volume":
				ok = ok || ev.Type == "volume" && ev.ID == v
			case "event":
				ok = ok || ev.Action == v
			case "type":
				ok = ok || ev.Type == v
			case "image":
				ok = ok || ev.Attributes["image"] == v
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// eventLine is docker's text form: TIME TYPE ACTION ID (k=v, ...).
func eventLine(ev *events.Event) string {
	var kv []string
	for k, v := range ev.Attributes {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	line := ev.Time().UTC().Format("2006-01-02T15:04:05.000000000Z") + " " + ev.Type + " " + ev.Action + " " + ev.ID
	if len(kv) > 0 {
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	return line
}
