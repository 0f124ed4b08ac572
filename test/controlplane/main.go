// Command testcp runs a real, small Kubernetes control plane for Patchline's tests:
// an embedded etcd, kube-apiserver (RBAC, token authentication, ServiceAccount token
// signing, optional audit log), kube-controller-manager with the controllers the tests
// need, and a "fakelet" that plays the kubelet's part for pod status.
//
// It is a multi-call binary: `testcp [flags]` starts everything; `testcp
// controller-manager <kcm flags>` is how the parent starts the controller manager as a
// child process. The controller manager lives in its own process because both upstream
// commands own process-global state (signal handling, the component globals registry,
// klog), and two of them in one process is a source of subtle failures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	apiapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "apiserver" {
		cmd := apiapp.NewAPIServerCommand()
		cmd.SetArgs(os.Args[2:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "controller-manager" {
		cmd := cmapp.NewControllerManagerCommand()
		cmd.SetArgs(os.Args[2:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "testcp: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	dir          string
	auditLog     string
	verbosity    int
	startTimeout time.Duration
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.dir, "dir", "", "state directory: etcd data, keys, kubeconfig, logs (required)")
	flag.StringVar(&o.auditLog, "audit-log", "", "if set, write an API audit log (JSON lines, Metadata level, ServiceAccount requests only) to this file")
	flag.IntVar(&o.verbosity, "v", 0, "klog verbosity of the Kubernetes components")
	flag.DurationVar(&o.startTimeout, "start-timeout", 3*time.Minute, "how long to wait for the API server to become ready")
	flag.Parse()
	return o
}

func run() error {
	o := parseFlags()
	if o.dir == "" {
		return errors.New("-dir is required")
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	o.dir = dir
	if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return err
	}
	// A stale ready marker from an earlier run must never be mistaken for this one.
	_ = os.Remove(readyFile(o.dir))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	started := time.Now()

	etcd, err := startEtcd(filepath.Join(o.dir, "etcd"))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	creds, err := writeCredentials(o.dir)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}

	api, err := startAPIServer(ctx, o, etcd.clientURL, creds)
	if err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	if err := waitReady(ctx, api, creds, o.startTimeout); err != nil {
		return err
	}
	kubeconfig, err := writeKubeconfig(o.dir, api, creds)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}

	kcm, err := startControllerManager(o, kubeconfig)
	if err != nil {
		return fmt.Errorf("kube-controller-manager: %w", err)
	}
	defer kcm.stop()

	if err := startFakelet(ctx, kubeconfig); err != nil {
		return fmt.Errorf("fakelet: %w", err)
	}

	if err := os.WriteFile(readyFile(o.dir), []byte(kubeconfig+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Printf("testcp ready in %s: kubeconfig %s (server %s)\n", time.Since(started).Round(time.Millisecond), kubeconfig, api.url)

	// SIGUSR1 restarts the API server: every client's watch ends, and etcd is compacted while
	// the server is down, so that every informer resuming from the resourceVersion it had is
	// told it is gone (410) and relists — a resumable watch would otherwise hide that path.
	// The count of finished restarts goes to <dir>/restarts.
	restart := make(chan os.Signal, 1)
	signal.Notify(restart, syscall.SIGUSR1)
	restarts := 0
	for {
		select {
		case <-ctx.Done():
			// A clean close rather than a reset for the clients still connected.
			exited := api.stop()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
			}
			return nil
		case <-restart:
			begun := time.Now()
			var compactedAt int64
			forget := func() (err error) { compactedAt, err = etcd.forgetHistory(ctx); return err }
			if err := api.restart(forget); err != nil {
				return fmt.Errorf("kube-apiserver restart: %w", err)
			}
			if err := waitReady(ctx, api, creds, o.startTimeout); err != nil {
				return err
			}
			restarts++
			if err := os.WriteFile(filepath.Join(o.dir, "restarts"), []byte(strconv.Itoa(restarts)+"\n"), 0o600); err != nil {
				return err
			}
			fmt.Printf("testcp: kube-apiserver restarted in %s (etcd compacted at revision %d)\n", time.Since(begun).Round(time.Millisecond), compactedAt)
		case err := <-api.done:
			return fmt.Errorf("kube-apiserver stopped: %w", err)
		case err := <-kcm.done:
			return fmt.Errorf("kube-controller-manager stopped: %v", err)
		case err := <-etcd.errc:
			return fmt.Errorf("etcd stopped: %w", err)
		}
	}
}

func readyFile(dir string) string { return filepath.Join(dir, "ready") }
