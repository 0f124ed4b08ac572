// notation-sign: Notary Project signatures for the tests, made with the Notary Project's own Go
// library (notation-go and notation-core-go; the notation CLI's module is not served here). It
// makes test certificates, and signs images on the local registry in JWS or COSE envelopes,
// valid or deliberately wrong (expired, tampered, signed for another digest), so that
// Patchline's verifier is tested against what the real tool writes. Built by build.sh.
//
//	notation-sign certs <dir>
//	notation-sign sign --reference HOST/REPO@sha256:… --key KEY.pem --chain CHAIN.pem
//	                   [--envelope jws|cose] [--expiry 1h] [--signing-time RFC3339]
//	                   [--sign-digest sha256:…] [--tamper]
package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose"
	_ "github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: notation-sign certs <dir> | sign --reference … --key … --chain …"))
	}
	var err error
	switch os.Args[1] {
	case "certs":
		if len(os.Args) != 3 {
			err = errors.New("usage: notation-sign certs <dir>")
		} else {
			err = writeCerts(os.Args[2])
		}
	case "sign":
		err = sign(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "notation-sign:", err)
	os.Exit(1)
}

// ---- certificates ----

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64 = 1000

func newCert(template *x509.Certificate, key crypto.Signer, parent *issuer) (*x509.Certificate, error) {
	serial++
	template.SerialNumber = big.NewInt(serial)
	parentCert, parentKey := template, key
	if parent != nil {
		parentCert, parentKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func caTemplate(name string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"Patchline Test"}, CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func leafTemplate(org, cn string, notBefore, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Locality: []string{"Seattle"}, Organization: []string{org}, CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der)
}

// writeChain writes a signer's key and its chain (leaf first, root last), as notation reads them.
func writeChain(dir, name string, key crypto.Signer, chain ...*x509.Certificate) error {
	if err := writeKey(filepath.Join(dir, name+".key"), key); err != nil {
		return err
	}
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return os.WriteFile(filepath.Join(dir, name+".pem"), out, 0o600)
}

// writeCerts makes a trusted root (ca.pem) with an intermediate, signers under it (leaf: EC
// P-256; rsa: RSA 3072; other: another organisation; revoked: listed in ca.crl, the
// intermediate's CRL), and a signer under a root nobody trusts (untrusted).
func writeCerts(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	from, to := now.Add(-24*time.Hour), now.Add(365*24*time.Hour)
	ecKey := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }

	rootKey := ecKey()
	root, err := newCert(caTemplate("Patchline Test Root", from, to), rootKey, nil)
	if err != nil {
		return err
	}
	interKey := ecKey()
	interTemplate := caTemplate("Patchline Test Signing CA", from, to)
	interTemplate.MaxPathLenZero = true
	inter, err := newCert(interTemplate, interKey, &issuer{root, rootKey})
	if err != nil {
		return err
	}
	ca := &issuer{inter, interKey}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", root.Raw); err != nil {
		return err
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return err
	}
	signers := []struct {
		name, org, cn string
		key           crypto.Signer
	}{
		{"leaf", "Acme", "release", ecKey()},
		{"rsa", "Acme", "release-rsa", rsaKey},
		{"other", "Evil Corp", "release", ecKey()},
		{"revoked", "Acme", "revoked", ecKey()},
	}
	var revoked *x509.Certificate
	for _, s := range signers {
		leaf, err := newCert(leafTemplate(s.org, s.cn, from, to), s.key, ca)
		if err != nil {
			return err
		}
		if s.name == "revoked" {
			revoked = leaf
		}
		if err := writeChain(dir, s.name, s.key, leaf, inter, root); err != nil {
			return err
		}
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: now.Add(-time.Hour),
		NextUpdate: now.Add(7 * 24 * time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{
			{SerialNumber: revoked.SerialNumber, RevocationTime: now.Add(-time.Hour)},
		},
	}, inter, interKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "ca.crl"), "X509 CRL", crl); err != nil {
		return err
	}

	otherRootKey := ecKey()
	otherRoot, err := newCert(caTemplate("Somebody Else's Root", from, to), otherRootKey, nil)
	if err != nil {
		return err
	}
	untrustedKey := ecKey()
	untrusted, err := newCert(leafTemplate("Acme", "release", from, to), untrustedKey, &issuer{otherRoot, otherRootKey})
	if err != nil {
		return err
	}
	return writeChain(dir, "untrusted", untrustedKey, untrusted, otherRoot)
}

// ---- signing ----

var base64URL = base64.RawURLEncoding

func sign(args []string) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	reference := fs.String("reference", "", "HOST/REPO@sha256:… of the image to sign")
	keyPath := fs.String("key", "", "PEM private key")
	chainPath := fs.String("chain", "", "PEM certificate chain, leaf first")
	envelopeType := fs.String("envelope", "jws", "jws or cose")
	expiry := fs.Duration("expiry", 0, "signature expiry after the signing time")
	signingTime := fs.String("signing-time", "", "RFC 3339 signing time (default now)")
	signDigest := fs.String("sign-digest", "", "sign this digest instead, but attach the signature to --reference")
	tamper := fs.Bool("tamper", false, "change the signed payload after signing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mediaType := map[string]string{"jws": "application/jose+json", "cose": "application/cose"}[*envelopeType]
	if mediaType == "" {
		return fmt.Errorf("--envelope must be jws or cose, not %q", *envelopeType)
	}
	ctx := context.Background()
	remoteRepo, err := remote.NewRepository(*reference)
	if err != nil {
		return err
	}
	remoteRepo.PlainHTTP = true
	repo := registry.NewRepository(remoteRepo)

	if *signingTime == "" && *signDigest == "" && !*tamper {
		// The library's own path, end to end: resolve, sign, push the signature manifest.
		s, err := signer.NewFromFiles(*keyPath, *chainPath)
		if err != nil {
			return err
		}
		desc, err := notation.Sign(ctx, s, repo, notation.SignOptions{
			SignerSignOptions: notation.SignerSignOptions{SignatureMediaType: mediaType, ExpiryDuration: *expiry},
			ArtifactReference: *reference,
		})
		if err != nil {
			return err
		}
		fmt.Println(desc.Digest)
		return nil
	}
	return signByHand(ctx, repo, *reference, mediaType, *keyPath, *chainPath, *expiry, *signingTime, *signDigest, *tamper)
}

// signByHand makes the envelope with notation-core-go directly (a chosen signing time, another
// digest, a tampered payload), then pushes it as notation does.
func signByHand(ctx context.Context, repo registry.Repository, reference, mediaType, keyPath, chainPath string,
	expiry time.Duration, signingTime, signDigest string, tamper bool) error {
	target, err := repo.Resolve(ctx, reference)
	if err != nil {
		return err
	}
	signed := target
	if signDigest != "" {
		signed.Digest = digest.Digest(signDigest)
	}
	at := time.Now()
	if signingTime != "" {
		if at, err = time.Parse(time.RFC3339, signingTime); err != nil {
			return err
		}
	}
	key, chain, err := loadSigner(keyPath, chainPath)
	if err != nil {
		return err
	}
	local, err := signature.NewLocalSigner(chain, key)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(map[string]ocispec.Descriptor{"targetArtifact": {MediaType: signed.MediaType, Digest: signed.Digest, Size: signed.Size}})
	if err != nil {
		return err
	}
	req := &signature.SignRequest{
		Payload:       signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:        local,
		SigningTime:   at,
		SigningScheme: signature.SigningSchemeX509,
		SigningAgent:  "patchline-test/1.0",
	}
	if expiry != 0 {
		req.Expiry = at.Add(expiry)
	}
	env, err := signature.NewEnvelope(mediaType)
	if err != nil {
		return err
	}
	blob, err := env.Sign(req)
	if err != nil {
		return err
	}
	if tamper {
		blob = tamperWith(blob, signed.Digest.Encoded())
	}
	_, manifest, err := repo.PushSignature(ctx, mediaType, blob, target, map[string]string{})
	if err != nil {
		return err
	}
	fmt.Println(manifest.Digest)
	return nil
}

// tamperWith changes one character of the signed digest inside the envelope: in COSE the
// payload is raw JSON; in JWS it is base64url, so the JSON is decoded, changed and re-encoded.
func tamperWith(blob []byte, hex string) []byte {
	flip := func(b []byte) []byte {
		out := []byte(string(b))
		for i := 0; i+len(hex) <= len(out); i++ {
			if string(out[i:i+len(hex)]) == hex {
				if out[i] == '0' {
					out[i] = '1'
				} else {
					out[i] = '0'
				}
				return out
			}
		}
		return out
	}
	var jws map[string]any
	if json.Unmarshal(blob, &jws) == nil {
		payload, _ := jws["payload"].(string)
		raw, err := base64URL.DecodeString(payload)
		if err == nil {
			jws["payload"] = base64URL.EncodeToString(flip(raw))
			out, _ := json.Marshal(jws)
			return out
		}
	}
	return flip(blob)
}

func loadSigner(keyPath, chainPath string) (crypto.PrivateKey, []*x509.Certificate, error) {
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", keyPath)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	chainPEM, err := os.ReadFile(chainPath)
	if err != nil {
		return nil, nil, err
	}
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, c)
	}
	return key, chain, nil
}
