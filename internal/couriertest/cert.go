package couriertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// certs is a server's TLS material: a private CA, and a certificate for
// localhost signed by it.
type certs struct {
	caPEM, certPEM, keyPEM []byte
	leafDER                []byte
}

// newCerts makes both, on P-256 keys (fast to generate; GnuTLS, under
// couriertls, takes them as well as RSA).
func newCerts() (*certs, error) {
	validity := func(c *x509.Certificate) *x509.Certificate {
		c.NotBefore = time.Now().Add(-time.Hour)
		c.NotAfter = time.Now().Add(7 * 24 * time.Hour)
		c.BasicConstraintsValid = true
		sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
		if err != nil {
			sn = big.NewInt(time.Now().UnixNano())
		}
		c.SerialNumber = sn
		return c
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := validity(&x509.Certificate{
		Subject:  pkix.Name{CommonName: "couriertest private CA", Organization: []string{"popfetch tests"}},
		IsCA:     true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := validity(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &certs{
		caPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		leafDER: leafDER,
	}, nil
}
