package main

// The fakelet plays the kubelet's part for pod status, and nothing else: it runs no
// containers. It marks pods Running and Ready, reports for every container the imageID a
// kubelet would report (repo@sha256:...), runs pods of Jobs to completion, and obeys the
// test annotations below so that failures can be staged.
//
// Pods are left unscheduled (spec.nodeName empty): the API server deletes unscheduled
// pods at once, so rollouts and namespace deletion never wait on a kubelet's
// confirmation. One Node, testcp-node, exists and is Ready so that DaemonSets have
// somewhere to run.
//
// Annotations read from the pod (set them on a workload's pod template):
//
//	testcp.patchline.dev/never-ready: "true"
//	    the pod runs but never becomes Ready (a failing readiness probe)
//	testcp.patchline.dev/never-ready-images: "<substr>,<substr>"
//	    containers whose image contains one of these substrings (for example a digest)
//	    never become Ready; the others do. Used to stage a bad image that a rollback
//	    must undo, since the annotation survives the image change.
//	testcp.patchline.dev/exit-code: "<n>"
//	    for run-to-completion pods (restartPolicy Never or OnFailure): the exit code;
//	    0 (the default) ends in Succeeded, anything else in Failed
//	testcp.patchline.dev/run-for: "<duration>"
//	    for run-to-completion pods: how long they stay Running first (default 0s)
//	testcp.patchline.dev/termination-message: "<text>"
//	    for run-to-completion pods: the terminated containers' termination message (a
//	    build writing the pushed digest to /dev/termination-log, say)
//
// Image IDs: a digest-pinned image reports its own digest. A tag on a loopback registry
// (127.0.0.1 or localhost) is resolved with a HEAD request, as a pull would; a missing
// tag leaves the container waiting in ErrImagePull. A tag on any other registry cannot
// be pulled here, so it reports a stable made-up digest: sha256 of the reference.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	annotationNeverReady       = "testcp.patchline.dev/never-ready"
	annotationNeverReadyImages = "testcp.patchline.dev/never-ready-images"
	annotationExitCode         = "testcp.patchline.dev/exit-code"
	annotationRunFor           = "testcp.patchline.dev/run-for"
	annotationTermination      = "testcp.patchline.dev/termination-message"
	fakeNodeName               = "testcp-node"
)

type fakelet struct {
	client   kubernetes.Interface
	pods     cache.Indexer
	queue    workqueue.TypedRateLimitingInterface[string]
	resolver *tagResolver
}

func startFakelet(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.UserAgent = "testcp-fakelet"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureNode(ctx, client); err != nil {
		return fmt.Errorf("node %s: %w", fakeNodeName, err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	f := &fakelet{
		client:   client,
		pods:     podInformer.GetIndexer(),
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		resolver: newTagResolver(),
	}
	enqueue := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			f.queue.Add(key)
		}
	}
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.HasSynced) {
		return fmt.Errorf("pod informer did not sync")
	}
	for i := 0; i < 4; i++ {
		go wait.UntilWithContext(ctx, f.worker, time.Second)
	}
	go func() { <-ctx.Done(); f.queue.ShutDown() }()
	return nil
}

func ensureNode(ctx context.Context, client kubernetes.Interface) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fakeNodeName, Labels: map[string]string{
		"kubernetes.io/hostname": fakeNodeName, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
	}}}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = client.CoreV1().Nodes().Get(ctx, fakeNodeName, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("10000"),
	}
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "fakelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: "v1.34.10-fakelet", OperatingSystem: "linux", Architecture: "amd64"},
	}
	updated, err := client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	// The API server taints every new node not-ready; the node-lifecycle controller
	// lifts the taint once the node reports Ready. That controller needs kubelet
	// heartbeats, so the fakelet lifts it instead.
	var taints []corev1.Taint
	for _, t := range updated.Spec.Taints {
		if t.Key != corev1.TaintNodeNotReady && t.Key != corev1.TaintNodeUnreachable {
			taints = append(taints, t)
		}
	}
	if len(taints) != len(updated.Spec.Taints) {
		updated.Spec.Taints = taints
		_, err = client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{})
	}
	return err
}

func (f *fakelet) worker(ctx context.Context) {
	for {
		key, shutdown := f.queue.Get()
		if shutdown {
			return
		}
		requeueAfter, err := f.sync(ctx, key)
		switch {
		case err != nil:
			if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				fmt.Fprintf(os.Stderr, "fakelet: %s: %v\n", key, err)
			}
			f.queue.AddRateLimited(key)
		case requeueAfter > 0:
			f.queue.Forget(key)
			f.queue.AddAfter(key, requeueAfter)
		default:
			f.queue.Forget(key)
		}
		f.queue.Done(key)
	}
}

func (f *fakelet) sync(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := f.pods.GetByKey(key)
	if err != nil || !exists {
		return 0, err
	}
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Only a bound pod waits for a kubelet to confirm deletion; confirm it.
		if pod.Spec.NodeName != "" {
			zero := int64(0)
			err := f.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			if apierrors.IsNotFound(err) {
				return 0, nil
			}
			return 0, err
		}
		return 0, nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0, nil
	}
	desired, requeueAfter := f.desiredStatus(ctx, pod)
	if statusEquivalent(&pod.Status, desired) {
		return requeueAfter, nil
	}
	updated := pod.DeepCopy()
	updated.Status = *desired
	_, err = f.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return requeueAfter, err
}

// desiredStatus is what a kubelet would report for the pod now. It keeps timestamps
// already reported so that repeated syncs converge instead of rewriting them.
func (f *fakelet) desiredStatus(ctx context.Context, pod *corev1.Pod) (*corev1.PodStatus, time.Duration) {
	now := metav1.Now()
	started := now
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	}
	runToCompletion := pod.Spec.RestartPolicy == corev1.RestartPolicyNever || pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure
	var requeueAfter time.Duration
	terminate := false
	exitCode := int32(0)
	if runToCompletion {
		runFor, _ := time.ParseDuration(pod.Annotations[annotationRunFor])
		if elapsed := now.Sub(started.Time); elapsed < runFor {
			requeueAfter = runFor - elapsed
		} else {
			terminate = true
			if code := pod.Annotations[annotationExitCode]; code != "" {
				var n int32
				if _, err := fmt.Sscanf(code, "%d", &n); err == nil {
					exitCode = n
				}
			}
		}
	}

	status := &corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP:     podIP(pod),
		PodIPs:    []corev1.PodIP{{IP: podIP(pod)}},
		StartTime: &started,
		QOSClass:  pod.Status.QOSClass,
	}
	allReady := true
	for _, c := range pod.Spec.Containers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image}
		imageID, pullErr := f.resolver.imageID(ctx, c.Image)
		switch {
		case pullErr != nil:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: pullErr.Error()}
			allReady = false
			terminate = false
			requeueAfter = 5 * time.Second
		case terminate:
			cs.ImageID = imageID
			reason := "Completed"
			if exitCode != 0 {
				reason = "Error"
			}
			cs.State.Terminated = &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: reason, StartedAt: started, FinishedAt: now,
				Message: pod.Annotations[annotationTermination],
			}
		default:
			cs.ImageID = imageID
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
			ready := !neverReady(pod, c.Image)
			cs.Ready = ready
			allReady = allReady && ready
		}
		t := cs.State.Running != nil
		cs.Started = &t
		status.ContainerStatuses = append(status.ContainerStatuses, cs)
	}
	if terminate {
		status.Phase = corev1.PodSucceeded
		if exitCode != 0 {
			status.Phase = corev1.PodFailed
		}
		allReady = false
	}
	podReady := allReady
	for _, gate := range pod.Spec.ReadinessGates {
		if !conditionTrue(pod.Status.Conditions, gate.ConditionType) {
			podReady = false
		}
	}
	status.Conditions = []corev1.PodCondition{
		condition(pod, corev1.PodScheduled, true, now),
		condition(pod, corev1.PodInitialized, true, now),
		condition(pod, corev1.ContainersReady, allReady, now),
		condition(pod, corev1.PodReady, podReady, now),
	}
	// Readiness-gate conditions belong to whoever sets them; keep them.
	for _, c := range pod.Status.Conditions {
		switch c.Type {
		case corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
		default:
			status.Conditions = append(status.Conditions, c)
		}
	}
	return status, requeueAfter
}

func neverReady(pod *corev1.Pod, image string) bool {
	if pod.Annotations[annotationNeverReady] == "true" {
		return true
	}
	for _, s := range strings.Split(pod.Annotations[annotationNeverReadyImages], ",") {
		if s = strings.TrimSpace(s); s != "" && strings.Contains(image, s) {
			return true
		}
	}
	return false
}

func condition(pod *corev1.Pod, t corev1.PodConditionType, ok bool, now metav1.Time) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	c := corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now}
	for _, old := range pod.Status.Conditions {
		if old.Type == t && old.Status == status {
			c.LastTransitionTime = old.LastTransitionTime
		}
	}
	return c
}

func conditionTrue(conds []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podIP derives a stable address from the pod's UID, so each pod has its own.
func podIP(pod *corev1.Pod) string {
	sum := sha256.Sum256([]byte(pod.UID))
	return fmt.Sprintf("10.244.%d.%d", sum[0], 1+sum[1]%254)
}

// statusEquivalent reports whether writing desired would change anything a reader
// cares about; timestamps of unchanged conditions are kept by desiredStatus.
func statusEquivalent(current, desired *corev1.PodStatus) bool {
	if current.Phase != desired.Phase || current.PodIP != desired.PodIP || len(current.ContainerStatuses) != len(desired.ContainerStatuses) {
		return false
	}
	for i := range desired.ContainerStatuses {
		a, b := current.ContainerStatuses[i], desired.ContainerStatuses[i]
		if a.Name != b.Name || a.Image != b.Image || a.ImageID != b.ImageID || a.Ready != b.Ready ||
			(a.State.Running == nil) != (b.State.Running == nil) ||
			(a.State.Waiting == nil) != (b.State.Waiting == nil) ||
			(a.State.Terminated == nil) != (b.State.Terminated == nil) {
			return false
		}
	}
	for _, d := range desired.Conditions {
		found := false
		for _, c := range current.Conditions {
			if c.Type == d.Type && c.Status == d.Status {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// tagResolver turns an image reference into the imageID a kubelet would report.
type tagResolver struct{ http *http.Client }

func newTagResolver() *tagResolver {
	return &tagResolver{http: &http.Client{Timeout: 5 * time.Second}}
}

const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

func (r *tagResolver) imageID(ctx context.Context, image string) (string, error) {
	registry, repo, tag, digest := splitImage(image)
	name := registry + "/" + repo
	if digest != "" {
		return name + "@" + digest, nil
	}
	if !isLoopback(registry) {
		sum := sha256.Sum256([]byte(name + ":" + tag))
		return name + "@sha256:" + hex.EncodeToString(sum[:]), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+registry+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := r.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("pull %s: %v", image, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
			return name + "@" + d, nil
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// A registry that wants credentials: the fakelet has none. Report a stable
		// digest rather than fail, as for remote registries.
		sum := sha256.Sum256([]byte(name + ":" + tag))
		return name + "@sha256:" + hex.EncodeToString(sum[:]), nil
	}
	return "", fmt.Errorf("pull %s: registry answered %s", image, resp.Status)
}

func isLoopback(registry string) bool {
	host := registry
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return host == "127.0.0.1" || host == "localhost"
}

// splitImage normalises a reference the way Docker does: a first path component
// without '.', ':' or "localhost" is not a registry, the default registry is docker.io,
// and official images live under library/.
func splitImage(image string) (registry, repo, tag, digest string) {
	name := image
	if i := strings.Index(name, "@"); i >= 0 {
		name, digest = name[:i], name[i+1:]
	}
	if i := strings.LastIndex(name, ":"); i >= 0 && !strings.Contains(name[i:], "/") {
		name, tag = name[:i], name[i+1:]
	}
	if tag == "" {
		tag = "latest"
	}
	registry = "docker.io"
	if i := strings.Index(name, "/"); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" {
			registry, name = first, name[i+1:]
		}
	}
	if registry == "docker.io" && !strings.Contains(name, "/") {
		name = "library/" + name
	}
	return registry, name, tag, digest
}
