package deploy_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"customactions/internal/natstest"
)

// partitionMapping is the subject mapping, as written in local-cluster.sh,
// that the script puts in place of the marker line of accounts.conf for
// ACTIONS_PARTITIONS=N.
const partitionMapping = `mappings: { \"actions.trigger.*.*\": \"actions.partition.{{partition($partitions,2)}}.trigger.{{wildcard(1)}}.{{wildcard(2)}}\" }`

// accountsWithPartitions is accounts.conf as local-cluster.sh writes it for
// n partitions (n < 2: unchanged), the passwords being "pw-<user>".
func accountsWithPartitions(t *testing.T, n int) string {
	t.Helper()
	raw, err := os.ReadFile("nats/accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("local-cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), partitionMapping) {
		t.Fatalf("local-cluster.sh does not write the mapping %s", partitionMapping)
	}
	marker := regexp.MustCompile(`(?m)^( *)# @PARTITION_MAPPING@.*$`)
	if got := len(marker.FindAllIndex(raw, -1)); got != 1 {
		t.Fatalf("accounts.conf has %d lines # @PARTITION_MAPPING@, want 1", got)
	}
	conf := string(raw)
	if n > 1 {
		mapping := strings.ReplaceAll(strings.ReplaceAll(partitionMapping, `\"`, `"`), "$partitions", strconv.Itoa(n))
		conf = marker.ReplaceAllLiteralString(conf, "    "+mapping)
	}
	return natstest.TestPasswords(conf)
}

// TestAccountsPartitionMapping: accounts.conf as committed (the marker a
// comment) loads and maps nothing; with the marker replaced as
// local-cluster.sh does for 3 partitions, a producer's (or the admin's)
// trigger on actions.trigger.<source>.<action> is stored by the partition
// stream of its action, the same action always on the same partition, and
// the consumer user may create those streams and ack on them. (nats-server
// checks publish permissions on the mapped subject, so the producer and the
// admin need actions.partition.*.trigger.> as well.)
func TestAccountsPartitionMapping(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range []int{0, 3} {
		t.Run(fmt.Sprintf("partitions=%d", n), func(t *testing.T) {
			url := natstest.StartWithConfig(t, accountsWithPartitions(t, n))
			cons, err := nats.Connect(url, nats.UserInfo("consumer", "pw-consumer"))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			prod, err := nats.Connect(url, nats.UserInfo("producer", "pw-producer"))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			admin, err := nats.Connect(url, nats.UserInfo("admin", "pw-admin"))
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close()
			consJS, _ := jetstream.New(cons)
			prodJS, _ := jetstream.New(prod)
			adminJS, _ := jetstream.New(admin)
			streams := []string{"ACTIONS_TRIGGERS"}
			subjects := [][]string{{"actions.trigger.>"}}
			if n > 1 {
				streams, subjects = nil, nil
				for k := range n {
					streams = append(streams, fmt.Sprintf("ACTIONS_TRIGGERS_P%d", k))
					subjects = append(subjects, []string{fmt.Sprintf("actions.partition.%d.>", k)})
				}
			}
			for i, name := range streams {
				if _, err := consJS.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects[i], Retention: jetstream.WorkQueuePolicy}); err != nil {
					t.Fatalf("the consumer user creates %s: %v", name, err)
				}
			}
			partitionOf := map[string]string{}
			for i := range 40 {
				action := fmt.Sprintf("action-%d", i%20)
				js := prodJS
				if i >= 20 { // the admin replays dead letters as triggers
					js = adminJS
				}
				ack, err := js.Publish(ctx, "actions.trigger.inbox."+action, []byte(`{}`))
				if err != nil {
					t.Fatalf("publish for %s: %v", action, err)
				}
				if p, ok := partitionOf[action]; ok && p != ack.Stream {
					t.Errorf("%s went to %s and to %s", action, p, ack.Stream)
				}
				partitionOf[action] = ack.Stream
			}
			used := map[string]bool{}
			for _, s := range partitionOf {
				used[s] = true
			}
			if want := len(streams); len(used) != want {
				t.Errorf("20 actions used streams %v, want all %d", used, want)
			}
			// The stored subject, and an ack on each stream.
			for _, name := range streams {
				c, err := consJS.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
				if err != nil {
					t.Fatal(err)
				}
				m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := "actions.trigger.inbox."
				if n > 1 {
					want = "actions.partition." + strings.TrimPrefix(name, "ACTIONS_TRIGGERS_P") + ".trigger.inbox."
				}
				if !strings.HasPrefix(m.Subject(), want) {
					t.Errorf("%s stored %s, want %s...", name, m.Subject(), want)
				}
				if err := m.DoubleAck(ctx); err != nil {
					t.Errorf("the consumer user acks on %s: %v", name, err)
				}
			}
		})
	}
}
