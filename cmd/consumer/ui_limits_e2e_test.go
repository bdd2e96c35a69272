package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"customactions/breaker"
)

// TestUILimits: the Health page (the Breakers page renamed) lists, sets,
// edits and deletes the limits of an action; a negative rate is refused
// with the server's message; what the page shows is what is stored; the
// page fits 400 px.
func TestUILimits(t *testing.T) {
	const password = "ui-admin-password-limits"
	env := newEnv("ACTIONS_HTTP_ADDR", "127.0.0.1:0", "ACTIONS_ADMIN_PASSWORD", password)
	browser := newBrowser(t)
	a := startService(t, env)
	stored := func(id string) (breaker.Limits, error) {
		t.Helper()
		out, errOut, err := cli(t, env, "limits", "get", id, "-o", "json")
		if err != nil {
			return breaker.Limits{}, &cliError{errOut}
		}
		var l breaker.Limits
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("limits get %s -o json: %q: %v", id, out, err)
		}
		return l, nil
	}
	row := `#limits-table tr[data-action="shop"]`
	cell := func(class string) string {
		return `document.querySelector('` + row + ` td.` + class + `').textContent`
	}

	b := &page{t: t, ctx: browser}
	b.login(a, password)
	b.do("open the Health page",
		chromedp.Click("#nav-breakers"),
		chromedp.WaitVisible("#breakers-page"),
		chromedp.WaitVisible("#limits-form"))
	if nav, h := b.text("#nav-breakers"), b.text("#breakers-page h2"); nav != "Health" || h != "Health" {
		t.Errorf("nav %q, heading %q: want Health", nav, h)
	}
	if !b.eval(`location.hash === '#/health' && document.querySelector('#breakers-table') !== null`) {
		t.Error("the Health page lost its breakers table or its address")
	}
	b.poll(`!document.querySelector('#limits-empty').hidden`)

	b.do("set limits of shop: 12.5/s, 4 at once, burst left to its default",
		chromedp.SendKeys("#l-action", "shop"),
		chromedp.SendKeys("#l-rate", "12.5"),
		chromedp.SendKeys("#l-max", "4"),
		chromedp.Click("#l-save"),
		chromedp.WaitVisible(row))
	b.screenshot("limits-set")
	rate, burst, maxC := b.str(cell("rate")), b.str(cell("burst")), b.str(cell("max"))
	updated, updatedTitle := b.str(cell("updated")), b.str(`document.querySelector('`+row+` td.updated time').title`)
	if rate != "12.5" || burst != "13" || maxC != "4" {
		t.Errorf("listed rate %q burst %q max concurrent %q, want 12.5, 13 (the default), 4", rate, burst, maxC)
	}
	if !regexp.MustCompile(`^(just now|\d+ s ago)$`).MatchString(updated) || !regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`).MatchString(updatedTitle) {
		t.Errorf("updated %q (title %q): want a relative time with the exact one on hover", updated, updatedTitle)
	}
	if l, err := stored("shop"); err != nil || l.Rate != 12.5 || l.Burst != 13 || l.MaxConcurrent != 4 {
		t.Errorf("stored after set: %+v %v", l, err)
	}

	b.do("a negative rate",
		chromedp.SendKeys("#l-action", "neg"),
		chromedp.SendKeys("#l-rate", "-2"),
		chromedp.Click("#l-save"))
	b.poll(`document.querySelector('#limits-error').textContent !== ''`)
	msg := b.text("#limits-error")
	if !strings.Contains(msg, "rate -2 must be from 0 (no limit) to 100000 calls per second") {
		t.Errorf("error for a negative rate: %q", msg)
	}
	if b.eval(`document.querySelector('#limits-table tr[data-action="neg"]') !== null`) || b.value("#l-rate") != "-2" {
		t.Error("a refused set is listed, or the form lost what the admin typed")
	}
	if _, err := stored("neg"); err == nil {
		t.Error("limits with a negative rate were stored")
	}

	b.do("edit shop: 3/s with a burst of 6, no concurrency limit",
		chromedp.Click(row+" button.edit"))
	b.poll(`document.querySelector('#l-action').value === 'shop'`)
	if r, bu, m, e := b.value("#l-rate"), b.value("#l-burst"), b.value("#l-max"), b.text("#limits-error"); r != "12.5" || bu != "13" || m != "4" || e != "" {
		t.Errorf("Edit filled rate %q burst %q max %q (error %q)", r, bu, m, e)
	}
	b.do("change and save",
		clear("#l-rate"), chromedp.SendKeys("#l-rate", "3"),
		clear("#l-burst"), chromedp.SendKeys("#l-burst", "6"),
		clear("#l-max"),
		chromedp.Click("#l-save"))
	b.poll(cell("rate") + ` === '3'`)
	if burst, maxC := b.str(cell("burst")), b.str(cell("max")); burst != "6" || maxC != "no limit" {
		t.Errorf("after the edit: burst %q, max concurrent %q", burst, maxC)
	}
	if l, err := stored("shop"); err != nil || l.Rate != 3 || l.Burst != 6 || l.MaxConcurrent != 0 {
		t.Errorf("stored after the edit: %+v %v", l, err)
	}

	b.do("the Health page at 400 px", chromedp.EmulateViewport(400, 700))
	b.poll(`innerWidth === 400`)
	b.screenshot("narrow-health")
	if w := b.num(`document.documentElement.scrollWidth`); w > 400 {
		t.Errorf("Health page at 400 px: %v px wide", w)
	}

	b.do("delete asks first; cancel keeps the limits",
		chromedp.Click(row+" button.delete"),
		chromedp.WaitVisible(row+" button.confirm-delete"),
		chromedp.Click(row+" button.cancel-delete"),
		chromedp.WaitVisible(row+" button.delete"))
	if _, err := stored("shop"); err != nil {
		t.Fatalf("the limits are gone after Cancel: %v", err)
	}
	b.do("delete, confirmed",
		chromedp.Click(row+" button.delete"),
		chromedp.Click(row+" button.confirm-delete"),
		chromedp.WaitNotPresent(row))
	if _, err := stored("shop"); err == nil || !strings.Contains(err.Error(), "has no limits") {
		t.Errorf("get after a confirmed delete: %v, want no limits", err)
	}
	if !b.eval(`!document.querySelector('#limits-empty').hidden`) {
		t.Error("the empty note is not shown after the last limits were deleted")
	}
}

type cliError struct{ stderr string }

func (e *cliError) Error() string { return e.stderr }
