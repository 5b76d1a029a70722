package faulttest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshake runs a TLS handshake between a Go server using the server
// certificate of f (and requiring a client certificate signed by its
// CA) and a client using cfg; it returns the client's error.
func handshake(t *testing.T, f *TLSFiles, cfg *tls.Config) error {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := loadPool(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		_ = c.(*tls.Conn).Handshake()
		_ = c.Close()
	})
	d := &net.Dialer{Timeout: testTimeout}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
	if err != nil {
		return err
	}
	return c.Close()
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTLSCertificates(t *testing.T) {
	t.Run("good", func(t *testing.T) {
		f, lines, err := writeTLS(t.TempDir(), 5671, TLSOptions{External: true, ClientName: "svc"})
		if err != nil {
			t.Fatal(err)
		}
		conf := strings.Join(lines, "\n")
		for _, want := range []string{
			"listeners.ssl.1 = 127.0.0.1:5671", "ssl_options.verify = verify_peer",
			"ssl_options.fail_if_no_peer_cert = false", "auth_mechanisms.3 = EXTERNAL",
			"ssl_cert_login_from = common_name", "ssl_options.cacertfile = " + f.CAFile,
		} {
			if !strings.Contains(conf, want) {
				t.Errorf("rabbitmq.conf lines lack %q:\n%s", want, conf)
			}
		}
		srv := readCert(t, f.CertFile)
		if len(srv.DNSNames) != 1 || srv.DNSNames[0] != "localhost" || len(srv.IPAddresses) != 1 || !srv.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("server certificate names: %v %v", srv.DNSNames, srv.IPAddresses)
		}
		if cn := readCert(t, f.ClientCertFile).Subject.CommonName; cn != "svc" || f.ClientName != "svc" {
			t.Errorf("client certificate CN = %q, ClientName %q; want svc", cn, f.ClientName)
		}
		for _, name := range []string{"localhost", "127.0.0.1"} {
			cfg, err := f.ClientConfig(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := handshake(t, f, cfg); err != nil {
				t.Errorf("handshake as %s: %v", name, err)
			}
		}
		// The wrong name, and an untrusted CA, are refused.
		cfg, _ := f.ClientConfig("wrong.invalid")
		var hostErr x509.HostnameError
		if err := handshake(t, f, cfg); !errors.As(err, &hostErr) {
			t.Errorf("handshake as wrong.invalid: %v, want a hostname error", err)
		}
		other, err := loadPool(f.OtherCAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ = f.ClientConfig("localhost")
		cfg.RootCAs = other
		var authErr x509.UnknownAuthorityError
		if err := handshake(t, f, cfg); !errors.As(err, &authErr) {
			t.Errorf("handshake trusting another CA: %v, want an unknown authority error", err)
		}
		u := f.URL("localhost")
		if !strings.HasPrefix(u, "rabbit://guest:guest@localhost:5671/?") || !strings.Contains(u, "ssl=true") ||
			!strings.Contains(u, "ssl_key_file=") {
			t.Errorf("URL = %q", u)
		}
	})
	t.Run("expired, wrong host", func(t *testing.T) {
		f, lines, err := writeTLS(t.TempDir(), 5671, TLSOptions{Expired: true, Hosts: []string{"wrong.invalid"}})
		if err != nil {
			t.Fatal(err)
		}
		if conf := strings.Join(lines, "\n"); !strings.Contains(conf, "verify_none") || strings.Contains(conf, "EXTERNAL") {
			t.Errorf("rabbitmq.conf lines:\n%s", conf)
		}
		srv := readCert(t, f.CertFile)
		if !srv.NotAfter.Before(time.Now()) || len(srv.DNSNames) != 1 || srv.DNSNames[0] != "wrong.invalid" {
			t.Errorf("server certificate: valid until %v for %v", srv.NotAfter, srv.DNSNames)
		}
		cfg, _ := f.ClientConfig("wrong.invalid")
		var invalid x509.CertificateInvalidError
		if err := handshake(t, f, cfg); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
			t.Errorf("handshake with an expired certificate: %v, want it expired", err)
		}
	})
}
