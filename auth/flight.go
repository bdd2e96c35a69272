package auth

// The single flight: callers in one process that need the same token share
// one refresh.

import (
	"context"
)

type flight struct {
	done    chan struct{}
	res     *Fetched
	fetched bool
	err     error
}

// refreshInBackground starts a proactive refresh unless one is under way,
// and reports its outcome to bg.
func (m *Manager) refreshInBackground(tok *Token, stale uint64, bg func(Refresh)) {
	fl, started := m.startFlight(tok, stale)
	if !started || bg == nil {
		return
	}
	go func() {
		<-fl.done
		if fl.err != nil {
			bg(Refresh{TokenID: tok.ID, Err: fl.err})
		} else if fl.fetched {
			bg(*fl.res.refresh(tok.ID))
		}
	}()
}

// startFlight joins the flight for tok in this process or starts one.
func (m *Manager) startFlight(tok *Token, stale uint64) (*flight, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fl := m.flights[tok.ID]; fl != nil {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	m.flights[tok.ID] = fl
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.flightTO)
		defer cancel()
		fl.res, fl.fetched, fl.err = m.coordinate(ctx, tok, stale)
		m.mu.Lock()
		delete(m.flights, tok.ID)
		m.mu.Unlock()
		close(fl.done)
	}()
	return fl, true
}
