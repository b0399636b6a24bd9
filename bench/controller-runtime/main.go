// Command crbench is the controller-runtime peer in nlb-guard's benchmark (bench/run.ts), written
// the way a controller-runtime webhook is usually written (decode into typed objects, change a copy,
// PatchResponseFromRaw) and served by controller-runtime's own webhook server, so its metrics and
// certificate watcher run too. It does what nlb-guard does on the bench's two CREATE bodies:
//   - Services: rule S2 (DESIGN.md §4: a LoadBalancer Service with UDP ports and no load balancer
//     type gets service.beta.kubernetes.io/aws-load-balancer-type: nlb);
//   - Pods: rule P1 (DESIGN.md §5): the Services of the pod's namespace from a client-go informer's
//     lister (the same fake apiserver nlb-guard's cache reads, --apiserver), each selector matched
//     against the pod's labels, and for an AWS-built UDP LoadBalancer with IP targets a native
//     sidecar (init container, restartPolicy: Always) answering TCP on each UDP target port the pod
//     does not serve on TCP, plus the nlb-guard.io/healthcheck-ports annotation and a warning.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

const lbTypeKey = "service.beta.kubernetes.io/aws-load-balancer-type"

type udpNeedsNLB struct {
	decoder admission.Decoder
}

func (h *udpNeedsNLB) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != "" || req.Kind.Kind != "Service" {
		return admission.Allowed("")
	}
	svc := &corev1.Service{}
	if err := h.decoder.Decode(req, svc); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.LoadBalancerClass != nil || !hasUDP(svc) {
		return admission.Allowed("")
	}
	if _, set := svc.Annotations[lbTypeKey]; set {
		return admission.Allowed("")
	}
	// S2 adds the key on CREATE, and on an UPDATE only when the Service becomes a LoadBalancer.
	if req.Operation == "UPDATE" && len(req.OldObject.Raw) > 0 {
		old := &corev1.Service{}
		if err := h.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if old.Spec.Type == corev1.ServiceTypeLoadBalancer {
			return admission.Allowed("")
		}
	}
	if svc.Annotations == nil {
		svc.Annotations = map[string]string{}
	}
	svc.Annotations[lbTypeKey] = "nlb"
	patched, err := json.Marshal(svc)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, patched).
		WithWarnings("added " + lbTypeKey + ": nlb: a Classic ELB cannot carry UDP")
}

func hasUDP(svc *corev1.Service) bool {
	for _, port := range svc.Spec.Ports {
		if port.Protocol == corev1.ProtocolUDP {
			return true
		}
	}
	return false
}

// The keys and values nlb-guard's Pod rule reads and writes (webhook/rules/annotations.ts, pod.ts).
const (
	ignoreKey          = "nlb-guard.io/ignore"
	injectKey          = "nlb-guard.io/inject"
	healthcheckPorts   = "nlb-guard.io/healthcheck-ports"
	targetTypeKey      = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
	healthcheckPortKey = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"
	healthcheckProto   = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol"
	lbcClass           = "service.k8s.aws/nlb"
	eksAutoClass       = "eks.amazonaws.com/nlb"
	sidecarName        = "nlb-guard-healthcheck"
	sidecarImage       = "ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0"
)

type podSidecar struct {
	decoder  admission.Decoder
	services corelisters.ServiceLister
}

func (h *podSidecar) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != "CREATE" {
		return admission.Allowed("")
	}
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if pod.Annotations[injectKey] == "false" || (pod.Spec.HostNetwork && pod.Annotations[injectKey] != "true") {
		return admission.Allowed("")
	}
	for _, c := range slices.Concat(pod.Spec.Containers, pod.Spec.InitContainers) {
		if c.Name == sidecarName {
			return admission.Allowed("")
		}
	}
	namespace := req.Namespace
	if namespace == "" {
		namespace = pod.Namespace
	}
	services, err := h.services.Services(namespace).List(labels.Everything())
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	tcp, udpByName := podPorts(pod)
	podLabels := labels.Set(pod.Labels)
	wanted := map[int32][]string{}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || !healthCheckedOnPods(svc) {
			continue
		}
		for _, port := range svc.Spec.Ports {
			if port.Protocol != corev1.ProtocolUDP {
				continue
			}
			target, ok := targetPort(port, udpByName)
			if !ok || tcp[target] {
				continue
			}
			wanted[target] = append(wanted[target], svc.Namespace+"/"+svc.Name)
		}
	}
	if len(wanted) == 0 {
		return admission.Allowed("")
	}
	ports := make([]int32, 0, len(wanted))
	for port := range wanted {
		ports = append(ports, port)
	}
	slices.Sort(ports)
	patched := pod.DeepCopy()
	patched.Spec.InitContainers = append(patched.Spec.InitContainers, sidecarContainer(ports))
	if patched.Annotations == nil {
		patched.Annotations = map[string]string{}
	}
	list := make([]string, len(ports))
	for i, port := range ports {
		list[i] = strconv.Itoa(int(port))
	}
	patched.Annotations[healthcheckPorts] = strings.Join(list, ",")
	raw, err := json.Marshal(patched)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw).WithWarnings(fmt.Sprintf(
		"added native sidecar %s answering TCP on ports %s for Services %v: NLB health checks cannot be UDP", sidecarName, patched.Annotations[healthcheckPorts], wanted))
}

// healthCheckedOnPods: a LoadBalancer built by an AWS controller with IP targets, whose NLB health
// check reaches the pod's own UDP ports (nlb-guard's injection: auto, webhook/rules/injection.ts).
func healthCheckedOnPods(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations[ignoreKey] == "true" {
		return false
	}
	class := ""
	if svc.Spec.LoadBalancerClass != nil {
		class = *svc.Spec.LoadBalancerClass
	}
	if class != "" && class != lbcClass && class != eksAutoClass {
		return false
	}
	targetType := svc.Annotations[targetTypeKey]
	ipTargets := targetType == "ip" || svc.Annotations[lbTypeKey] == "nlb-ip" || (class == eksAutoClass && targetType != "instance")
	hc := svc.Annotations[healthcheckPortKey]
	// The tcp-mode sidecar answers a TCP check only (an HTTP or HTTPS one would never pass).
	protocol := strings.ToUpper(svc.Annotations[healthcheckProto])
	return ipTargets && (hc == "" || hc == "traffic-port") && (protocol == "" || protocol == "TCP")
}

func podPorts(pod *corev1.Pod) (map[int32]bool, map[string]int32) {
	tcp := map[int32]bool{}
	udpByName := map[string]int32{}
	for _, c := range slices.Concat(pod.Spec.Containers, pod.Spec.InitContainers) {
		for _, p := range c.Ports {
			switch p.Protocol {
			case corev1.ProtocolTCP, "":
				tcp[p.ContainerPort] = true
			case corev1.ProtocolUDP:
				if _, seen := udpByName[p.Name]; p.Name != "" && !seen {
					udpByName[p.Name] = p.ContainerPort
				}
			}
		}
	}
	return tcp, udpByName
}

func targetPort(port corev1.ServicePort, udpByName map[string]int32) (int32, bool) {
	switch {
	case port.TargetPort.Type == intstr.Int && port.TargetPort.IntVal == 0:
		return port.Port, true
	case port.TargetPort.Type == intstr.Int:
		return port.TargetPort.IntVal, true
	default:
		p, ok := udpByName[port.TargetPort.StrVal]
		return p, ok
	}
}

func sidecarContainer(ports []int32) corev1.Container {
	always := corev1.ContainerRestartPolicyAlways
	no, yes := false, true
	user := int64(65532)
	args := []string{}
	containerPorts := []corev1.ContainerPort{}
	for _, p := range ports {
		args = append(args, "--port", strconv.Itoa(int(p)))
		containerPorts = append(containerPorts, corev1.ContainerPort{Name: fmt.Sprintf("hc-%d", p), ContainerPort: p, Protocol: corev1.ProtocolTCP})
	}
	return corev1.Container{
		Name:          sidecarName,
		Image:         sidecarImage,
		Args:          append(args, "--mode", "tcp", "--interval-ms", "1000"),
		RestartPolicy: &always,
		Env:           []corev1.EnvVar{{Name: "GOMAXPROCS", Value: "1"}, {Name: "GOGC", Value: "50"}, {Name: "GOMEMLIMIT", Value: "6MiB"}},
		Ports:         containerPorts,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, Privileged: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes, RunAsUser: &user, RunAsGroup: &user,
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// byKind routes one /mutate, as nlb-guard does, to the rule for the review's kind.
type byKind map[string]admission.Handler

func (h byKind) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Kind.Group != "" {
		return admission.Allowed("")
	}
	if rule, ok := h[req.Kind.Kind]; ok {
		return rule.Handle(ctx, req)
	}
	return admission.Allowed("")
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 9443, "TLS port")
	certDir := flag.String("cert-dir", "", "folder holding tls.crt and tls.key")
	apiserver := flag.String("apiserver", "", "URL of the (fake) apiserver whose Services the Pod rule reads")
	flag.Parse()

	// controller-runtime logs nothing per admission at its default verbosity; without a logger it
	// would print a warning with a stack trace after 30 s.
	ctrllog.SetLogger(logr.Discard())

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	server := webhook.NewServer(webhook.Options{
		Host:    *host,
		Port:    *port,
		CertDir: *certDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			// What kubebuilder's scaffold does (disable HTTP/2), and nlb-guard's TLS floor.
			c.NextProtos = []string{"http/1.1"}
			c.MinVersion = tls.VersionTLS12
		}},
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// The informer a controller-runtime webhook reads through: client-go's shared informer and
	// lister (a manager's cache is the same informer underneath). Listed before serving, as a
	// manager's cache sync is.
	// The bench's fake apiserver answers a list and a plain watch, not a watch-list stream.
	_ = os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	factory := informers.NewSharedInformerFactory(kubernetes.NewForConfigOrDie(&rest.Config{Host: *apiserver}), 0)
	services := factory.Core().V1().Services()
	lister := services.Lister()
	services.Informer()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	decoder := admission.NewDecoder(scheme)
	server.Register("/mutate", &webhook.Admission{Handler: byKind{
		"Service": &udpNeedsNLB{decoder: decoder},
		"Pod":     &podSidecar{decoder: decoder, services: lister},
	}})
	if err := server.Start(ctx); err != nil {
		panic(err)
	}
}
