package signalnats

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config holds every knob of a Cluster. Start from DefaultConfig: Dial refuses a zero or
// negative bound rather than guessing what it was meant to be.
type Config struct {
	// URLs are the NATS servers (nats://host:4222, tls://host:4222; a URL may carry
	// user:password@). The client connects to one and fails over to the others. Required.
	URLs []string
	// User and Password, Token, or CredsFile (a NATS .creds file: a user JWT and its nkey
	// seed) authenticate to NATS; empty means none. The command line takes them from the
	// environment (RTCMESH_NATS_USER, RTCMESH_NATS_PASSWORD, RTCMESH_NATS_TOKEN,
	// RTCMESH_NATS_CREDS), so they do not show in the process list. NATS must be reachable by
	// signaling instances only: whoever can publish on Prefix's subjects can relay signals
	// under any node's name.
	User      string
	Password  string
	Token     string
	CredsFile string

	// Prefix is the first token of every subject, so several deployments can share one NATS.
	// Default "rtcmesh".
	Prefix string
	// Instance names this instance in presence and claims. Empty (the default) draws a random
	// name; two instances must never share one.
	Instance string

	// PresenceInterval is how often the instance announces all its members, and how often it
	// forgets other instances' members that were not announced for PresenceTTL. PresenceTTL
	// is therefore how long the members of an instance that died without a word stay listed
	// elsewhere (they are offered as contacts and relays to them are lost); it must be at
	// least twice PresenceInterval, so one lost announcement does not drop live members.
	// Defaults 5 s and 15 s.
	PresenceInterval time.Duration
	PresenceTTL      time.Duration
	// PresenceChunk bounds the member IDs per presence message (an ID is 52 bytes; NATS's
	// default max payload is 1 MiB). Default 1,000.
	PresenceChunk int
	// MaxRemotePeers bounds the members of other instances this instance keeps, over all
	// networks; announcements beyond it are dropped (Stats.RemoteDropped), so a flood of
	// presence cannot grow memory without bound. Default 500,000 (about 100 MiB).
	MaxRemotePeers int
	// InboxLength bounds the NATS messages waiting to be handled by this instance; NATS drops
	// what does not fit (a slow consumer, counted in Stats.InboxDropped). Default 8,192.
	InboxLength int
	// ConnectTimeout bounds each connection attempt to a NATS server, and ReconnectWait is the
	// pause between attempts after a connection is lost (the client reconnects forever).
	// Defaults 5 s and 1 s.
	ConnectTimeout time.Duration
	ReconnectWait  time.Duration

	// Now is the clock for presence expiry. Nil means time.Now.
	Now func() time.Time
	// Logger receives connection logs. The zero value logs nothing.
	Logger zerolog.Logger
}

// DefaultConfig returns the defaults for a cluster on the NATS servers at urls.
func DefaultConfig(urls ...string) Config {
	return Config{
		URLs:             urls,
		Prefix:           "rtcmesh",
		PresenceInterval: 5 * time.Second,
		PresenceTTL:      15 * time.Second,
		PresenceChunk:    1000,
		MaxRemotePeers:   500000,
		InboxLength:      8192,
		ConnectTimeout:   5 * time.Second,
		ReconnectWait:    time.Second,
	}
}

// Validate reports every invalid field of c, as Dial would.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}

func (c Config) validate() (Config, error) {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("URLs is empty: name at least one NATS server"))
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("URLs: %w", err))
		case p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss":
			errs = append(errs, fmt.Errorf("URLs: %q: scheme must be nats, tls, ws or wss", redact(p)))
		case p.Host == "":
			errs = append(errs, fmt.Errorf("URLs: %q has no host", redact(p)))
		}
	}
	if c.Token != "" && (c.User != "" || c.CredsFile != "") || c.User != "" && c.CredsFile != "" {
		errs = append(errs, errors.New("name one of User/Password, Token and CredsFile"))
	}
	if !validToken(c.Prefix) {
		errs = append(errs, fmt.Errorf("Prefix %q must be one subject token: [A-Za-z0-9_-], 1 to 32 characters", c.Prefix))
	}
	if c.Instance != "" && !validToken(c.Instance) {
		errs = append(errs, fmt.Errorf("Instance %q must be one subject token: [A-Za-z0-9_-], 1 to 32 characters", c.Instance))
	}
	positive := func(name string, ok bool, v any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, v))
		}
	}
	positive("PresenceInterval", c.PresenceInterval > 0, c.PresenceInterval)
	positive("PresenceTTL", c.PresenceTTL > 0, c.PresenceTTL)
	if c.PresenceInterval > 0 && c.PresenceTTL < 2*c.PresenceInterval {
		errs = append(errs, fmt.Errorf("PresenceTTL %v must be at least twice PresenceInterval %v", c.PresenceTTL, c.PresenceInterval))
	}
	positive("PresenceChunk", c.PresenceChunk > 0, c.PresenceChunk)
	positive("MaxRemotePeers", c.MaxRemotePeers > 0, c.MaxRemotePeers)
	positive("InboxLength", c.InboxLength > 0, c.InboxLength)
	positive("ConnectTimeout", c.ConnectTimeout > 0, c.ConnectTimeout)
	positive("ReconnectWait", c.ReconnectWait > 0, c.ReconnectWait)
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("signalnats: invalid config: %w", errors.Join(errs...))
	}
	return c, nil
}

// validToken reports whether s can stand as one NATS subject token of ours.
func validToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// redact returns u without its password, for errors and logs.
func redact(u *url.URL) string { return u.Redacted() }

// SplitURLs splits comma-separated lists of URLs (as a repeated flag gives them) into one list
// without blanks.
func SplitURLs(lists ...string) []string {
	var out []string
	for _, l := range lists {
		for _, u := range strings.Split(l, ",") {
			if u = strings.TrimSpace(u); u != "" {
				out = append(out, u)
			}
		}
	}
	return out
}
