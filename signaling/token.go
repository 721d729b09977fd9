package signaling

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// NetworkToken returns the token that admits a client to a closed network: the hex
// HMAC-SHA256 of the network name under secret. One server secret can thus mint a distinct
// token per network without storing any.
func NetworkToken(secret []byte, network string) string {
	return hex.EncodeToString(networkMAC(secret, network))
}

// VerifyNetworkToken reports whether token is HMAC-SHA256(secret, network) written in hex
// (either case) or base64url (padded or not). The comparison is constant-time.
func VerifyNetworkToken(secret []byte, network, token string) bool {
	want := networkMAC(secret, network)
	var got []byte
	var err error
	switch len(token) {
	case hex.EncodedLen(sha256.Size): // 64
		got, err = hex.DecodeString(strings.ToLower(token))
	case base64.RawURLEncoding.EncodedLen(sha256.Size): // 43
		got, err = base64.RawURLEncoding.DecodeString(token)
	case base64.URLEncoding.EncodedLen(sha256.Size): // 44
		got, err = base64.URLEncoding.DecodeString(token)
	default:
		return false
	}
	if err != nil {
		return false
	}
	return hmac.Equal(got, want)
}

func networkMAC(secret []byte, network string) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(network))
	return mac.Sum(nil)
}
