// Command istio-route-oracle asks Istio's own control-plane code (pilot) which HTTP routes a sidecar
// would receive, so tests of canary.istio's pure-Python routing model can compare every generated
// case with the real thing instead of with our reading of the Istio docs.
//
// It reads one JSON batch on stdin and writes one JSON answer on stdout:
//
//	in:  {"cases": [{"namespace": "prod", "objects": [<Service v1 | VirtualService | DestinationRule>...],
//	                 "host": "reviews.prod.svc.cluster.local", "port": 9080}, ...]}
//	out: {"results": [{"routes": [...], "default_route": 0, "domains": [...], "error": null}, ...]}
//
// Each case gets a fresh in-memory pilot (core.NewConfigGenTest, the harness Istio's own unit tests
// use): no API server, no Envoy, just the function that turns config into Envoy RouteConfigurations.
// One process answers a whole batch, so a test suite pays Go start-up once, not per case.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	istioroute "istio.io/istio/pilot/pkg/networking/core/route"
	kubereg "istio.io/istio/pilot/pkg/serviceregistry/kube"
	"istio.io/istio/pilot/pkg/serviceregistry/provider"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/kube/krt"
	istiolog "istio.io/istio/pkg/log"
	"istio.io/istio/pkg/wellknown"
)

const domainSuffix = "cluster.local"

// ---- input / output shapes ----

type batchIn struct {
	Cases []caseIn `json:"cases"`
}

type caseIn struct {
	Namespace string            `json:"namespace"`
	Objects   []json.RawMessage `json:"objects"`
	Host      string            `json:"host"`
	Port      int               `json:"port"`
}

type batchOut struct {
	Results []caseOut `json:"results"`
}

type caseOut struct {
	Routes       []routeOut `json:"routes"`
	DefaultRoute *int       `json:"default_route"` // index of the first catch-all route, or null
	Domains      []string   `json:"domains"`
	Error        *string    `json:"error"`
}

type routeOut struct {
	Name     string          `json:"name"`
	Match    json.RawMessage `json:"match"` // the Envoy RouteMatch, as protojson
	CatchAll bool            `json:"catch_all"`
	Action   string          `json:"action"` // route | redirect | direct_response | other
	Clusters []clusterOut    `json:"clusters"`
	Mirrors  []mirrorOut     `json:"mirrors"`
	Fault    bool            `json:"fault"`
}

type clusterOut struct {
	Cluster string `json:"cluster"`
	Subset  string `json:"subset"`
	Host    string `json:"host"`
	Weight  uint32 `json:"weight"`
}

type mirrorOut struct {
	Cluster string  `json:"cluster"`
	Subset  string  `json:"subset"`
	Host    string  `json:"host"`
	Percent float64 `json:"percent"`
}

// ---- test.Failer: NewConfigGenTest wants a *testing.T-like value ----

// failer satisfies istio.io/istio/pkg/test.Failer outside `go test`. The harness only calls Fatal
// when its own setup breaks (not on bad input, which we validate first), so that ends the process.
type failer struct {
	cleanups []func()
}

func (f *failer) Fail()    { f.Fatal("failed") }
func (f *failer) FailNow() { f.Fatal("failed") }
func (f *failer) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"istio-route-oracle: fatal:"}, args...)...)
	os.Exit(2)
}
func (f *failer) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }
func (f *failer) Log(args ...any)                   { fmt.Fprintln(os.Stderr, args...) }
func (f *failer) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (f *failer) Helper()                           {}
func (f *failer) Skip(args ...any)                  { f.Fatal(append([]any{"skip:"}, args...)...) }
func (f *failer) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }

func (f *failer) TempDir() string {
	dir, err := os.MkdirTemp("", "istio-route-oracle-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// done runs cleanups last-registered first, as testing.T does; this closes the harness's stop
// channel so its controllers' goroutines end before the next case starts.
func (f *failer) done() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// ---- input conversion ----

// objectsToConfig splits a case's objects into registry Services and Istio configs. Services go
// through Istio's own Kubernetes conversion (kubereg.ConvertService), so port protocols (name or
// appProtocol prefixes) and hostnames are derived exactly as istiod derives them; Istio objects go
// through crd.ParseInputs, which also runs Istio's validation (what the admission webhook rejects
// comes back as a case error).
func objectsToConfig(c caseIn, defaultCreated time.Time) ([]*model.Service, []config.Config, error) {
	var services []*model.Service
	var istioDocs []string
	for i, raw := range c.Objects {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, nil, fmt.Errorf("object %d: %v", i, err)
		}
		if head.Kind == "Service" && head.APIVersion == "v1" {
			var svc corev1.Service
			if err := json.Unmarshal(raw, &svc); err != nil {
				return nil, nil, fmt.Errorf("object %d (Service): %v", i, err)
			}
			if svc.Namespace == "" {
				svc.Namespace = c.Namespace // as `kubectl apply -n <namespace>` would
			}
			services = append(services, kubereg.ConvertService(svc, nil, domainSuffix,
				cluster.ID(provider.Mock), domainSuffix))
			continue
		}
		istioDocs = append(istioDocs, string(raw)) // JSON is YAML: one document each
	}
	configs, unknown, err := crd.ParseInputs(strings.Join(istioDocs, "\n---\n"))
	if err != nil {
		return nil, nil, err
	}
	if len(unknown) > 0 {
		return nil, nil, fmt.Errorf("unsupported kind %s %s/%s", unknown[0].Kind, unknown[0].Namespace, unknown[0].Name)
	}
	for i := range configs {
		if configs[i].Namespace == "" {
			configs[i].Namespace = c.Namespace
		}
		// istiod's CRD client stamps the cluster's domain suffix on every config; without it a short
		// host such as "reviews" resolves to "reviews.prod" instead of reviews.prod.svc.cluster.local.
		configs[i].Domain = domainSuffix
		// CreationTimestamp (copied from metadata by ParseInputs) decides which VirtualService wins
		// a host. Objects without one all get the batch's start time, like Istio's own test harness
		// does: they tie (then the name decides) and are newer than any explicit past timestamp.
		if configs[i].CreationTimestamp.IsZero() {
			configs[i].CreationTimestamp = defaultCreated
		}
	}
	return services, configs, nil
}

// ---- output conversion ----

// splitCluster reads Istio's outbound cluster name "outbound|9080|v1|reviews.prod.svc.cluster.local".
func splitCluster(name string) (subset, host string) {
	parts := strings.Split(name, "|")
	if len(parts) == 4 {
		return parts[2], parts[3]
	}
	return "", ""
}

func percentOf(f *typev3.FractionalPercent) float64 {
	if f == nil {
		return 100
	}
	denominator := map[typev3.FractionalPercent_DenominatorType]float64{
		typev3.FractionalPercent_HUNDRED:      100,
		typev3.FractionalPercent_TEN_THOUSAND: 10_000,
		typev3.FractionalPercent_MILLION:      1_000_000,
	}[f.GetDenominator()]
	return float64(f.GetNumerator()) * 100 / denominator
}

func describeRoute(r *route.Route) (routeOut, error) {
	match, err := protojson.Marshal(r.GetMatch())
	if err != nil {
		return routeOut{}, err
	}
	out := routeOut{
		Name:  r.GetName(),
		Match: match,
		// Istio's own definition, the one it uses to drop routes after a catch-all.
		CatchAll: istioroute.IsCatchAllRoute(r),
		Clusters: []clusterOut{},
		Mirrors:  []mirrorOut{},
	}
	_, out.Fault = r.GetTypedPerFilterConfig()[wellknown.Fault]
	switch {
	case r.GetRedirect() != nil:
		out.Action = "redirect"
	case r.GetDirectResponse() != nil:
		out.Action = "direct_response"
	case r.GetRoute() != nil:
		out.Action = "route"
		action := r.GetRoute()
		if name := action.GetCluster(); name != "" { // a single destination: all traffic
			subset, host := splitCluster(name)
			out.Clusters = append(out.Clusters, clusterOut{name, subset, host, 100})
		}
		for _, wc := range action.GetWeightedClusters().GetClusters() {
			subset, host := splitCluster(wc.GetName())
			out.Clusters = append(out.Clusters, clusterOut{wc.GetName(), subset, host, wc.GetWeight().GetValue()})
		}
		for _, m := range action.GetRequestMirrorPolicies() {
			subset, host := splitCluster(m.GetCluster())
			out.Mirrors = append(out.Mirrors, mirrorOut{m.GetCluster(), subset, host,
				percentOf(m.GetRuntimeFraction().GetDefaultValue())})
		}
	default:
		out.Action = "other"
	}
	return out, nil
}

// ---- one case ----

func runCase(c caseIn, defaultCreated time.Time) (result caseOut) {
	result = caseOut{Routes: []routeOut{}, Domains: []string{}}
	fail := func(format string, args ...any) caseOut {
		msg := fmt.Sprintf(format, args...)
		result.Routes, result.DefaultRoute, result.Domains, result.Error = []routeOut{}, nil, []string{}, &msg
		return result
	}
	if c.Namespace == "" || c.Host == "" || c.Port == 0 {
		return fail("case needs namespace, host and port")
	}
	services, configs, err := objectsToConfig(c, defaultCreated)
	if err != nil {
		return fail("invalid objects: %v", err)
	}

	// NewConfigGenTest registers its controllers with krt's process-wide debug handler, which would
	// keep every case's whole pilot alive (~1 MB a case); a fresh handler per case lets them go.
	krt.GlobalDebugHandler = new(krt.DebugHandler)
	t := &failer{}
	defer t.done()
	// A panic inside pilot on odd input should cost one case, not the whole batch.
	defer func() {
		if p := recover(); p != nil {
			result = fail("istio panicked: %v", p)
		}
	}()
	cg := core.NewConfigGenTest(t, core.TestOptions{Services: services, Configs: configs})
	proxy := cg.SetupProxy(&model.Proxy{ConfigNamespace: c.Namespace})

	// Sidecar outbound HTTP route configs are named after the port ("9080").
	var vhostNames []string
	for _, rc := range cg.Routes(proxy) {
		if rc.GetName() != strconv.Itoa(c.Port) {
			continue
		}
		for _, vh := range rc.GetVirtualHosts() {
			vhostNames = append(vhostNames, vh.GetName())
			if !hasDomain(vh.GetDomains(), c.Host, c.Port) {
				continue
			}
			result.Domains = vh.GetDomains()
			for i, r := range vh.GetRoutes() {
				described, err := describeRoute(r)
				if err != nil {
					return fail("route %d: %v", i, err)
				}
				if described.CatchAll && result.DefaultRoute == nil {
					index := i
					result.DefaultRoute = &index
				}
				result.Routes = append(result.Routes, described)
			}
			return result
		}
		return fail("no virtual host for %s on route config %q (virtual hosts: %s)",
			c.Host, rc.GetName(), strings.Join(vhostNames, ", "))
	}
	return fail("no outbound route config %q for a sidecar in %s", strconv.Itoa(c.Port), c.Namespace)
}

func hasDomain(domains []string, host string, port int) bool {
	withPort := host + ":" + strconv.Itoa(port)
	for _, d := range domains {
		if d == host || d == withPort {
			return true
		}
	}
	return false
}

func main() {
	// Istio logs to stdout by default; stdout carries our JSON, so its logs go to stderr. They are off
	// unless ISTIO_ROUTE_ORACLE_LOG names a level (error, info, debug): the fake harness logs a
	// harmless "sync failed" for about every other case.
	logOpts := istiolog.DefaultOptions()
	logOpts.OutputPaths = []string{"stderr"}
	level := istiolog.NoneLevel
	if name := os.Getenv("ISTIO_ROUTE_ORACLE_LOG"); name != "" {
		level = istiolog.StringToLevel(name)
	}
	logOpts.SetDefaultOutputLevel(istiolog.OverrideScopeName, level)
	if err := istiolog.Configure(logOpts); err != nil {
		fmt.Fprintln(os.Stderr, "istio-route-oracle: configuring logs:", err)
		os.Exit(2)
	}

	var in batchIn
	if err := json.NewDecoder(bufio.NewReader(os.Stdin)).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "istio-route-oracle: reading the batch from stdin:", err)
		os.Exit(1)
	}
	started := time.Now().UTC().Truncate(time.Second) // Kubernetes timestamps have whole seconds
	out := batchOut{Results: make([]caseOut, 0, len(in.Cases))}
	for _, c := range in.Cases {
		out.Results = append(out.Results, runCase(c, started))
	}
	w := bufio.NewWriter(os.Stdout)
	if err := json.NewEncoder(w).Encode(out); err != nil || w.Flush() != nil {
		fmt.Fprintln(os.Stderr, "istio-route-oracle: writing the results:", err)
		os.Exit(1)
	}
}
