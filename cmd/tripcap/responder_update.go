package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripcap/tripcap"
)

// responderFlags are the settings flags `responder create` and `responder
// update` share. apply writes into a responder only the flags given, so
// create keeps the responder's (the seed's) defaults for the others and
// update keeps the responder's current values.
type responderFlags struct {
	cf                                   captureFlags
	file, captureName, storage, conflict string
	notify, description                  string
	limit, cooldown                      int
	stopOnResolved, disabled             bool
	labels                               []string
	notifyWebhooks, notifyEmails         []string
	expression                           string
}

func (f *responderFlags) add(cmd *cobra.Command) {
	f.cf.add(cmd)
	fl := cmd.Flags()
	// A responder's capture defaults to the seed's 30 s, not a capture's
	// 5 h: the help says what is stored.
	f.cf.timeLimit = tripcap.DefaultResponderTimeLimit * time.Second
	fl.Lookup("time-limit").DefValue = f.cf.timeLimit.String()
	fl.StringVarP(&f.file, "file", "f", "", "the responder as JSON (tripcap.Responder)")
	fl.StringVar(&f.expression, "expression", "", "tcpdump filter expression for the captures, ANDed with --filter (may use ${host.address}, ${host.name}; docs/filters.md)")
	fl.StringVar(&f.captureName, "capture-name", "", "name of the captures it creates, NAME-HOST on each host (default PSAzureFunction)")
	fl.StringVar(&f.storage, "storage", "", "storage account for the files (default the server's)")
	fl.StringVar(&f.conflict, "name-conflict", "", "when a capture of that name exists: replace (default), unique or skip")
	fl.IntVar(&f.limit, "limit", 0, "skip when the host's watcher holds this many captures (default 100)")
	fl.IntVar(&f.cooldown, "cooldown", 0, "minutes before capturing again on a host for the same alert (0: none)")
	fl.BoolVar(&f.stopOnResolved, "stop-on-resolved", false, "stop the capture when the alert resolves")
	fl.StringVar(&f.notify, "notify", "", "action group told when a capture completes")
	fl.StringArrayVar(&f.notifyWebhooks, "notify-webhook", nil, "the responder's own webhook receiver NAME=URL, told when a capture completes (repeatable; unsigned)")
	fl.StringArrayVar(&f.notifyEmails, "notify-email", nil, "the responder's own email receiver NAME=ADDRESS, told when a capture completes (repeatable)")
	fl.StringArrayVar(&f.labels, "target-label", nil, "alert label naming the host (repeatable; default host, instance, node, nodename)")
	fl.StringVar(&f.description, "description", "", "description")
}

// apply sets r's fields from the flags that were given.
func (f *responderFlags) apply(cmd *cobra.Command, r *tripcap.Responder) error {
	fl := cmd.Flags()
	filters, err := responderFilters(f.cf.filters)
	if err != nil {
		return err
	}
	cf := f.cf
	cf.filters = nil
	p, err := cf.parameters()
	if err != nil {
		return err
	}
	c := &r.Capture
	set := func(flag string, do func()) {
		if fl.Changed(flag) {
			do()
		}
	}
	if fl.Changed("interface") {
		return tripcap.Errorf(tripcap.EINVALID, "--interface: a responder captures on every interface of the alert's host")
	}
	set("capture-name", func() { c.Name = f.captureName })
	set("storage", func() { c.StorageAccount = f.storage })
	set("bytes-per-packet", func() { c.BytesToCapturePerPacket = p.BytesToCapturePerPacket })
	set("total-bytes", func() { c.TotalBytesPerSession = p.TotalBytesPerSession })
	set("time-limit", func() { c.TimeLimitInSeconds = p.TimeLimitInSeconds })
	set("format", func() { c.Format = p.Format })
	set("pre-trigger", func() { c.PreTriggerSeconds = p.PreTriggerSeconds })
	set("metadata", func() { c.IncludeMetadata = p.IncludeMetadata })
	set("filter", func() { c.Filters = filters })
	set("expression", func() { c.FilterExpression = f.expression })
	if err := f.applyContinuous(cmd, c); err != nil {
		return err
	}
	set("name-conflict", func() { r.NameConflict = tripcap.NameConflictPolicy(f.conflict) })
	set("limit", func() { r.Limit = f.limit })
	set("cooldown", func() { r.CooldownMinutes = f.cooldown })
	set("stop-on-resolved", func() { r.StopOnResolved = f.stopOnResolved })
	set("notify", func() { r.NotifyActionGroup = f.notify })
	if fl.Changed("notify-webhook") {
		r.NotifyWebhookReceivers = nil
		for _, v := range f.notifyWebhooks {
			name, uri, err := keyValue("notify-webhook", v)
			if err != nil {
				return err
			}
			r.NotifyWebhookReceivers = append(r.NotifyWebhookReceivers, tripcap.WebhookReceiver{Name: name, ServiceURI: uri, UseCommonAlertSchema: true})
		}
	}
	if fl.Changed("notify-email") {
		r.NotifyEmailReceivers = nil
		for _, v := range f.notifyEmails {
			name, addr, err := keyValue("notify-email", v)
			if err != nil {
				return err
			}
			r.NotifyEmailReceivers = append(r.NotifyEmailReceivers, tripcap.EmailReceiver{Name: name, EmailAddress: addr, UseCommonAlertSchema: true})
		}
	}
	set("target-label", func() { r.TargetLabels = f.labels })
	set("description", func() { r.Description = f.description })
	set("disabled", func() { r.Enabled = new(!f.disabled) })
	return nil
}

// Stand-ins for the host placeholders while a --filter is checked: TEST-NET
// addresses (RFC 5737), which no real filter names.
var placeholderStandIns = []struct{ placeholder, standIn string }{
	{tripcap.PlaceholderHostAddress, "192.0.2.251"},
	{tripcap.PlaceholderHostName, "192.0.2.252"},
}

// responderFilters parses --filter flags whose addresses may be the
// alert's host (${host.address}, ${host.name}): the filter is checked with
// a stand-in address there, and keeps the placeholder, which the server
// fills in for each host.
func responderFilters(flags []string) ([]tripcap.PacketCaptureFilter, error) {
	var out []tripcap.PacketCaptureFilter
	for i, s := range flags {
		checked := s
		for _, p := range placeholderStandIns {
			checked = strings.ReplaceAll(checked, p.placeholder, p.standIn)
		}
		flt, err := tripcap.ParseFilterFlag(checked)
		if err != nil {
			return nil, fmt.Errorf("--filter #%d: %w", i+1, err)
		}
		for _, p := range placeholderStandIns {
			if strings.Contains(s, p.placeholder) {
				flt.LocalIPAddress = strings.ReplaceAll(flt.LocalIPAddress, p.standIn, p.placeholder)
				flt.RemoteIPAddress = strings.ReplaceAll(flt.RemoteIPAddress, p.standIn, p.placeholder)
			}
		}
		out = append(out, flt)
	}
	return out, nil
}

// applyContinuous sets the ring-of-files settings: --continuous turns it
// on or off, and the ring's flags change the current ring's settings.
func (f *responderFlags) applyContinuous(cmd *cobra.Command, c *tripcap.ResponderCapture) error {
	fl := cmd.Flags()
	if fl.Changed("continuous") {
		c.ContinuousCapture = new(f.cf.continuous)
		if !f.cf.continuous {
			c.CaptureSettings = nil
		}
	}
	ring := fl.Changed("file-count") || fl.Changed("file-size") || fl.Changed("session-time-limit")
	on := c.ContinuousCapture != nil && *c.ContinuousCapture
	if !ring && !(on && fl.Changed("continuous")) {
		return nil
	}
	if !on {
		return tripcap.Errorf(tripcap.EINVALID, "--file-count, --file-size and --session-time-limit are for a continuous capture (--continuous)")
	}
	st := c.CaptureSettings
	if st == nil {
		st = &tripcap.CaptureSettings{}
	}
	// A ring turned on here starts from the flags' defaults.
	fresh := c.CaptureSettings == nil
	if fresh || fl.Changed("file-count") {
		n := f.cf.fileCount
		st.FileCount = &n
	}
	if fresh || fl.Changed("file-size") {
		n := f.cf.fileSize
		st.FileSizeInBytes = &n
	}
	if fresh || fl.Changed("session-time-limit") {
		sec, err := seconds("session-time-limit", f.cf.sessionTimeLimit)
		if err != nil {
			return err
		}
		st.SessionTimeLimitInSeconds = &sec
	}
	c.CaptureSettings = st
	return nil
}

func newResponderUpdateCmd() *cobra.Command {
	var (
		f       responderFlags
		rename  string
		enabled bool
		noFilt  bool
	)
	cmd := &cobra.Command{
		Use:   "update RESPONDER",
		Short: "Change a responder's settings: only the flags given (its keys and runs stay)",
		Long: "Change a responder (by name or id). Only the flags given change; the others keep the\n" +
			"responder's current values. -f FILE replaces all its settings with the JSON in FILE\n" +
			"instead. The change applies to the responder as read: if someone else changes it in\n" +
			"between, the update is made again on their version.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("enabled") && fl.Changed("disabled") {
				return tripcap.Errorf(tripcap.EINVALID, "--enabled and --disabled: give one")
			}
			if noFilt && fl.Changed("filter") {
				return tripcap.Errorf(tripcap.EINVALID, "--clear-filters and --filter: give one")
			}
			c, err := client(cmd)
			if err != nil {
				return err
			}
			// Read, change, write If-Match; a concurrent change makes the
			// server refuse, and the flags are applied again to the new version.
			var updated *tripcap.Responder
			// Read once: a retry after a concurrent change must not read
			// standard input again.
			var fromFile tripcap.Responder
			if f.file != "" {
				if err := readJSONFile(cmd, f.file, &fromFile); err != nil {
					return err
				}
			}
			for attempt := 0; ; attempt++ {
				cur, err := c.GetResponder(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				r := *cur
				if f.file != "" {
					r = fromFile
					if r.Name == "" {
						r.Name = cur.Name
					}
				} else {
					if err := f.apply(cmd, &r); err != nil {
						return err
					}
					if noFilt {
						r.Capture.Filters = nil
					}
					if fl.Changed("enabled") {
						r.Enabled = new(enabled)
					}
					if rename != "" {
						r.Name = rename
					}
				}
				updated, err = c.UpdateResponder(cmd.Context(), cur.ID, &r, cur.ETag())
				if tripcap.ErrorCode(err) == tripcap.EPRECONDITION && attempt < 3 {
					continue
				}
				if err != nil {
					return err
				}
				break
			}
			return render(cmd, updated, func(w io.Writer) {
				fmt.Fprintf(w, "responder %s updated (version %d)\n", updated.Name, updated.Version)
			})
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.disabled, "disabled", false, "disable it (runs are recorded, nothing starts)")
	fl.BoolVar(&enabled, "enabled", false, "enable it (--enabled=false disables)")
	fl.StringVar(&rename, "rename", "", "a new name (its trigger URL /api/functions/NAME changes with it)")
	fl.BoolVar(&noFilt, "clear-filters", false, "remove the capture filters")
	return cmd
}
