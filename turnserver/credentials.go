package turnserver

import (
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // RFC 8489 long-term credentials are defined over MD5.
	"crypto/sha1" //nolint:gosec // TURN REST API passwords are HMAC-SHA1 by definition.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxUsernameLength bounds the TURN username accepted by the server; RFC 8489
// limits USERNAME to 513 bytes.
const MaxUsernameLength = 513

// Credentials mints ephemeral TURN credentials in the TURN REST API format
// (draft-uberti-behave-turn-rest): the username is "expiry:nodeID" with expiry
// in Unix seconds, and the password is base64(HMAC-SHA1(secret, username)).
// Any TURN server that knows secret can check them without a user database:
// this package's Server, or coturn with use-auth-secret.
func Credentials(secret, nodeID string, ttl time.Duration, now time.Time) (username, password string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + nodeID
	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash.Hash writes never fail
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// longTermKey is the RFC 8489 long-term credential key MD5(username:realm:password)
// that MESSAGE-INTEGRITY is computed with.
func longTermKey(username, realm, password string) []byte {
	sum := md5.Sum([]byte(username + ":" + realm + ":" + password)) //nolint:gosec // mandated by RFC 8489.
	return sum[:]
}

var (
	errUsernameFormat = errors.New(`username is not "expiry:nodeID"`)
	errExpired        = errors.New("credentials expired")
)

// parseUsername splits a TURN REST username into its expiry and node ID.
func parseUsername(username string) (expiry time.Time, nodeID string, err error) {
	if len(username) > MaxUsernameLength {
		return time.Time{}, "", fmt.Errorf("%w: %d bytes is too long", errUsernameFormat, len(username))
	}
	expiryText, nodeID, ok := strings.Cut(username, ":")
	if !ok || nodeID == "" {
		return time.Time{}, "", errUsernameFormat
	}
	unix, err := strconv.ParseInt(expiryText, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: expiry: %w", errUsernameFormat, err)
	}
	return time.Unix(unix, 0), nodeID, nil
}

// checkUsername returns the node ID of a username that is well formed and not
// yet expired at now. The password is not checked here: pion/turn checks
// MESSAGE-INTEGRITY with the key derived from it.
func checkUsername(username string, now time.Time) (nodeID string, err error) {
	expiry, nodeID, err := parseUsername(username)
	if err != nil {
		return "", err
	}
	if now.After(expiry) {
		return "", fmt.Errorf("%w at %v", errExpired, expiry.UTC())
	}
	return nodeID, nil
}
