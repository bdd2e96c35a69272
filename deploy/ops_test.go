package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exportedMetrics collects the names of the metrics the service exports
// from its source (consumer/ and cmd/consumer/): every Name: or NewDesc of
// an actions_ metric, with _bucket, _sum and _count for histograms. goStd
// reports whether the Go and process collectors are registered too.
func exportedMetrics(t *testing.T) (names map[string]bool, goStd bool) {
	t.Helper()
	nameRe := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(actions_[a-z0-9_]+)"`)
	histRe := regexp.MustCompile(`HistogramOpts\{\s*Name:\s*"(actions_[a-z0-9_]+)"`)
	names = map[string]bool{}
	for _, dir := range []string{"../consumer", "../cmd/consumer"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range nameRe.FindAllSubmatch(src, -1) {
				names[string(m[1])] = true
			}
			for _, m := range histRe.FindAllSubmatch(src, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[string(m[1])+suffix] = true
				}
			}
			goStd = goStd || bytes.Contains(src, []byte("collectors.NewGoCollector()"))
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metrics in the source: has the way they are declared changed?", len(names))
	}
	return names, goStd
}

var (
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true}
)

// metricsOf returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and groupings are
// removed, other than function calls and keywords.
func metricsOf(expr string) []string {
	s := promStrings.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(s, -1) {
		name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[0]), "("))
		if m[1] != "" || promKeywords[name] || strings.HasPrefix(name, "$") {
			continue
		}
		out = append(out, name)
	}
	return out
}

// checkMetrics reports the metrics of expr that the service does not
// export; up is made by Prometheus for every target.
func checkMetrics(t *testing.T, where, expr string, exported map[string]bool, goStd bool) []string {
	t.Helper()
	names := metricsOf(expr)
	if len(names) == 0 {
		t.Errorf("%s: %q names no metric", where, expr)
	}
	for _, n := range names {
		if !exported[n] && n != "up" && !(goStd && (strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_"))) {
			t.Errorf("%s: %q uses %s, which the service does not export", where, expr, n)
		}
	}
	return names
}

func TestMetricsOf(t *testing.T) {
	for expr, want := range map[string]string{
		`histogram_quantile(0.95, sum by (le) (rate(actions_call_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))`: "actions_call_duration_seconds_bucket",
		`max by (token) (actions_token_health{status="reauthorization_required"}) == 1`:                                               "actions_token_health",
		`sum(rate(a_total[5m])) / sum(rate(b_count[5m])) > 0 and on (x) c`:                                                            "a_total b_count c",
		`up{job="actions-consumer"} == 0`: "up",
	} {
		if got := strings.Join(metricsOf(expr), " "); got != want {
			t.Errorf("metricsOf(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestGrafanaDashboard: the dashboard is valid JSON, every panel has a
// query, every query names only metrics the service exports, and every
// metric of the service is on some panel.
func TestGrafanaDashboard(t *testing.T) {
	exported, goStd := exportedMetrics(t)
	files, _ := filepath.Glob("grafana/*.json")
	if len(files) == 0 {
		t.Fatal("no dashboard in deploy/grafana")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title      string `json:"title"`
			UID        string `json:"uid"`
			Templating struct {
				List []struct {
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
			t.Errorf("%s: a dashboard needs a title, a uid and panels", f)
		}
		used := map[string]bool{}
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, q := range p.Targets {
				for _, n := range checkMetrics(t, f+": panel "+p.Title, q.Expr, exported, goStd) {
					used[n] = true
				}
			}
		}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				metric, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")"), ",")
				checkMetrics(t, f+": variable", metric, exported, goStd)
			}
		}
		var missing []string
		for n := range exported {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
			if !used[n] && !used[base+"_bucket"] && !used[base+"_count"] && !used[base+"_sum"] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: no panel shows %v", f, missing)
		}
	}
}

// TestAlertRules: deploy/prometheus/alerts.yml is accepted by Prometheus's
// rule parser (rulefmt with the PromQL parser, as promtool check rules),
// each rule has an alert name, an expression over exported metrics, a
// severity and a summary, and the alerts the runbook needs are there.
func TestAlertRules(t *testing.T) {
	exported, goStd := exportedMetrics(t)
	data, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus's own rule parser: YAML shape, PromQL of every expr,
	// durations, label and annotation templates.
	rules, errs := rulefmt.Parse(data, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("alerts.yml: %v", errors.Join(errs...))
	}
	if len(rules.Groups) == 0 {
		t.Fatal("alerts.yml has no rule group")
	}
	covered := map[string]bool{}
	names := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("%s: missing or repeated alert name", where)
			}
			names[r.Alert] = true
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs labels.severity and annotations.summary", where)
			}
			for _, n := range checkMetrics(t, where, r.Expr, exported, goStd) {
				covered[n] = true
			}
		}
	}
	for _, want := range []string{"up", "actions_breaker_state", "actions_token_refresh_failures_total", "actions_dead_lettered_total",
		"actions_consumer_pending", "actions_token_health"} {
		if !covered[want] {
			t.Errorf("no alert on %s", want)
		}
	}
}

// TestDockerfile: the image is built in a Go stage without cgo from
// ./cmd/consumer and runs, as a non-root user, on a static base; its tag is
// the image deploy/k8s/consumer.yaml runs, with the same user.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type stage struct {
		from, name string
		lines      []string
	}
	var stages []*stage
	var comments []string
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			comments = append(comments, line)
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, cont = cont+line, ""
		if line == "" {
			continue
		}
		words := strings.Fields(line)
		if strings.EqualFold(words[0], "FROM") {
			s := &stage{from: words[1]}
			if len(words) == 4 && strings.EqualFold(words[2], "AS") {
				s.name = words[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("instruction before FROM: %q", line)
		}
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.from, "golang:") || build.name == "" {
		t.Errorf("first stage FROM %s AS %q: want a named golang stage", build.from, build.name)
	}
	buildText := strings.Join(build.lines, "\n")
	if !strings.Contains(buildText, "CGO_ENABLED=0") {
		t.Error("the build stage does not set CGO_ENABLED=0")
	}
	if !regexp.MustCompile(`(?m)^RUN .*go build .*\./cmd/consumer\b`).MatchString(buildText) {
		t.Error("the build stage does not go build ./cmd/consumer")
	}
	if !(final.from == "scratch" || (strings.HasPrefix(final.from, "gcr.io/distroless/static") && strings.HasSuffix(final.from, ":nonroot"))) {
		t.Errorf("final stage FROM %s: want scratch or distroless static nonroot", final.from)
	}
	var user, entrypoint string
	copied := false
	for _, l := range final.lines {
		switch w := strings.Fields(l); strings.ToUpper(w[0]) {
		case "USER":
			user = w[1]
		case "ENTRYPOINT":
			entrypoint = strings.TrimPrefix(l, w[0]+" ")
		case "COPY":
			copied = copied || strings.Contains(l, "--from="+build.name)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "root" || uid == "0" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if !copied || !strings.Contains(entrypoint, "consumer") {
		t.Errorf("final stage: want the binary copied from %s and ENTRYPOINT the consumer, got ENTRYPOINT %s", build.name, entrypoint)
	}

	manifest, err := os.ReadFile("k8s/consumer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	image := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)`).FindSubmatch(manifest)
	if image == nil {
		t.Fatal("k8s/consumer.yaml has no image")
	}
	tagged := false
	for _, c := range comments {
		tagged = tagged || strings.Contains(c, "docker build -t "+string(image[1])+" ")
	}
	if !tagged {
		t.Errorf("the Dockerfile does not say it is built as %s, the image of k8s/consumer.yaml", image[1])
	}
	if runAs := regexp.MustCompile(`runAsUser:\s*(\d+)`).FindSubmatch(manifest); runAs == nil || string(runAs[1]) != uid {
		t.Errorf("k8s/consumer.yaml runAsUser %s, Dockerfile USER %s: want the same user", runAs, user)
	}
	for _, want := range []string{"ACTIONS_HTTP_ADDR", "name: ACTIONS_ADMIN_PASSWORD\n              valueFrom: {secretKeyRef:"} {
		if !bytes.Contains(manifest, []byte(want)) {
			t.Errorf("k8s/consumer.yaml lacks %q (the web UI from a Secret)", want)
		}
	}
}
