// Command crbench is the controller-runtime peer in nlb-guard's benchmark (bench/run.ts): rule S2
// alone (DESIGN.md §4: a LoadBalancer Service with UDP ports and no load balancer type gets
// service.beta.kubernetes.io/aws-load-balancer-type: nlb), written the way a controller-runtime
// webhook is usually written (decode into typed objects, change a copy, PatchResponseFromRaw) and
// served by controller-runtime's own webhook server, so its metrics and certificate watcher run too.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 9443, "TLS port")
	certDir := flag.String("cert-dir", "", "folder holding tls.crt and tls.key")
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
	server.Register("/mutate", &webhook.Admission{Handler: &udpNeedsNLB{decoder: admission.NewDecoder(scheme)}})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := server.Start(ctx); err != nil {
		panic(err)
	}
}
