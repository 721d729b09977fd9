//go:build !js

package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/pion/webrtc/v4"
)

// validity is how long a generated certificate stays valid. The ID is tied to
// the certificate, so it must not expire during a node's lifetime.
const validity = 100 * 365 * 24 * time.Hour

// Identity is a node's key pair and certificate. It is immutable and safe for
// concurrent use.
type Identity struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	id   string
}

// Generate creates a fresh ephemeral identity (tests, browsers without storage).
func Generate() (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("identity: generate serial: %w", err)
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "rtcmesh"},
		Issuer:       pkix.Name{CommonName: "rtcmesh"},
		// Backdated a day so a peer with a slightly slow clock accepts it.
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("identity: create certificate: %w", err)
	}
	return fromParts(key, der)
}

func fromParts(key *ecdsa.PrivateKey, der []byte) (*Identity, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("identity: parse certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("identity: certificate does not match private key")
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("identity: key curve %s, want P-256", key.Curve.Params().Name)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("identity: certificate is not validly self-signed: %w", err)
	}
	return &Identity{key: key, cert: cert, id: IDFromCertificate(der)}, nil
}

// LoadOrCreate loads the identity stored at path, or creates and stores a new
// one (file mode 0600, parent directories 0700) if no file exists. A file that
// exists but cannot be used (corrupt, wrong key type, key and certificate
// mismatch, expired) is an error: it is never replaced silently, because that
// would change the node's ID.
func LoadOrCreate(path string) (*Identity, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("identity: load %s: %w", path, err)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}
	id, err := Generate()
	if err != nil {
		return nil, err
	}
	pemBytes, err := id.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("identity: create directory for %s: %w", path, err)
	}
	// O_EXCL: if another process created the file meanwhile, do not clobber it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("identity: create %s: %w", path, err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("identity: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("identity: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("identity: close %s: %w", path, err)
	}
	return id, nil
}

// Parse reads an identity from PEM: one "CERTIFICATE" block and one
// "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY" (SEC 1) block, in any order.
// Any other content is an error.
func Parse(data []byte) (*Identity, error) {
	var certDER []byte
	var key *ecdsa.PrivateKey
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			if certDER != nil {
				return nil, errors.New("more than one certificate")
			}
			certDER = block.Bytes
		case "PRIVATE KEY":
			if key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse private key: %w", err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("private key is %T, want ECDSA P-256", k)
			}
			key = ek
		case "EC PRIVATE KEY":
			if key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse EC private key: %w", err)
			}
			key = k
		default:
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data that is not PEM")
	}
	if certDER == nil {
		return nil, errors.New("no certificate")
	}
	if key == nil {
		return nil, errors.New("no private key")
	}
	id, err := fromParts(key, certDER)
	if err != nil {
		return nil, err
	}
	if now := time.Now(); now.After(id.cert.NotAfter) || now.Before(id.cert.NotBefore) {
		return nil, fmt.Errorf("identity: certificate valid %s to %s, not now",
			id.cert.NotBefore.Format(time.RFC3339), id.cert.NotAfter.Format(time.RFC3339))
	}
	return id, nil
}

// MarshalPEM encodes the identity as PEM (certificate, then PKCS#8 key), the
// format Parse and LoadOrCreate read. The output contains the private key.
func (id *Identity) MarshalPEM() ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal key: %w", err)
	}
	var buf bytes.Buffer
	if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Raw}); err != nil {
		return nil, fmt.Errorf("identity: encode certificate: %w", err)
	}
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}); err != nil {
		return nil, fmt.Errorf("identity: encode key: %w", err)
	}
	return buf.Bytes(), nil
}

// ID returns the node ID: IDFromCertificate of this identity's certificate.
func (id *Identity) ID() string { return id.id }

// Certificate returns the certificate and key in the form pion takes in
// webrtc.Configuration.Certificates. Every PeerConnection must be given it:
// without it pion generates a fresh certificate per connection and the
// remote's identity check fails.
func (id *Identity) Certificate() webrtc.Certificate {
	return webrtc.CertificateFromX509(id.key, id.cert)
}

// CertificateDER returns the DER bytes of the certificate (a copy).
func (id *Identity) CertificateDER() []byte {
	return append([]byte(nil), id.cert.Raw...)
}
