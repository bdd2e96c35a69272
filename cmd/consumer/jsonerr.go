package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// describeJSONError turns an error of decoding the file name into a
// sentence a user can act on: which field has which JSON kind and what it
// must be, instead of Go's type names. what is what the file holds ("one
// trigger").
func describeJSONError(name, what string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("%s must hold %s as a JSON object, not %s", name, what, jsonKind(te.Value))
	case errors.As(err, &te):
		return fmt.Errorf("%s: the field %q must be %s, not %s", name, te.Field, goKind(te.Type), jsonKind(te.Value))
	case errors.As(err, &se):
		return fmt.Errorf("%s is not valid JSON (at byte %d): %s", name, se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	return fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names the JSON value json reports ("array", "number 3").
func jsonKind(v string) string {
	switch {
	case v == "array" || v == "object":
		return "an " + v
	case v == "":
		return "that value"
	}
	return "a " + v
}

// goKind says in JSON terms what a Go type accepts.
func goKind(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return "another kind of value"
}
