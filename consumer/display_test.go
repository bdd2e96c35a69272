package consumer

import "testing"

func TestDisplayURLDropsSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "https://api.example.com/v1/orders", "https://api.example.com/v1/orders"},
		{"query", "https://api.example.com/v1/orders?api_key=s3cr3t&x=1", "https://api.example.com/v1/orders"},
		{"user info", "https://bob:s3cr3t@api.example.com/v1", "https://api.example.com/v1"},
		{"fragment", "https://api.example.com/v1#s3cr3t", "https://api.example.com/v1"},
		{"unparsable", "https://bob:s3cr3t@api.example.com:port/", "(invalid url)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := displayURL(tc.in); got != tc.want {
				t.Errorf("displayURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
