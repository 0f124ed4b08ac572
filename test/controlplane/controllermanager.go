package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// controllers are the kube-controller-manager loops the tests rely on:
// workloads (deployment, replicaset, statefulset, daemonset, job), cascading deletion
// (garbage-collector), namespace deletion (namespace), each namespace's default
// ServiceAccount (serviceaccount), and the aggregated admin/edit/view ClusterRoles
// (clusterrole-aggregation).
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"clusterrole-aggregation-controller",
}

type childProcess struct {
	cmd  *exec.Cmd
	done <-chan error
}

func (c *childProcess) stop() {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// startControllerManager starts this same binary as `testcp controller-manager`. The
// child is killed by the kernel if this process dies (Pdeathsig), so a kill -9 of the
// control plane never leaves an orphan behind.
func startControllerManager(o options, kubeconfig string) (*childProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.dir, "controller-manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "controller-manager",
		"--kubeconfig="+kubeconfig,
		"--leader-elect=false",
		// No serving port: nothing scrapes it, and serving would need delegated authn.
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--controllers="+strings.Join(controllers, ","),
		// More workers and a higher client rate limit than a production default (20 QPS):
		// benchmarks create thousands of pods, and the limit, not the work, would set the pace.
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-statefulset-syncs=10",
		"--concurrent-daemonset-syncs=5",
		"--kube-api-qps=300",
		"--kube-api-burst=600",
		"--v="+strconv.Itoa(o.verbosity),
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		_ = logFile.Close()
		if err == nil {
			err = fmt.Errorf("exited (log: %s)", logPath)
		} else {
			err = fmt.Errorf("%w (log: %s)", err, logPath)
		}
		done <- err
	}()
	return &childProcess{cmd: cmd, done: done}, nil
}
