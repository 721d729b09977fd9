package turnserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Reloadable is the part of a Config that a running Server can change with Reload, without
// dropping a single allocation: the secrets and the peer lists.
type Reloadable struct {
	// Secret, AcceptedSecrets, AllowedPeers and DeniedPeers are as in Config; a nil DeniedPeers
	// means DefaultDeniedPeers().
	Secret          string
	AcceptedSecrets []string
	AllowedPeers    []netip.Prefix
	DeniedPeers     []netip.Prefix
}

// Reloadable returns the reloadable part of cfg.
func (cfg Config) Reloadable() Reloadable {
	return Reloadable{Secret: cfg.Secret, AcceptedSecrets: cfg.AcceptedSecrets, AllowedPeers: cfg.AllowedPeers, DeniedPeers: cfg.DeniedPeers}
}

// ReloadChange is what a Reload changed. Secrets are only counted, never named.
type ReloadChange struct {
	// MintChanged says Secret, the secret Server.Credentials mints with, changed.
	MintChanged bool
	// SecretsAdded and SecretsRemoved count accepted secrets (Secret included).
	SecretsAdded, SecretsRemoved int
	// The prefixes added to and removed from the allowed and denied peer lists.
	AllowedAdded, AllowedRemoved []netip.Prefix
	DeniedAdded, DeniedRemoved   []netip.Prefix
}

// Changed reports whether the reload changed anything.
func (c ReloadChange) Changed() bool {
	return c.MintChanged || c.SecretsAdded+c.SecretsRemoved > 0 ||
		len(c.AllowedAdded)+len(c.AllowedRemoved)+len(c.DeniedAdded)+len(c.DeniedRemoved) > 0
}

// Reload replaces the secrets and peer lists of the running server, checked as New checks
// them. An invalid r changes nothing: the error says why, and it is logged and counted
// (Stats.ReloadFailures). What changed is logged, secrets by count only.
//
// Allocations survive: one made under a secret r no longer accepts keeps the key it
// authenticated with for its Refresh, CreatePermission and ChannelBind requests (see
// inspectRequest); new allocations need an accepted secret. New peer lists apply at once, also
// to permissions and channels that exist: every datagram a relay socket sends is checked
// against them.
func (s *Server) Reload(r Reloadable) (ReloadChange, error) {
	if r.DeniedPeers == nil {
		r.DeniedPeers = DefaultDeniedPeers()
	}
	errs := append(checkSecrets(r.Secret, r.AcceptedSecrets, s.cfg.MaxAcceptedSecrets), checkPeers(r.AllowedPeers, r.DeniedPeers)...)
	if err := errors.Join(errs...); err != nil {
		s.counters.reloadFailures.Add(1)
		err = fmt.Errorf("turnserver: reload refused, the previous secrets and peer lists stay: %w", err)
		s.log.Error().Err(err).Msg("turnserver: reload refused")
		return ReloadChange{}, err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	oldSecrets, oldPolicy := s.secrets.Load(), s.policy.Load()
	newSecrets := newSecretSet(r.Secret, r.AcceptedSecrets)
	newPolicy := &peerPolicy{allowed: slices.Clone(r.AllowedPeers), denied: slices.Clone(r.DeniedPeers)}
	change := ReloadChange{
		MintChanged:    oldSecrets.mint != newSecrets.mint,
		SecretsAdded:   countMissing(newSecrets.all, oldSecrets.all),
		SecretsRemoved: countMissing(oldSecrets.all, newSecrets.all),
		AllowedAdded:   missing(newPolicy.allowed, oldPolicy.allowed),
		AllowedRemoved: missing(oldPolicy.allowed, newPolicy.allowed),
		DeniedAdded:    missing(newPolicy.denied, oldPolicy.denied),
		DeniedRemoved:  missing(oldPolicy.denied, newPolicy.denied),
	}
	s.secrets.Store(newSecrets)
	s.policy.Store(newPolicy)
	s.counters.reloads.Add(1)
	s.log.Info().Bool("changed", change.Changed()).Int("secrets", len(newSecrets.all)).
		Bool("minting_secret_changed", change.MintChanged).Int("secrets_added", change.SecretsAdded).
		Int("secrets_removed", change.SecretsRemoved).
		Strs("allowed_added", prefixStrings(change.AllowedAdded)).Strs("allowed_removed", prefixStrings(change.AllowedRemoved)).
		Strs("denied_added", prefixStrings(change.DeniedAdded)).Strs("denied_removed", prefixStrings(change.DeniedRemoved)).
		Msg("turnserver: secrets and peer lists reloaded")
	return change, nil
}

// checkPeers reports invalid prefixes in the peer lists.
func checkPeers(allowed, denied []netip.Prefix) []error {
	var errs []error
	for _, p := range allowed {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("AllowedPeers has an invalid prefix %v", p))
		}
	}
	for _, p := range denied {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("DeniedPeers has an invalid prefix %v", p))
		}
	}
	return errs
}

func countMissing(from, in []string) int {
	n := 0
	for _, x := range from {
		if !slices.Contains(in, x) {
			n++
		}
	}
	return n
}

// missing returns the prefixes of from that are not in in.
func missing(from, in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range from {
		if !slices.Contains(in, p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// ReloadFailed logs and counts (Stats.ReloadFailures) a reload that failed before Reload
// could be called, such as a secrets file that does not parse; nothing changes.
func (s *Server) ReloadFailed(err error) {
	s.counters.reloadFailures.Add(1)
	s.log.Error().Err(err).Msg("turnserver: reload failed, the previous secrets and peer lists stay")
}
