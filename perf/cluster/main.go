// Command cluster drives load through the local 3-node cluster of
// deploy/local-cluster.sh and measures what it costs (CAPACITY.md, "On a
// 3-node cluster: the cost of replication"). perf/cluster/run.sh brings
// the cluster up for each configuration (R1 or R3, 1-3 consumer
// processes), starts the mock API of perf/capacity and runs:
//
//	cluster -env DIR/env -pids DIR/pids -api http://127.0.0.1:18180 -inflight 512 -n 20000
//	cluster -env DIR/env -pids DIR/pids -api http://127.0.0.1:18180 -rate 500 -duration 20s -latency-ms 200
//
// Triggers are published as the producer user (JetStream publish with
// Nats-Msg-Id) to actions.trigger.inbox.bench-action-<i mod -actions>, and
// results are read as the subscriber user (core subscription to
// actions.result.>). Closed loop (-inflight K): K triggers outstanding, a
// new one published for each result, for the throughput bound. Open loop
// (-rate R): R/s for -duration whatever the pipeline does. A warm-up
// (-warmup triggers, or seconds of the rate) runs first and is left out.
//
// Over the measured window (first publish to last result) it reads user +
// system CPU of every process in DIR/pids from /proc/<pid>/stat, the
// nats-servers and the consumers summed apart, and their RSS, and prints
// one line of key=value. Everything is on loopback.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/perfrig"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on Linux on every architecture Go runs on).
const clockTicks = 100

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	env, pids, api, label string
	inflight, n, warmup   int
	rate                  int
	duration, warmupDur   time.Duration
	latencyMS, actions    int
	timeout               time.Duration
	extraPids             string
	idle                  time.Duration
}

func run(ctx context.Context) error {
	var o options
	flag.StringVar(&o.env, "env", "/tmp/actions-cluster/env", "the env file of local-cluster.sh (NATS_URL, passwords)")
	flag.StringVar(&o.pids, "pids", "/tmp/actions-cluster/pids", "the pids file of local-cluster.sh")
	flag.StringVar(&o.api, "api", "http://127.0.0.1:18180", "mock API (perf/capacity mockapi)")
	flag.StringVar(&o.label, "label", "", "printed first on the line")
	flag.IntVar(&o.inflight, "inflight", 512, "closed loop: triggers outstanding (with -rate 0)")
	flag.IntVar(&o.n, "n", 20000, "closed loop: triggers measured")
	flag.IntVar(&o.warmup, "warmup", 2000, "closed loop: triggers of the warm-up")
	flag.IntVar(&o.rate, "rate", 0, "open loop: triggers per second (0: closed loop)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "open loop: how long to publish")
	flag.DurationVar(&o.warmupDur, "warmup-duration", 3*time.Second, "open loop: warm-up at the rate")
	flag.IntVar(&o.latencyMS, "latency-ms", 0, "API latency of every trigger (header X-Mock-Latency-Ms)")
	flag.IntVar(&o.actions, "actions", 32, "distinct action ids (partitions map by action id)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "wait for the last results after the last publish")
	flag.StringVar(&o.extraPids, "extra-pids", "", "more processes to measure, name=pid,... (e.g. mock=123)")
	flag.DurationVar(&o.idle, "idle", 0, "publish nothing: the processes' CPU over this long with no load")
	flag.Parse()

	env, err := readEnv(o.env)
	if err != nil {
		return err
	}
	procs, err := readPids(o.pids, o.extraPids)
	if err != nil {
		return err
	}
	if o.idle > 0 {
		return idle(ctx, o, procs)
	}
	prod, err := nats.Connect(env["NATS_URL"], nats.UserInfo("producer", env["ACTIONS_PRODUCER_PASSWORD"]), nats.Name("cluster-drive-producer"))
	if err != nil {
		return fmt.Errorf("connect as producer: %w", err)
	}
	defer prod.Close()
	subc, err := nats.Connect(env["NATS_URL"], nats.UserInfo("subscriber", env["ACTIONS_SUBSCRIBER_PASSWORD"]), nats.Name("cluster-drive-subscriber"))
	if err != nil {
		return fmt.Errorf("connect as subscriber: %w", err)
	}
	defer subc.Close()
	js, err := jetstream.New(prod, jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		return err
	}
	d := &driver{o: o, js: js, prefix: strconv.FormatInt(time.Now().UnixNano(), 36)}
	sub, err := subc.Subscribe("actions.result.>", d.onResult)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	if err := subc.Flush(); err != nil {
		return err
	}

	// Warm-up, then the measured phase.
	if o.rate > 0 {
		_, err = d.phase(ctx, "warmup", int(float64(o.rate)*o.warmupDur.Seconds()), nil)
	} else {
		_, err = d.phase(ctx, "warmup", o.warmup, nil)
	}
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	total := o.n
	if o.rate > 0 {
		total = int(float64(o.rate) * o.duration.Seconds())
	}
	st, err := d.phase(ctx, "run", total, procs)
	printLine(o, st, procs)
	return err
}

type proc struct {
	name, kind string // kind: nats, consumer or other
	pid        int
	t0, t1     int64 // CPU ticks at the window's start and end
	rssKB      int64 // VmRSS at the window's end
	hwmKB      int64 // VmHWM (peak RSS) at the window's end
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok {
			env[k] = v
		}
	}
	if env["NATS_URL"] == "" {
		return nil, fmt.Errorf("%s has no NATS_URL", path)
	}
	return env, sc.Err()
}

// readPids names the processes of local-cluster.sh by their command
// (nats-server or consumer), in the order started.
func readPids(path, extra string) ([]*proc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ps []*proc
	counts := map[string]int{}
	for _, f := range strings.Fields(string(raw)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q", path, f)
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			return nil, fmt.Errorf("process %d of %s: %w", pid, path, err)
		}
		kind := "other"
		switch strings.TrimSpace(string(comm)) {
		case "nats-server":
			kind = "nats"
		case "consumer":
			kind = "consumer"
		}
		counts[kind]++
		ps = append(ps, &proc{name: fmt.Sprintf("%s%d", kind, counts[kind]), kind: kind, pid: pid})
	}
	for _, kv := range strings.Split(extra, ",") {
		if kv == "" {
			continue
		}
		name, p, _ := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("-extra-pids %q", kv)
		}
		ps = append(ps, &proc{name: name, kind: "other", pid: pid})
	}
	return ps, nil
}

// cpuTicks is utime + stime of a process (fields 14 and 15 of
// /proc/<pid>/stat, counted after the command, which may hold spaces).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func statusKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return -1
}

// machineBusy is the busy and total jiffies of all cores (/proc/stat).
func machineBusy() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	for i, v := range f {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

type driver struct {
	o      options
	js     jetstream.JetStream
	prefix string
	seq    atomic.Int64

	mu     sync.Mutex
	cur    *phaseState // the phase whose results are counted
	slots  chan struct{}
	strays int // results of triggers of another phase
}

type phaseState struct {
	name     string
	total    int
	ids      map[string]bool // published, not yet answered
	got      int
	dups     int
	notOK    int
	codes    map[string]int
	e2e      []float64 // ms
	last     time.Time
	complete chan struct{}
}

func (d *driver) onResult(m *nats.Msg) {
	now := time.Now()
	var r perfrig.Result
	if json.Unmarshal(m.Data, &r) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.cur
	if p == nil {
		return
	}
	answered, ours := p.ids[r.TriggerID]
	if !ours {
		d.strays++ // an earlier phase's late result, or a duplicate of one
		return
	}
	if answered {
		p.dups++
		return
	}
	p.ids[r.TriggerID] = true
	p.got++
	if r.Status != "succeeded" {
		p.notOK++
		code := r.Status
		if r.Error != nil {
			code = r.Error.Code
		}
		p.codes[code]++
	}
	p.e2e = append(p.e2e, float64(now.UnixNano()-r.Context.SentNS)/1e6)
	p.last = now
	if d.slots != nil {
		select {
		case <-d.slots:
		default:
		}
	}
	if p.got == p.total {
		close(p.complete)
	}
}

type stats struct {
	*phaseState
	strays   int
	first    time.Time
	pubDone  time.Duration
	pubErrs  int
	busy     float64 // machine busy share over the window
	timedOut bool
}

func (d *driver) publish(p *phaseState) error {
	i := d.seq.Add(1)
	id := d.prefix + "-" + strconv.FormatInt(i, 10)
	action := "bench-action-" + strconv.FormatInt(i%int64(d.o.actions), 10)
	sent := time.Now().UnixNano()
	t := perfrig.Trigger{ID: id, ActionID: action, Mode: "live", Source: "inbox", TokenID: "bench-text",
		Request: perfrig.Request{Method: "POST", URL: d.o.api + "/v1/echo", Headers: map[string]string{"Content-Type": "application/json",
			"X-Mock-Latency-Ms": strconv.Itoa(d.o.latencyMS)}, Body: `{"n":123}`},
		Context: json.RawMessage(`{"sent_ns":` + strconv.FormatInt(sent, 10) + `}`)}
	data, _ := json.Marshal(t)
	d.mu.Lock()
	p.ids[id] = false
	d.mu.Unlock()
	msg := &nats.Msg{Subject: "actions.trigger.inbox." + action, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	_, err := d.js.PublishMsgAsync(msg)
	return err
}

// phase publishes total triggers (closed or open loop) and waits for their
// results; with procs it reads their CPU at the first publish and at the
// last result.
func (d *driver) phase(ctx context.Context, name string, total int, procs []*proc) (*stats, error) {
	p := &phaseState{name: name, total: total, ids: make(map[string]bool, total), codes: map[string]int{},
		e2e: make([]float64, 0, total), complete: make(chan struct{})}
	closed := d.o.rate <= 0
	d.mu.Lock()
	d.cur = p
	d.slots = nil
	if closed {
		d.slots = make(chan struct{}, d.o.inflight)
	}
	slots := d.slots
	d.mu.Unlock()
	st := &stats{phaseState: p}
	for _, pr := range procs {
		pr.t0 = cpuTicks(pr.pid)
	}
	b0, t0 := machineBusy()
	st.first = time.Now()
	if total == 0 {
		close(p.complete)
	}
	if closed {
		for i := 0; i < total; i++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return st, ctx.Err()
			case <-time.After(d.o.timeout):
				return st, fmt.Errorf("%s: no result for %s with %d outstanding", name, d.o.timeout, d.o.inflight)
			}
			if d.publish(p) != nil {
				st.pubErrs++
			}
		}
	} else {
		for i := 0; i < total; {
			due := int(float64(time.Since(st.first)) / float64(time.Second) * float64(d.o.rate))
			for ; i < min(due, total); i++ {
				if d.publish(p) != nil {
					st.pubErrs++
				}
			}
			select {
			case <-ctx.Done():
				return st, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	st.pubDone = time.Since(st.first)
	select {
	case <-p.complete:
	case <-time.After(d.o.timeout):
		st.timedOut = true
	case <-ctx.Done():
		return st, ctx.Err()
	}
	for _, pr := range procs {
		pr.t1 = cpuTicks(pr.pid)
		pr.rssKB = statusKB(pr.pid, "VmRSS")
		pr.hwmKB = statusKB(pr.pid, "VmHWM")
	}
	b1, t1 := machineBusy()
	if t1 > t0 {
		st.busy = float64(b1-b0) / float64(t1-t0)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st.strays = d.strays
	d.cur = nil // later results are not counted: st may be read without the lock
	if st.timedOut {
		return st, fmt.Errorf("%s: %d of %d results after %s", name, p.got, total, d.o.timeout)
	}
	return st, nil
}

func printLine(o options, st *stats, procs []*proc) {
	if st == nil {
		return
	}
	var b strings.Builder
	if o.label != "" {
		fmt.Fprintf(&b, "%s ", o.label)
	}
	mode := fmt.Sprintf("closed inflight=%d", o.inflight)
	if o.rate > 0 {
		mode = fmt.Sprintf("open rate=%d", o.rate)
	}
	elapsed := st.last.Sub(st.first).Seconds()
	if st.got == 0 || elapsed <= 0 {
		elapsed = math.NaN()
	}
	v := slices.Clone(st.e2e)
	slices.Sort(v)
	pct := func(q float64) float64 {
		if len(v) == 0 {
			return math.NaN()
		}
		return v[min(len(v)-1, int(q*float64(len(v))))]
	}
	fmt.Fprintf(&b, "mode=%s latency_ms=%d actions=%d triggers=%d results=%d elapsed=%.2fs throughput=%.0f/s pub=%.2fs p50=%.1fms p99=%.1fms max=%.1fms dups=%d not_ok=%d",
		mode, o.latencyMS, o.actions, st.total, st.got, elapsed, float64(st.got)/elapsed, st.pubDone.Seconds(), pct(0.5), pct(0.99), pct(1), st.dups, st.notOK)
	for k, n := range st.codes {
		fmt.Fprintf(&b, ",%s:%d", k, n)
	}
	fmt.Fprintf(&b, " pub_errors=%d strays=%d", st.pubErrs, st.strays)
	sum := map[string]int64{}
	for _, p := range procs {
		if p.t0 >= 0 && p.t1 >= 0 {
			sum[p.kind] += p.t1 - p.t0
		}
	}
	perTrigger := func(ticks int64) float64 {
		if st.got == 0 {
			return math.NaN()
		}
		return float64(ticks) / clockTicks * 1e6 / float64(st.got)
	}
	cores := func(ticks int64) float64 { return float64(ticks) / clockTicks / elapsed }
	fmt.Fprintf(&b, " consumer_us=%.0f nats_us=%.0f other_us=%.0f consumer_cores=%.2f nats_cores=%.2f machine_busy=%.0f%%",
		perTrigger(sum["consumer"]), perTrigger(sum["nats"]), perTrigger(sum["other"]), cores(sum["consumer"]), cores(sum["nats"]), 100*st.busy)
	for _, p := range procs {
		fmt.Fprintf(&b, " %s=%.0fus/%.0fMB/%.0fMB", p.name, perTrigger(p.t1-p.t0), float64(p.rssKB)/1024, float64(p.hwmKB)/1024)
	}
	fmt.Println(b.String())
}

// idle prints the CPU (in cores) the processes use with no load: the fixed
// cost of the cluster (heartbeats, Raft, the consumers' pulls and timers).
func idle(ctx context.Context, o options, procs []*proc) error {
	for _, p := range procs {
		p.t0 = cpuTicks(p.pid)
	}
	start := time.Now()
	select {
	case <-time.After(o.idle):
	case <-ctx.Done():
		return ctx.Err()
	}
	secs := time.Since(start).Seconds()
	sum := map[string]int64{}
	var b strings.Builder
	if o.label != "" {
		fmt.Fprintf(&b, "%s ", o.label)
	}
	fmt.Fprintf(&b, "mode=idle seconds=%.1f", secs)
	for _, p := range procs {
		p.t1 = cpuTicks(p.pid)
		sum[p.kind] += p.t1 - p.t0
	}
	cores := func(ticks int64) float64 { return float64(ticks) / clockTicks / secs }
	fmt.Fprintf(&b, " consumer_cores=%.3f nats_cores=%.3f other_cores=%.3f", cores(sum["consumer"]), cores(sum["nats"]), cores(sum["other"]))
	for _, p := range procs {
		fmt.Fprintf(&b, " %s=%.3f/%.0fMB", p.name, cores(p.t1-p.t0), float64(statusKB(p.pid, "VmRSS"))/1024)
	}
	fmt.Println(b.String())
	return nil
}
