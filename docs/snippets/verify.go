// Verify a Print.one webhook signature (Go standard library only).
//
// Library use (copy Verify into your package):
//
//	outcome, index := Verify(secrets, rawBody, r.Header)
//
// Command line:
//
//	go run verify.go SECRET BODY_FILE SIGNATURE   # exit 0 silently when valid, else 1
//	go run verify.go --vectors FILE               # run the test vector file
//
// See docs/VERIFYING.md for the rules implemented here.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Both signature header names. http.Header looks them up case-insensitively
// and keeps every repeated value.
var signatureHeaders = []string{"x-webhook-hmac-sha256", "x-printone-hmac-sha256"}

// Verify checks the signature of one delivery.
// secrets are tried in order (several during a rotation); body is the raw
// request body exactly as received. It returns the outcome and, when the
// outcome is "valid", the index of the matching secret (otherwise -1).
func Verify(secrets []string, body []byte, header http.Header) (string, int) {
	// Rule 1: an empty secret (or none at all) is a configuration error.
	if len(secrets) == 0 {
		return "empty_secret", -1
	}
	for _, s := range secrets {
		if s == "" {
			return "empty_secret", -1
		}
	}

	// Rule 2: collect every value of both names, trimmed of spaces and tabs.
	var values []string
	for _, name := range signatureHeaders {
		for _, v := range header.Values(name) {
			values = append(values, strings.Trim(v, " \t"))
		}
	}
	if len(values) == 0 {
		return "missing", -1
	}
	for _, v := range values {
		if v != values[0] {
			return "ambiguous", -1
		}
	}
	value := values[0]

	// Rule 3: exactly 44 characters of canonical, padded, standard base64
	// that decode to 32 bytes. The decoder skips '\r' and '\n', so re-encode
	// and compare: that rejects any character it ignored or tolerated.
	mac, err := base64.StdEncoding.DecodeString(value)
	if err != nil || len(value) != 44 || len(mac) != 32 || base64.StdEncoding.EncodeToString(mac) != value {
		return "malformed", -1
	}

	// Rule 4: HMAC-SHA256 over the raw body with each secret (its UTF-8
	// bytes, used as given), compared in constant time.
	for i, s := range secrets {
		m := hmac.New(sha256.New, []byte(s))
		m.Write(body)
		if hmac.Equal(m.Sum(nil), mac) {
			return "valid", i
		}
	}
	return "mismatch", -1
}

type vectorFile struct {
	Vectors []struct {
		Name     string      `json:"name"`
		Secrets  []string    `json:"secrets"`
		Body     string      `json:"body"`
		Headers  [][2]string `json:"headers"`
		Expected struct {
			Outcome       string `json:"outcome"`
			MatchedSecret *int   `json:"matched_secret"`
		} `json:"expected"`
	} `json:"vectors"`
}

func runVectors(path string) int {
	data, err := os.ReadFile(path)
	var file vectorFile
	if err == nil {
		err = json.Unmarshal(data, &file)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read vectors:", err)
		return 2
	}
	passed, failed := 0, 0
	for _, v := range file.Vectors {
		header := http.Header{}
		for _, h := range v.Headers {
			header.Add(h[0], h[1]) // Add keeps repeats
		}
		outcome, index := Verify(v.Secrets, []byte(v.Body), header)
		wantIndex := -1
		if v.Expected.MatchedSecret != nil {
			wantIndex = *v.Expected.MatchedSecret
		}
		if outcome == v.Expected.Outcome && index == wantIndex {
			passed++
		} else {
			failed++
			fmt.Printf("FAIL %s: expected %s %d, got %s %d\n", v.Name, v.Expected.Outcome, wantIndex, outcome, index)
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func run(args []string) int {
	if len(args) == 2 && args[0] == "--vectors" {
		return runVectors(args[1])
	}
	if len(args) != 3 || args[0] == "--vectors" {
		fmt.Fprintln(os.Stderr, "usage: go run verify.go SECRET BODY_FILE SIGNATURE | go run verify.go --vectors FILE")
		return 2
	}
	body, err := os.ReadFile(args[1]) // raw bytes: never decode or re-serialise
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read body:", err)
		return 2
	}
	outcome, _ := Verify([]string{args[0]}, body, http.Header{"X-Webhook-Hmac-Sha256": {args[2]}})
	if outcome == "valid" {
		return 0
	}
	fmt.Fprintln(os.Stderr, outcome)
	return 1
}

func main() {
	os.Exit(run(os.Args[1:]))
}
