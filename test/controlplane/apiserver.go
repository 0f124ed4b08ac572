package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// credentials are the files the API server and its clients share. They are made fresh
// on every start; nothing secret is reused between runs.
type credentials struct {
	adminToken  string
	tokenFile   string // static token authentication: the admin user in system:masters
	saKeyFile   string // signs and verifies ServiceAccount tokens (TokenRequest)
	servingCert string // serving certificate followed by its CA: clients use it as their CA bundle
	servingKey  string
	auditPolicy string
}

func writeCredentials(dir string) (*credentials, error) {
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, err
	}
	c := &credentials{
		tokenFile:   filepath.Join(pki, "tokens.csv"),
		saKeyFile:   filepath.Join(pki, "sa.key"),
		servingCert: filepath.Join(pki, "apiserver.crt"),
		servingKey:  filepath.Join(pki, "apiserver.key"),
		auditPolicy: filepath.Join(pki, "audit-policy.yaml"),
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	c.adminToken = hex.EncodeToString(raw)
	if err := os.WriteFile(c.tokenFile, []byte(c.adminToken+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}

	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.saKeyFile, saPEM, 0o600); err != nil {
		return nil, err
	}

	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost", "kubernetes.default.svc"})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.servingCert, certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.servingKey, keyPEM, 0o600); err != nil {
		return nil, err
	}

	// Only requests made with ServiceAccount credentials are audited: that is the
	// operator under test. The controllers and the test harness use the admin token.
	// ResponseStarted is kept so that a watch is logged when it opens, not only when it
	// ends minutes later.
	policy := `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
`
	if err := os.WriteFile(c.auditPolicy, []byte(policy), 0o644); err != nil {
		return nil, err
	}
	return c, nil
}

// apiServer is kube-apiserver running as a child process (`testcp apiserver <flags>`), so
// that it can be restarted on its port: a restart drops every watch and the watch cache,
// which is how a test forces the clients' informers to relist (SIGUSR1 to testcp).
type apiServer struct {
	url  string
	args []string
	log  string
	// done reports an exit that was not asked for.
	done chan error

	mu     sync.Mutex
	child  *exec.Cmd
	exited chan struct{} // closed when the current child has exited
}

func startAPIServer(ctx context.Context, o options, etcdURL string, c *credentials) (*apiServer, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ports[0])
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + port,
		"--cert-dir=" + filepath.Join(o.dir, "pki"),
		"--tls-cert-file=" + c.servingCert,
		"--tls-private-key-file=" + c.servingKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--anonymous-auth=false",
		"--token-auth-file=" + c.tokenFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.saKeyFile,
		"--service-account-signing-key-file=" + c.saKeyFile,
		// No Endpoints reconciliation: there is no node to send traffic to, and the
		// reconciler would keep failing on 127.0.0.1 as an endpoint address.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=" + strconv.Itoa(o.verbosity),
	}
	if o.auditLog != "" {
		args = append(args,
			"--audit-policy-file="+c.auditPolicy,
			"--audit-log-path="+o.auditLog,
			"--audit-log-format=json",
			// Blocking mode writes each event before the response completes, so a
			// test that reads the log after a request sees the request.
			"--audit-log-mode=blocking",
			"--audit-log-maxsize=0",
		)
	}
	_ = ctx
	api := &apiServer{url: "https://127.0.0.1:" + port, args: args, log: filepath.Join(o.dir, "apiserver.log"), done: make(chan error, 1)}
	return api, api.spawn()
}

func (a *apiServer) spawn() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(self, append([]string{"apiserver"}, a.args...)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	exited := make(chan struct{})
	a.mu.Lock()
	a.child = cmd
	a.exited = exited
	a.mu.Unlock()
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		close(exited)
		a.mu.Lock()
		expected := a.child != cmd
		a.mu.Unlock()
		if expected {
			return
		}
		if err == nil {
			err = fmt.Errorf("exited (log: %s)", a.log)
		} else {
			err = fmt.Errorf("%w (log: %s)", err, a.log)
		}
		a.done <- err
	}()
	return nil
}

// restart stops the API server (SIGTERM, then SIGKILL after 3 s: it stops listening at once
// but its process lingers about 20 s more), runs whileStopped, and starts it again on the
// same port with the same flags and etcd.
func (a *apiServer) restart(whileStopped func() error) error {
	a.mu.Lock()
	old, exited := a.child, a.exited
	a.child = nil
	a.mu.Unlock()
	if old != nil && old.Process != nil {
		_ = old.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = old.Process.Kill()
			<-exited
		}
	}
	if err := whileStopped(); err != nil {
		return err
	}
	return a.spawn()
}

// stop asks the API server to shut down; the channel closes when it has.
func (a *apiServer) stop() <-chan struct{} {
	a.mu.Lock()
	child, exited := a.child, a.exited
	a.child = nil
	a.mu.Unlock()
	if child != nil && child.Process != nil {
		_ = child.Process.Signal(syscall.SIGTERM)
	}
	return exited
}

// waitReady polls /readyz with the admin token until the server says ready, the server
// stops, or the timeout passes.
func waitReady(ctx context.Context, api *apiServer, c *credentials, timeout time.Duration) error {
	pem, err := os.ReadFile(c.servingCert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.adminToken)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case err := <-api.done:
			return fmt.Errorf("kube-apiserver exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s (last answer: %s)", timeout, last)
}

func writeKubeconfig(dir string, api *apiServer, c *credentials) (string, error) {
	path := filepath.Join(dir, "admin.kubeconfig")
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"testcp": {Server: api.url, CertificateAuthority: c.servingCert}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"admin": {Token: c.adminToken}},
		Contexts:       map[string]*clientcmdapi.Context{"testcp": {Cluster: "testcp", AuthInfo: "admin", Namespace: "default"}},
		CurrentContext: "testcp",
	}
	return path, clientcmd.WriteToFile(cfg, path)
}
