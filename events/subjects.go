package events

import (
	"crypto/sha256"
	enchex "encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Sources of a trigger. A trigger from SourceTest is a test run (the "Test"
// button of an action editor); the others are live runs.
const (
	SourceInbox = "inbox"
	SourceBot   = "bot"
	SourceTest  = "test"
)

// Default names of the streams and KV buckets of the contract.
const (
	DefaultPrefix        = "actions"
	DefaultTriggerStream = "ACTIONS_TRIGGERS"
	DefaultResultStream  = "ACTIONS_RESULTS"
	DefaultLogStream     = "ACTIONS_LOGS"
	DefaultTokensBucket  = "action_tokens"
	DefaultFetchedBucket = "action_fetched_tokens"
	DefaultBreakerBucket = "action_breakers"
	// DefaultConnectionsBucket holds end users' connections (contract §11)
	// and DefaultConnectStatesBucket the pending connect links.
	DefaultConnectionsBucket   = "action_connections"
	DefaultConnectStatesBucket = "action_connect_states"
	DefaultDurable             = "actions-consumer"
)

// ValidID reports whether s may be an action id or a token id: 1 to 128
// characters of letters, digits, '_' and '-' (^[A-Za-z0-9_-]{1,128}$), safe
// as a subject token and a KV key.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidSource reports whether s is one of the trigger sources.
func ValidSource(s string) bool {
	return s == SourceInbox || s == SourceBot || s == SourceTest
}

// Subjects builds the subjects of one installation from its prefix.
type Subjects struct {
	Prefix string
}

// NewSubjects returns the subjects under prefix ("" means DefaultPrefix).
func NewSubjects(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Subjects{Prefix: prefix}
}

// Trigger is the subject a producer publishes a trigger on.
func (s Subjects) Trigger(source, actionID string) string {
	return s.Prefix + ".trigger." + source + "." + actionID
}

// TriggerWildcard matches every trigger subject.
func (s Subjects) TriggerWildcard() string { return s.Prefix + ".trigger.>" }

// MaxPartitions bounds the trigger partitions of one installation.
const MaxPartitions = 64

// PartitionWildcard matches the trigger subjects of partition k: with
// partitions on, the server maps <prefix>.trigger.<source>.<action_id> to
// <prefix>.partition.<k>.trigger.<source>.<action_id> (PartitionMapping),
// and partition k has its own stream.
func (s Subjects) PartitionWildcard(k int) string {
	return s.Prefix + ".partition." + strconv.Itoa(k) + ".>"
}

// PartitionMapping is the subject mapping that spreads triggers over n
// partitions by their action id: every trigger of an action goes to the
// same partition, so a re-published trigger meets its first copy in that
// partition stream's duplicate window. It goes into the account of the
// producers (nats-server "mappings"); the server hashes the action id, so
// producers keep publishing on the contract's subjects.
func (s Subjects) PartitionMapping(n int) (from, to string) {
	return s.Prefix + ".trigger.*.*",
		s.Prefix + ".partition.{{partition(" + strconv.Itoa(n) + ",2)}}.trigger.{{wildcard(1)}}.{{wildcard(2)}}"
}

// Unpartition returns the contract's trigger subject of a partition subject
// (<prefix>.partition.<k>.trigger.<source>.<action_id> gives
// <prefix>.trigger.<source>.<action_id>), and any other subject unchanged.
func (s Subjects) Unpartition(subject string) string {
	rest, ok := strings.CutPrefix(subject, s.Prefix+".partition.")
	if !ok {
		return subject
	}
	k, rest, ok := strings.Cut(rest, ".")
	if !ok || k == "" || strings.Trim(k, "0123456789") != "" || !strings.HasPrefix(rest, "trigger.") {
		return subject
	}
	return s.Prefix + "." + rest
}

// Result is the subject of the result of a trigger of actionID.
func (s Subjects) Result(actionID string) string { return s.Prefix + ".result." + actionID }

// InvalidActionID stands for the action id in the subjects of the result
// and log events of a rejected trigger that has no valid action id (one
// published on a malformed subject, such as actions.trigger.inbox.a.b,
// without a valid action_id in its body either). It matches the id
// pattern, so the subjects are well-formed; the leading underscore marks it
// as a reserved name, and such a result has status rejected and an empty
// action_id.
const InvalidActionID = "_invalid"

// ResultFor is Result(actionID) when actionID is a valid id (ValidID), and
// Result(InvalidActionID) otherwise, so a rejection is always published on
// a well-formed subject, never on "actions.result." or one with dots or
// wildcards. The result's own action_id field keeps what Decode returned.
func (s Subjects) ResultFor(actionID string) string {
	if !ValidID(actionID) {
		actionID = InvalidActionID
	}
	return s.Result(actionID)
}

// Recent is the subject of the kept copy of the trigger triggerID of
// actionID (the stream of recent triggers keeps one message per subject):
// its last token is a hash of the trigger id, which may hold any
// character.
func (s Subjects) Recent(actionID, triggerID string) string {
	sum := sha256.Sum256([]byte(triggerID))
	return s.Prefix + ".recent." + actionID + "." + enchex.EncodeToString(sum[:16])
}

// RecentWildcard matches every kept trigger.
func (s Subjects) RecentWildcard() string { return s.Prefix + ".recent.>" }

// Connection is the subject of the connection events of a token.
func (s Subjects) Connection(tokenID string) string { return s.Prefix + ".connection." + tokenID }

// ConnectionWildcard matches every connection subject.
func (s Subjects) ConnectionWildcard() string { return s.Prefix + ".connection.>" }

// ResultWildcard matches every result subject.
func (s Subjects) ResultWildcard() string { return s.Prefix + ".result.>" }

// Log is the subject of the log events of actionID.
func (s Subjects) Log(actionID string) string { return s.Prefix + ".log." + actionID }

// LogFor is to Log what ResultFor is to Result.
func (s Subjects) LogFor(actionID string) string {
	if !ValidID(actionID) {
		actionID = InvalidActionID
	}
	return s.Log(actionID)
}

// LogWildcard matches every log subject.
func (s Subjects) LogWildcard() string { return s.Prefix + ".log.>" }

// Admin is the subject of an admin request, for example
// Admin("tokens", "save").
func (s Subjects) Admin(resource, verb string) string {
	return s.Prefix + ".admin." + resource + "." + verb
}

// AdminWildcard matches every admin request.
func (s Subjects) AdminWildcard() string { return s.Prefix + ".admin.>" }

// ParseTrigger splits a trigger subject into its source and action id. It
// returns an error, and empty names, unless the subject is
// <prefix>.trigger.<source>.<action_id> with a valid source (ValidSource)
// and a valid action id (ValidID).
func (s Subjects) ParseTrigger(subject string) (source, actionID string, err error) {
	rest, ok := strings.CutPrefix(s.Unpartition(subject), s.Prefix+".trigger.")
	if !ok {
		return "", "", fmt.Errorf("subject %q is not a trigger subject", subject)
	}
	source, actionID, ok = strings.Cut(rest, ".")
	switch {
	case !ok || source == "" || actionID == "" || strings.Contains(actionID, "."):
		return "", "", fmt.Errorf("subject %q is not %s.trigger.<source>.<action_id>", subject, s.Prefix)
	case !ValidSource(source):
		return "", "", fmt.Errorf("subject %q: source %q must be one of inbox, bot, test", subject, source)
	case !ValidID(actionID):
		return "", "", fmt.Errorf("subject %q: action id %q must match ^[A-Za-z0-9_-]{1,128}$", subject, actionID)
	}
	return source, actionID, nil
}
