package auth

// The refresh of an oauth2 token across replicas, with fencing (see the
// package doc): the intent written by compare-and-set before a refresh
// token is sent, the result written by compare-and-set on the intent's
// revision, and an intent whose holder never completed turned into
// reauthorization_required rather than into a second use of its refresh
// token.

import (
	"context"
	"fmt"
	"time"
)

// oauthMargin is how long before its expiry the access token of c is
// refreshed: the Manager's margin, at most a fifth of its lifetime.
func (m *Manager) oauthMargin(c *oauthConn) time.Duration {
	if c.ExpiresAt.IsZero() {
		return 0
	}
	return min(m.margin, c.ExpiresAt.Sub(c.FetchedAt)/5)
}

func (m *Manager) expiresWithin(c *oauthConn, d time.Duration) bool {
	return !c.ExpiresAt.IsZero() && !m.now().Add(d).Before(c.ExpiresAt)
}

// oauthUsable reports whether the access token of c may be used for tok
// instead of one of generation stale or older.
func (m *Manager) oauthUsable(c *oauthConn, tok *Token, stale uint64) bool {
	return c != nil && c.Access != "" && c.Gen > stale && c.ConfigHash == tok.ConfigHash() &&
		c.Health.Status != HealthReauthorizationRequired && !m.expiresWithin(c, m.oauthMargin(c))
}

// oauthCurrent returns the connection whose access token signs a call with
// tok: the shared one, or a new one when there is none or it expires
// within the margin. A proactive refresh that it starts is reported to bg.
func (m *Manager) oauthCurrent(ctx context.Context, r connRef, bg func(Refresh)) (*oauthConn, Outcome, error) {
	tok, name := r.tok, r.name()
	c := m.cachedOAuth(name)
	if c == nil {
		var err error
		if c, err = m.readOAuth(ctx, name); err != nil {
			return nil, Outcome{}, err
		}
	}
	if c == nil && r.user != "" {
		// An end user who never connected: no record is written for
		// them (there may be millions), the caller asks them to connect.
		return nil, Outcome{}, reauthError(name, reasonUserNotConnected)
	}
	if c != nil && c.Health.Status == HealthReauthorizationRequired {
		return nil, Outcome{}, reauthError(name, c.Health.LastError)
	}
	if m.oauthUsable(c, tok, 0) {
		if m.expiresWithin(c, 2*m.oauthMargin(c)) {
			m.oauthRefreshInBackground(r, c.Gen, bg)
		}
		return c, Outcome{}, nil
	}
	var stale uint64
	if c != nil && c.ConfigHash == tok.ConfigHash() {
		stale = c.Gen
	}
	return m.oauthObtain(ctx, r, stale)
}

// oauthObtain returns a connection with an access token newer than
// generation stale; callers in this process share one refresh.
func (m *Manager) oauthObtain(ctx context.Context, r connRef, stale uint64) (*oauthConn, Outcome, error) {
	name := r.name()
	for {
		c := m.cachedOAuth(name)
		if m.oauthUsable(c, r.tok, stale) {
			return c, Outcome{Waited: true}, nil
		}
		if c != nil && c.Health.Status == HealthReauthorizationRequired {
			return nil, Outcome{Waited: true}, reauthError(name, c.Health.LastError)
		}
		fl, leader := m.oauthStartFlight(r, stale)
		c, oc, done, err := await(ctx, name, fl, leader, func(c *oauthConn) bool { return c.Gen > stale })
		if done {
			return c, oc, err
		}
	}
}

// oauthRefreshInBackground starts a proactive refresh unless one is under
// way, and reports its outcome to bg.
func (m *Manager) oauthRefreshInBackground(r connRef, stale uint64, bg func(Refresh)) {
	fl, started := m.oauthStartFlight(r, stale)
	if started && bg != nil {
		inBackground(r.tok.ID, fl, bg, func(c *oauthConn) *Refresh { return c.refreshReport(r.tok.ID) })
	}
}

// oauthStartFlight joins the refresh of tok under way in this process or
// starts one.
func (m *Manager) oauthStartFlight(r connRef, stale uint64) (*flight[*oauthConn], bool) {
	return m.oauth.flights.start(r.name(), m.flightTO, func(ctx context.Context) (*oauthConn, bool, error) {
		return m.oauthCoordinate(ctx, r, stale, false)
	})
}

// refreshReport describes the access token of c as a successful Refresh.
func (c *oauthConn) refreshReport(id string) *Refresh {
	return &Refresh{TokenID: id, Preview: Mask(c.Access.Reveal()), Revision: c.Gen, ExpiresAt: c.ExpiresAt}
}

// oauthCoordinate gets an access token newer than generation stale through
// the shared record: it uses one that another replica wrote, waits while
// another replica's intent is fresh, or writes its own intent and
// refreshes. test is the test-before-save of an edited token: it refreshes
// even when the record says reauthorization_required, and a refusal that
// does not mean the refresh token is dead changes no health (the token as
// saved may still work).
func (m *Manager) oauthCoordinate(ctx context.Context, r connRef, stale uint64, test bool) (*oauthConn, bool, error) {
	tok, name := r.tok, r.name()
	for {
		c, err := m.readOAuth(ctx, name)
		if err != nil {
			return nil, false, err
		}
		if m.oauthUsable(c, tok, stale) {
			return c, false, nil
		}
		if c != nil && c.Health.Status == HealthReauthorizationRequired && !test {
			return nil, false, reauthError(name, c.Health.LastError)
		}
		if c != nil && c.Refreshing != nil {
			lapses := time.UnixMilli(c.Refreshing.At).Add(m.leaseTTL)
			if m.now().Before(lapses) {
				if err := m.waitOAuth(ctx, name, c.Rev, lapses); err != nil {
					return nil, false, err
				}
				continue
			}
			// The holder died or stalled past its lease. Its refresh
			// token may have reached the endpoint: sending it again
			// could revoke the grant.
			if m.mayBeSpent(tok, c) {
				next := c.clone()
				next.Refreshing, next.Refresh = nil, ""
				next.setHealth(HealthReauthorizationRequired, reasonInterrupted, m.now())
				if err := m.writeHealth(ctx, name, c, next); err != nil {
					if moved(err) {
						continue
					}
					return nil, false, err
				}
				return nil, false, reauthError(name, reasonInterrupted)
			}
		}
		if tok.OAuth2.needsRefreshToken() {
			reason := ""
			switch {
			case c == nil || c.Refresh == "":
				reason = reasonNotConnected
			case c.Connection != tok.OAuth2.connectionKey():
				reason = reasonOtherClient
			}
			if reason != "" {
				if test {
					return nil, false, fmt.Errorf("%w: %s", ErrTestFailed, reason)
				}
				next := c.clone()
				next.Refreshing = nil
				next.setHealth(HealthReauthorizationRequired, reason, m.now())
				if err := m.writeHealth(ctx, name, c, next); err != nil {
					if moved(err) {
						continue
					}
					return nil, false, err
				}
				return nil, false, reauthError(name, reason)
			}
		}
		next := c.clone()
		next.Refreshing = &oauthIntent{By: m.holder, At: m.now().UnixMilli(), RHash: refreshHash(next.Refresh)}
		var rev uint64
		if c != nil {
			rev = c.Rev
		}
		held, err := m.writeOAuth(ctx, name, next, rev)
		if moved(err) {
			continue // another replica wrote first: look again
		}
		if err != nil {
			return nil, false, err
		}
		return m.oauthRefreshHeld(ctx, r, held, test)
	}
}

// mayBeSpent reports whether the refresh token of a lapsed intent may have
// been spent: it was a refresh (not client_credentials) and the endpoint
// rotates refresh tokens, or it is not known yet whether it does. An
// endpoint that answered the last refresh without a new refresh token keeps
// it valid, so its interrupted refresh is safe to make again.
func (m *Manager) mayBeSpent(tok *Token, c *oauthConn) bool {
	return tok.OAuth2.needsRefreshToken() && c.Refreshing.RHash != "" && c.Rotation != rotationNo
}

// writeHealth writes next over prev by compare-and-set and reports the
// change of health.
func (m *Manager) writeHealth(ctx context.Context, id string, prev, next *oauthConn) error {
	var rev uint64
	if prev != nil {
		rev = prev.Rev
	}
	if _, err := m.writeOAuth(ctx, id, next, rev); err != nil {
		return err
	}
	m.reportHealth(id, prev, next)
	return nil
}

// oauthRefreshHeld makes the refresh whose intent held records, and writes
// its outcome by compare-and-set on held's revision. The new access token
// is returned only once that write succeeded; when the record moved on (the
// intent lapsed and another replica acted on it, or an admin saved a new
// connection), nothing is written and the new tokens are dropped.
func (m *Manager) oauthRefreshHeld(ctx context.Context, r connRef, held *oauthConn, test bool) (*oauthConn, bool, error) {
	tok, name := r.tok, r.name()
	// The intent lapses after the lease TTL; the request must be over well
	// before, so that a live holder is never taken for a dead one.
	deadline := time.UnixMilli(held.Refreshing.At).Add(m.leaseTTL * 3 / 4)
	callCtx, cancel := context.WithDeadline(ctx, deadline)
	g := m.obtainGrant(callCtx, tok, held.Refresh)
	cancel()

	now := m.now()
	next := held.clone()
	next.Refreshing = nil
	var failure error
	switch g.outcome {
	case granted:
		next.Access, next.Gen, next.FetchedAt, next.ExpiresAt = g.access, held.Gen+1, now, time.Time{}
		if g.expiresIn > 0 {
			next.ExpiresAt = now.Add(g.expiresIn)
		}
		next.ConfigHash = tok.ConfigHash()
		if tok.OAuth2.needsRefreshToken() {
			next.Refresh, next.Connection = g.refresh, tok.OAuth2.connectionKey()
			next.Rotation = rotationNo
			if g.rotated {
				next.Rotation = rotationYes
			}
		}
		next.setHealth(HealthOK, "", now)
	case refused:
		failure = g.err
		dead := g.code == "invalid_grant"
		if test && !dead {
			break // the saved configuration is not the one refused
		}
		if dead {
			next.Refresh = ""
		}
		next.setHealth(HealthReauthorizationRequired, g.err.Error(), now)
		failure = reauthError(name, g.err.Error())
	case transient:
		failure = g.err
		if !test {
			next.setHealth(HealthDegraded, g.err.Error(), now)
		}
	case unanswered:
		failure = g.err
		if next.Rotation != rotationNo {
			next.Refresh = ""
			reason := reasonInterrupted + " (" + g.err.Error() + ")"
			next.setHealth(HealthReauthorizationRequired, reason, now)
			failure = reauthError(name, reason)
		} else if !test {
			next.setHealth(HealthDegraded, g.err.Error(), now)
		}
	}
	// The outcome is written even when the caller gave up: the next one
	// must not find a lapsed intent for a refresh that completed.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	written, err := m.writeOAuthRetrying(wctx, name, next, held.Rev)
	if moved(err) {
		return nil, false, fmt.Errorf("%s: the refresh finished after its lease lapsed and the connection changed meanwhile; its result is dropped", describeConn(name))
	}
	if err != nil {
		return nil, false, err
	}
	m.reportHealth(name, held, written)
	if failure != nil && test {
		return nil, false, fmt.Errorf("%w: %w", ErrTestFailed, failure)
	}
	if failure != nil {
		return nil, false, failure
	}
	return written, true, nil
}

// writeOAuthRetrying is writeOAuth, tried again while KV fails for another
// reason than a moved record, until ctx ends.
func (m *Manager) writeOAuthRetrying(ctx context.Context, id string, c *oauthConn, rev uint64) (*oauthConn, error) {
	delay := 50 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, 3*time.Second)
		written, err := m.writeOAuth(attempt, id, c, rev)
		cancel()
		if err == nil || moved(err) || ctx.Err() != nil {
			return written, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// waitOAuth waits until the record of id moves past rev, or until.
func (m *Manager) waitOAuth(ctx context.Context, id string, rev uint64, until time.Time) error {
	tick := time.NewTicker(m.poll)
	defer tick.Stop()
	for {
		if c := m.cachedOAuth(id); c != nil && c.Rev > rev {
			return nil
		}
		if !m.now().Before(until) {
			return nil
		}
		_, changed := m.cached(id)
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the refresh of %s: %w", describeConn(id), ctx.Err())
		case <-changed: // the watch saw a change (of some record): look
		case <-tick.C: // without a watch (or while it lags), look now and then
		}
		if c, err := m.readOAuth(ctx, id); err == nil && c != nil && c.Rev > rev {
			return nil
		}
	}
}
