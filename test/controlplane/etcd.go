package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"go.uber.org/zap"
)

type etcdServer struct {
	clientURL string
	errc      <-chan error
	close     func()
	server    *etcdserver.EtcdServer
}

func (e *etcdServer) Close() { e.close() }

// forgetHistory compacts etcd past every revision a client has seen, so that a watch
// resuming from any resourceVersion handed out so far is refused as expired (410 Gone),
// whether the API server serves it from its watch cache or from etcd. Two writes first: a
// watch from resourceVersion R starts at revision R+1, which a compaction at R+1 still keeps.
func (e *etcdServer) forgetHistory(ctx context.Context) (int64, error) {
	var revision int64
	for i := 0; i < 2; i++ {
		put, err := e.server.Put(ctx, &pb.PutRequest{Key: []byte("/testcp/history-mark"), Value: []byte(strconv.Itoa(i))})
		if err != nil {
			return 0, fmt.Errorf("etcd put: %w", err)
		}
		revision = put.Header.Revision
	}
	if _, err := e.server.Compact(ctx, &pb.CompactionRequest{Revision: revision, Physical: true}); err != nil {
		return 0, fmt.Errorf("etcd compaction at %d: %w", revision, err)
	}
	return revision, nil
}

// startEtcd runs etcd in this process on two free loopback ports. Fsync is off: the
// data is a test fixture, and fsync on a busy CI disk costs seconds per write burst.
func startEtcd(dir string) (*etcdServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	cfg := embed.NewConfig()
	cfg.Name = "testcp"
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The API server relies on progress notifications for consistent reads from its
	// watch cache; 5s is what upstream clusters use.
	cfg.WatchProgressNotifyInterval = 5 * time.Second
	logger := zap.NewNop()
	if os.Getenv("TESTCP_ETCD_LOGS") != "" {
		logger, _ = zap.NewDevelopment()
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		return nil, fmt.Errorf("etcd did not become ready within 60s")
	}
	return &etcdServer{clientURL: clientURL.String(), errc: e.Err(), close: e.Close, server: e.Server}, nil
}

// freePorts asks the kernel for n free loopback ports. The ports are released before
// use, so another process could take one in between; on a test machine this is rare
// and fails loudly (bind error) rather than silently.
func freePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
