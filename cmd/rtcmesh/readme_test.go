package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// helpFlag matches one flag of a command's --help: name, variable, default.
var helpFlag = regexp.MustCompile(`(?m)^  --(\S+) \((\S+), default (.*)\)$`)

// readmeFlag matches one row of the README's configuration reference: flag and default.
var readmeFlag = regexp.MustCompile("^\\| `--([^`]+)` \\| (`[^`]*`|\"\") \\|")

// machineDefaults are flags whose default depends on the machine; the README names them in
// general terms.
var machineDefaults = map[string]bool{"node --identity": true}

// TestREADMEConfigReference keeps README.md's "Configuration reference" true: for every
// command it lists exactly the flags --help lists, with the same defaults.
func TestREADMEConfigReference(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(readme), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("README.md has no \"## Configuration reference\" section")
	}
	if end := strings.Index(ref, "\n## "); end >= 0 {
		ref = ref[:end]
	}
	documented := map[string]map[string]string{} // command → flag → default
	var cmd string
	for line := range strings.Lines(ref) {
		line = strings.TrimSpace(line)
		if c, ok := strings.CutPrefix(line, "### `rtcmesh "); ok {
			cmd = strings.TrimSuffix(c, "`")
			documented[cmd] = map[string]string{}
			continue
		}
		if m := readmeFlag.FindStringSubmatch(line); m != nil && cmd != "" {
			documented[cmd][m[1]] = strings.Trim(m[2], "`")
		}
	}
	for _, c := range commands() {
		var help bytes.Buffer
		if code := realMain([]string{c.name, "--help"}, &help, &help); code != 0 {
			t.Fatalf("rtcmesh %s --help exited %d", c.name, code)
		}
		flags := helpFlag.FindAllStringSubmatch(help.String(), -1)
		doc, ok := documented[c.name]
		if !ok {
			if len(flags) > 0 {
				t.Errorf("README's configuration reference has no section for rtcmesh %s", c.name)
			}
			continue
		}
		for _, f := range flags {
			name, def := f[1], f[3]
			got, ok := doc[name]
			switch {
			case !ok:
				t.Errorf("README: rtcmesh %s --%s (default %s) is not documented", c.name, name, def)
			case got != def && !machineDefaults[c.name+" --"+name]:
				t.Errorf("README: rtcmesh %s --%s default %q, --help says %q", c.name, name, got, def)
			}
			delete(doc, name)
		}
		for name := range doc {
			t.Errorf("README documents rtcmesh %s --%s, which --help does not list", c.name, name)
		}
	}
}
