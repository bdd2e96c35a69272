// Package events holds the wire contract of the Custom Actions engine: the
// trigger that producers publish, the result and log events that the consumer
// publishes, the subjects they travel on, and the validation of a trigger.
//
// It knows nothing of HTTP calls or tokens; package consumer decodes a
// trigger with Decode, runs it, and publishes what it produced with a
// Publisher. Every other package and every tool (the CLI, the tests, the load
// generator) uses these types, so the JSON shapes are written down once.
package events
