package bidi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

func deadlineSoon() time.Time { return time.Now().Add(time.Second) }

// prefs go into the fresh profile's user.js: a quiet browser that talks to nothing but the page
// it is sent to. Firefox adds its own "recommended" automation prefs on top when the remote
// agent runs.
var prefs = map[string]any{
	"app.update.auto":                                   false,
	"app.update.enabled":                                false,
	"app.update.checkInstallTime":                       false,
	"browser.shell.checkDefaultBrowser":                 false,
	"browser.startup.homepage_override.mstone":          "ignore",
	"browser.aboutwelcome.enabled":                      false,
	"browser.startup.page":                              0,
	"browser.newtabpage.enabled":                        false,
	"browser.safebrowsing.malware.enabled":              false,
	"browser.safebrowsing.phishing.enabled":             false,
	"browser.safebrowsing.downloads.enabled":            false,
	"browser.safebrowsing.blockedURIs.enabled":          false,
	"browser.search.update":                             false,
	"browser.region.network.url":                        "",
	"browser.ping-centre.telemetry":                     false,
	"datareporting.healthreport.uploadEnabled":          false,
	"datareporting.policy.dataSubmissionEnabled":        false,
	"toolkit.telemetry.enabled":                         false,
	"toolkit.telemetry.unified":                         false,
	"toolkit.telemetry.server":                          "",
	"extensions.update.enabled":                         false,
	"extensions.getAddons.cache.enabled":                false,
	"extensions.blocklist.enabled":                      false,
	"network.captive-portal-service.enabled":            false,
	"network.connectivity-service.enabled":              false,
	"network.dns.disablePrefetch":                       true,
	"network.prefetch-next":                             false,
	"network.http.speculative-parallel-limit":           0,
	"services.settings.server":                          "",
	"messaging-system.rsexperimentloader.enabled":       false,
	"app.normandy.enabled":                              false,
	"app.shield.optoutstudies.enabled":                  false,
	"browser.topsites.contile.enabled":                  false,
	"geo.provider.network.url":                          "",
	"media.gmp-manager.url":                             "",
	"media.gmp-gmpopenh264.enabled":                     false,
	"identity.fxaccounts.enabled":                       false,
	"browser.newtabpage.activity-stream.feeds.snippets": false,
}

// Options configure Launch.
type Options struct {
	// Path is the Firefox executable, e.g. /usr/bin/firefox-esr.
	Path string
	// Profile is the profile directory to create and use; it should be empty (a test's
	// TempDir). Launch writes user.js there.
	Profile string
	// Width and Height size the window, in CSS pixels; 0 leaves Firefox's default.
	Width, Height int
	// Prefs are written to user.js after the defaults, overriding them.
	Prefs map[string]any
	// Stderr, if not nil, receives Firefox's stderr (after the listening line is read).
	Stderr io.Writer
}

// Browser is a running headless Firefox and a BiDi session with it.
type Browser struct {
	*Client
	cmd  *exec.Cmd
	exit chan struct{}
}

// listening matches the line Firefox's remote agent prints on stderr.
var listening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// ListeningURL returns the WebSocket URL in a line of Firefox's stderr, if the line is the
// remote agent's announcement.
func ListeningURL(line string) (string, bool) {
	m := listening.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Launch starts headless Firefox with a fresh profile and its remote agent on a free loopback
// port, connects to it and starts a session.
func Launch(ctx context.Context, o Options) (*Browser, error) {
	if o.Profile == "" {
		return nil, errors.New("bidi: Options.Profile is empty")
	}
	if err := writePrefs(filepath.Join(o.Profile, "user.js"), o.Prefs); err != nil {
		return nil, err
	}
	args := []string{"--headless", "--no-remote", "--new-instance", "--remote-debugging-port=0",
		"--remote-allow-hosts=localhost,127.0.0.1", "--profile", o.Profile}
	if o.Width > 0 && o.Height > 0 {
		args = append(args, "--window-size", fmt.Sprintf("%d,%d", o.Width, o.Height))
	}
	args = append(args, "about:blank")
	cmd := exec.Command(o.Path, args...)
	cmd.Env = append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_REMOTE_SETTINGS_DEVTOOLS=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bidi: %w", err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bidi: starting %s: %w", o.Path, err)
	}
	b := &Browser{cmd: cmd, exit: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(b.exit) }()

	found := make(chan string, 1)
	var tail tailBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				tail.add(line)
				if u, ok := ListeningURL(line); ok {
					found <- u
					sent = true
				}
			} else if o.Stderr != nil {
				fmt.Fprintln(o.Stderr, line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-found:
	case <-b.exit:
		return nil, fmt.Errorf("bidi: %s exited before its remote agent listened: %s", o.Path, tail.String())
	case <-ctx.Done():
		b.kill()
		return nil, fmt.Errorf("bidi: waiting for %s's remote agent: %w (stderr: %s)", o.Path, ctx.Err(), tail.String())
	}
	c, err := Dial(ctx, strings.TrimSuffix(url, "/")+"/session")
	if err != nil {
		b.kill()
		return nil, err
	}
	b.Client = c
	if err := c.NewSession(ctx); err != nil {
		_ = c.Close()
		b.kill()
		return nil, err
	}
	return b, nil
}

// Close ends the session, closes the browser and waits for it to exit.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.Call(ctx, "browser.close", nil, nil)
	_ = b.Client.Close()
	select {
	case <-b.exit:
	case <-time.After(10 * time.Second):
		b.kill()
	}
	return nil
}

func (b *Browser) kill() {
	_ = b.cmd.Process.Kill()
	<-b.exit
}

func writePrefs(path string, extra map[string]any) error {
	var sb strings.Builder
	line := func(k string, v any) {
		switch v := v.(type) {
		case string:
			fmt.Fprintf(&sb, "user_pref(%q, %q);\n", k, v)
		default:
			fmt.Fprintf(&sb, "user_pref(%q, %v);\n", k, v)
		}
	}
	for k, v := range prefs {
		line(k, v)
	}
	for k, v := range extra {
		line(k, v)
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("bidi: writing the profile's prefs: %w", err)
	}
	return nil
}

// tailBuffer keeps the last lines of Firefox's stderr for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 20 {
		t.lines = t.lines[1:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " | ")
}
