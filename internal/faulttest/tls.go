package faulttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TLSOptions configures a node's TLS listener. Its certificates are made
// for the node: a test CA, a server certificate and a client certificate
// signed by it, and a second CA that signed nothing (to play an
// untrusted one).
type TLSOptions struct {
	// Hosts are the DNS names and IP addresses the server certificate is
	// valid for (its subject alternative names). Give another name (e.g.
	// "wrong.invalid") for a certificate of the wrong host. Default:
	// "localhost" and "127.0.0.1".
	Hosts []string
	// Expired makes the server certificate one that expired yesterday.
	Expired bool
	// ClientName is the common name of the client certificate. Default:
	// "faulttest-client".
	ClientName string
	// VerifyPeer makes the node ask for client certificates and verify
	// those it gets (ssl_options.verify = verify_peer). Clients without
	// one are still accepted unless FailIfNoPeerCert is set.
	VerifyPeer bool
	// FailIfNoPeerCert makes the node refuse clients without a
	// certificate. It implies VerifyPeer.
	FailIfNoPeerCert bool
	// External enables the EXTERNAL mechanism (plugin
	// rabbitmq_auth_mechanism_ssl): a client logs in as the common name
	// of its certificate. The node then has the user ClientName, without
	// a password, with every permission on the virtual host "/". It
	// implies VerifyPeer.
	External bool
}

// TLSFiles locates a node's TLS listener and the PEM files made for it.
type TLSFiles struct {
	// Port is the TLS listener's port on 127.0.0.1.
	Port int
	// CAFile is the certificate of the CA that signed the server and
	// client certificates.
	CAFile string
	// CertFile and KeyFile are the server's certificate and key.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are the client's certificate and
	// key; its common name is ClientName.
	ClientCertFile, ClientKeyFile string
	ClientName                    string
	// OtherCAFile is the certificate of a CA that signed nothing here:
	// a client trusting only it must refuse the node.
	OtherCAFile string
}

// Addr returns the TLS listener's address, 127.0.0.1:port.
func (f *TLSFiles) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(f.Port)) }

// URL returns a transport URL of the TLS listener that reaches it as
// host (e.g. "localhost", or "127.0.0.1"), trusts CAFile and presents
// the client certificate, as guest on the virtual host "/":
// rabbit://guest:guest@host:port/?ssl=true&ssl_ca_file=...&ssl_cert_file=...&ssl_key_file=...
func (f *TLSFiles) URL(host string) string {
	q := url.Values{}
	q.Set("ssl", "true")
	q.Set("ssl_ca_file", f.CAFile)
	q.Set("ssl_cert_file", f.ClientCertFile)
	q.Set("ssl_key_file", f.ClientKeyFile)
	return "rabbit://guest:guest@" + net.JoinHostPort(host, strconv.Itoa(f.Port)) + "/?" + q.Encode()
}

// ClientConfig returns a client TLS configuration that trusts CAFile,
// presents the client certificate and expects the server to be
// serverName.
func (f *TLSFiles) ClientConfig(serverName string) (*tls.Config, error) {
	pool, err := loadPool(f.CAFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(f.ClientCertFile, f.ClientKeyFile)
	if err != nil {
		return nil, fmt.Errorf("faulttest: client certificate: %w", err)
	}
	return &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("faulttest: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("faulttest: no certificate in %s", file)
	}
	return pool, nil
}

// issuer is a CA that can sign certificates.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newCA(name string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"faulttest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key, der: der}, nil
}

// leaf is a certificate and its key, in DER.
type leaf struct {
	der, key []byte
}

// sign makes a certificate for cn: a server one valid for hosts, or a
// client one when hosts is nil.
func (ca *issuer) sign(cn string, hosts []string, expired bool) (*leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"faulttest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if hosts != nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	if expired {
		tmpl.NotBefore = now.Add(-48 * time.Hour)
		tmpl.NotAfter = now.Add(-24 * time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &leaf{der: der, key: pkcs8}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n.Add(n, big.NewInt(1))
}

// writeTLS makes the certificates of opts in dir and returns their files
// and the rabbitmq.conf lines of a TLS listener on port.
func writeTLS(dir string, port int, opts TLSOptions) (*TLSFiles, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("faulttest: %w", err)
	}
	hosts := opts.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	f := &TLSFiles{
		Port:           port,
		CAFile:         filepath.Join(dir, "ca.pem"),
		CertFile:       filepath.Join(dir, "server.pem"),
		KeyFile:        filepath.Join(dir, "server.key"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
		ClientName:     opts.ClientName,
		OtherCAFile:    filepath.Join(dir, "other-ca.pem"),
	}
	if f.ClientName == "" {
		f.ClientName = "faulttest-client"
	}
	err := func() error {
		ca, err := newCA("faulttest CA")
		if err != nil {
			return err
		}
		other, err := newCA("faulttest untrusted CA")
		if err != nil {
			return err
		}
		server, err := ca.sign(hosts[0], hosts, opts.Expired)
		if err != nil {
			return err
		}
		client, err := ca.sign(f.ClientName, nil, false)
		if err != nil {
			return err
		}
		return errors.Join(
			writePEM(f.CAFile, "CERTIFICATE", ca.der),
			writePEM(f.OtherCAFile, "CERTIFICATE", other.der),
			writePEM(f.CertFile, "CERTIFICATE", server.der),
			writePEM(f.KeyFile, "PRIVATE KEY", server.key),
			writePEM(f.ClientCertFile, "CERTIFICATE", client.der),
			writePEM(f.ClientKeyFile, "PRIVATE KEY", client.key),
		)
	}()
	if err != nil {
		return nil, nil, fmt.Errorf("faulttest: TLS certificates: %w", err)
	}

	verify := opts.VerifyPeer || opts.FailIfNoPeerCert || opts.External
	lines := []string{
		"listeners.ssl.1 = 127.0.0.1:" + strconv.Itoa(port),
		"ssl_options.cacertfile = " + f.CAFile,
		"ssl_options.certfile = " + f.CertFile,
		"ssl_options.keyfile = " + f.KeyFile,
		"ssl_options.verify = " + map[bool]string{true: "verify_peer", false: "verify_none"}[verify],
		"ssl_options.fail_if_no_peer_cert = " + strconv.FormatBool(opts.FailIfNoPeerCert),
	}
	if opts.External {
		lines = append(lines,
			"auth_mechanisms.1 = PLAIN",
			"auth_mechanisms.2 = AMQPLAIN",
			"auth_mechanisms.3 = EXTERNAL",
			"ssl_cert_login_from = common_name",
		)
	}
	return f, lines, nil
}

func writePEM(file, kind string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

// addExternalUser creates the user of the client certificate, without a
// password, for the EXTERNAL mechanism.
func (n *Node) addExternalUser(ctx context.Context) error {
	user := n.tls.ClientName
	for _, args := range [][]string{
		{"add_user", user, randomHex(16)},
		{"clear_password", user},
		{"set_permissions", "-p", "/", user, ".*", ".*", ".*"},
	} {
		if _, err := n.Ctl(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}
