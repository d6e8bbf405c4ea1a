package resilienttest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"
)

// newCertificate makes a self-signed ECDSA P-256 certificate for host (a
// name or an IP address), localhost, 127.0.0.1 and ::1. It is valid from
// 1970 to 2084, as httptest's is, so that it holds in a testing/synctest
// bubble (whose clock reads 2000) as well as in real time.
func newCertificate(host string) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"resilienttest"}, CommonName: host},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Date(2084, time.January, 29, 16, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

// setupTLS makes the server's certificate for host and configures the
// server and the Transport for HTTPS with HTTP/2.
func (s *Server) setupTLS(host string) {
	cert, leaf, err := newCertificate(host)
	if err != nil {
		panic(fmt.Sprintf("resilienttest: failed to make a TLS certificate: %v", err))
	}
	s.cert = leaf
	s.hs.TLSConfig = &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}
	s.hs.Protocols = protocols()
	s.hs.ErrorLog = log.New(handshakeFilter{}, "", log.LstdFlags)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	s.transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	s.transport.Protocols = protocols()
}

// handshakeFilter passes the server's error log to the standard logger's
// output, but for failed TLS handshakes: a test of a client that rightly
// refuses the certificate need not print them.
type handshakeFilter struct{}

func (handshakeFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		return len(p), nil
	}
	return log.Writer().Write(p)
}

// protocols is HTTP/1.1 and HTTP/2 over TLS.
func protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return p
}

// Certificate returns the certificate of a server WithTLS, nil without it.
// A client of the test's own trusts the server by adding it to its
// RootCAs:
//
//	pool := x509.NewCertPool()
//	pool.AddCert(srv.Certificate())
func (s *Server) Certificate() *x509.Certificate { return s.cert }
