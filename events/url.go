package events

import (
	"errors"
	"fmt"
	"net/url"
)

// ParseHTTPURL parses an absolute http or https URL with a host: the URL
// of an action request or of a token's auth endpoint. Its error says what
// is wrong without repeating the URL (its query may hold keys); callers
// put the field name in front.
func ParseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("must be an absolute http or https URL, got scheme %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("has no host")
	}
	return u, nil
}
