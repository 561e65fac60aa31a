package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/tripcap/tripcap"
	"github.com/tripcap/tripcap/seal"
)

// The config file of `server`, `agent` and `up`: a YAML mapping (JSON is
// YAML too) whose keys are the command's flag names. It is applied to the
// command's flag set itself, so every flag, present or added later, can be
// set in it with no code of its own. Precedence, highest first: the command
// line, the config file, the flag's default. No environment variable sets
// a flag; the ones a command reads (SMTP settings, storage credentials)
// configure what has no flag, and those it does not read are warned about.

// configFlag is the flag naming the config file.
const configFlag = "config"

// Default config files: read when present, skipped when absent.
const (
	defaultServerConfig = "/etc/tripcap/server.yaml"
	defaultAgentConfig  = "/etc/tripcap/agent.yaml"
)

// maxConfigBytes bounds a config file: it is a page of settings.
const maxConfigBytes = 1 << 20

// commandEnv is, for each command that takes a config file, the
// environment it reads besides its flags: names, or prefixes ending in _.
var commandEnv = map[string][]string{
	"server":            {"TRIPCAP_SMTP_", "TRIPCAP_REMOTE_", seal.EnvVar},
	"rotate-master-key": {seal.EnvVar},
	"up":                {"TRIPCAP_SMTP_", "TRIPCAP_CONFIG", seal.EnvVar},
	"agent":             nil,
}

// addConfigFlag registers --config on cmd and applies the files before cmd
// runs; def is read when it exists and --config is not given ("" for none).
// --config may be repeated, so that secrets (a join token, a database
// password) can live in a file of their own, such as a mounted Kubernetes
// Secret, beside the shared settings; a key may be set in one file only.
func addConfigFlag(cmd *cobra.Command, def string) {
	help := "config file: YAML or JSON, keys are this command's flag names; flags given on the command line win (repeatable: a key in one file only)"
	var defs []string
	if def != "" {
		help += "; the default is read when present"
		defs = []string{def}
	}
	cmd.Flags().StringArray(configFlag, defs, help)
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		f := cmd.Flags()
		paths, _ := f.GetStringArray(configFlag)
		// The command's own flags, and the log level; not the CLI
		// client's --server, --token or --output inherited from the root.
		local := cmd.LocalNonPersistentFlags()
		settable := func(name string) bool { return local.Lookup(name) != nil || name == "log-level" }
		sources, err := applyConfigFiles(f, settable, paths, f.Changed(configFlag))
		if err != nil {
			return err
		}
		logSettings(newLogger(cmd).With("component", "config"), f, sources, cmd.Name(), os.Environ())
		return nil
	}
}

// applyConfigFiles sets, from the files at paths, every flag of fs that
// the command line did not set, and returns where each changed flag's
// value came from. A missing file is an error only when required (given as
// --config); an unknown key, a value of the wrong type, or a key two files
// set is an error naming the key and the file.
func applyConfigFiles(fs *pflag.FlagSet, settable func(name string) bool, paths []string, required bool) (map[string]string, error) {
	sources := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { sources[f.Name] = "command line" })
	inFile := map[string]string{}
	for _, path := range paths {
		b, err := readConfigFile(path)
		if errors.Is(err, os.ErrNotExist) && !required {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		entries, err := parseConfig(b)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		for _, e := range entries {
			if other, twice := inFile[e.key]; twice {
				return nil, fmt.Errorf("config %s: line %d: %s: also set in %s; set it in one file", path, e.line, e.key, other)
			}
			inFile[e.key] = path
			if err := setFromConfig(fs, settable, e); err != nil {
				return nil, fmt.Errorf("config %s: line %d: %w", path, e.line, err)
			}
			if _, given := sources[e.key]; !given {
				sources[e.key] = "config " + path
			}
		}
	}
	return sources, nil
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigBytes)
	}
	return b, nil
}

// configEntry is one key of a config file with its value, as YAML parsed it.
type configEntry struct {
	key  string
	line int
	// tag is the value's resolved YAML tag (!!str, !!int, !!bool, !!seq…);
	// values holds the scalar, or a sequence's scalars.
	tag    string
	values []string
}

// parseConfig reads a config file: one YAML document holding a mapping of
// names to scalars or sequences of scalars. Anchors, aliases, nested
// mappings and repeated keys are refused: a config file says each thing
// once, plainly.
func parseConfig(b []byte) ([]configEntry, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty: nothing set
		}
		return nil, fmt.Errorf("not YAML or JSON: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document; a config file is one mapping")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a mapping of flag names to values")
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.ShortTag() == "!!null" {
		return nil, nil // only comments
	}
	if m.Kind != yaml.MappingNode || m.Anchor != "" {
		return nil, fmt.Errorf("line %d: not a mapping of flag names to values", m.Line)
	}
	var out []configEntry
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" || k.Value == "" {
			return nil, fmt.Errorf("line %d: a key must be a flag name", k.Line)
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %s: given twice (first on line %d)", k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		e := configEntry{key: k.Value, line: k.Line, tag: v.ShortTag()}
		if v.Anchor != "" || v.Kind == yaml.AliasNode {
			return nil, fmt.Errorf("line %d: %s: anchors and aliases are not allowed", v.Line, k.Value)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			e.values = []string{v.Value}
		case yaml.SequenceNode:
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" || item.Anchor != "" {
					return nil, fmt.Errorf("line %d: %s: a list holds strings only", item.Line, k.Value)
				}
				e.values = append(e.values, item.Value)
			}
		default:
			return nil, fmt.Errorf("line %d: %s: want a value or a list of strings, not a mapping", v.Line, k.Value)
		}
		out = append(out, e)
	}
	return out, nil
}

// setFromConfig sets the flag e names unless the command line set it. The
// value's YAML type must be the flag's: a string for a string (quote a
// number), true/false for a bool, an integer for a number, a list for a
// repeatable flag; a duration is a string such as 10s.
func setFromConfig(fs *pflag.FlagSet, settable func(name string) bool, e configEntry) error {
	f := fs.Lookup(e.key)
	if f == nil || f.Hidden || !settable(e.key) || e.key == configFlag || e.key == "help" || e.key == "version" {
		return fmt.Errorf("%s: unknown key (not a flag of this command; see --help)", e.key)
	}
	typ := f.Value.Type()
	want := map[string]string{"string": "!!str", "duration": "!!str", "bool": "!!bool", "int": "!!int", "int32": "!!int",
		"int64": "!!int", "uint": "!!int", "uint16": "!!int", "uint32": "!!int", "uint64": "!!int", "float64": "!!float"}[typ]
	repeatable := strings.HasSuffix(typ, "Array") || strings.HasSuffix(typ, "Slice")
	switch {
	case repeatable && e.tag != "!!seq":
		return fmt.Errorf("%s: want a list of strings (the flag is repeatable), got %s", e.key, describe(e))
	case !repeatable && e.tag == "!!seq":
		return fmt.Errorf("%s: want one %s, got a list", e.key, typ)
	case want == "!!float" && e.tag == "!!int":
	case want != "" && e.tag != want:
		return fmt.Errorf("%s: want %s, got %s", e.key, typeName(typ), describe(e))
	case want == "" && !repeatable && e.tag == "!!null":
		return fmt.Errorf("%s: want %s, got nothing", e.key, typeName(typ))
	}
	if f.Changed {
		return nil // the command line wins
	}
	for _, v := range e.values {
		if err := fs.Set(e.key, v); err != nil {
			return fmt.Errorf("%s: %w", e.key, err)
		}
	}
	return nil
}

func typeName(typ string) string {
	switch typ {
	case "string":
		return "a string (quote it if it looks like a number or a boolean)"
	case "duration":
		return `a duration string such as "10s" or "1m30s"`
	case "bool":
		return "true or false"
	}
	return "a number (" + typ + ")"
}

func describe(e configEntry) string {
	switch e.tag {
	case "!!seq":
		return "a list"
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(e.tag, "!!"), strings.Join(e.values, ""))
}

// logSettings logs where every setting that is not its default came from,
// secrets masked, and warns about TRIPCAP_* variables the command does not
// read (a flag is never taken from the environment).
func logSettings(log *slog.Logger, fs *pflag.FlagSet, sources map[string]string, command string, environ []string) {
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		log.Info("setting", "flag", name, "value", settingText(name, f.Value), "from", sources[name])
	}
	reads := commandEnv[command]
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "TRIPCAP_") {
			continue
		}
		read := slices.ContainsFunc(reads, func(r string) bool {
			return name == r || strings.HasSuffix(r, "_") && strings.HasPrefix(name, r)
		})
		if read {
			log.Info("setting from the environment", "variable", name)
		} else {
			log.Warn("environment variable ignored: `tripcap "+command+"` takes its settings from flags and the config file", "variable", name)
		}
	}
}

// settingText is a flag's value as it may be logged: credentials masked,
// in the flag's own value and in any URL it holds.
func settingText(name string, v pflag.Value) string {
	if secretFlag(name) {
		return "****"
	}
	vals := []string{v.String()}
	if sv, ok := v.(pflag.SliceValue); ok {
		vals = sv.GetSlice()
	}
	for i, s := range vals {
		vals[i] = tripcap.RedactURLs(s)
	}
	if len(vals) == 1 {
		return vals[0]
	}
	return "[" + strings.Join(vals, " ") + "]"
}

// secretFlag reports whether a flag's value is a credential itself (and
// not the path of a file holding one).
func secretFlag(name string) bool {
	if strings.HasSuffix(name, "-file") {
		return false
	}
	return strings.Contains(name, "token") || strings.Contains(name, "secret") || strings.Contains(name, "password")
}
