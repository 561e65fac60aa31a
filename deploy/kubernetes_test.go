package deploy

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifests decodes every object of deploy/kubernetes strictly into the
// Kubernetes API's own types (k8s.io/api): an unknown or misspelt field,
// or a value of the wrong type, fails as the API server would refuse it.
type manifests struct {
	namespaces  []*corev1.Namespace
	configMaps  map[string]*corev1.ConfigMap
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	daemonSets  []*appsv1.DaemonSet
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				o := &corev1.Namespace{}
				m.namespaces, obj = append(m.namespaces, o), o
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, o), o
			case "apps/v1 DaemonSet":
				o := &appsv1.DaemonSet{}
				m.daemonSets, obj = append(m.daemonSets, o), o
			default:
				t.Fatalf("%s document %d: %q %q is not a kind this test knows", file, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", file, i, tm.Kind, err)
			}
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				m.configMaps[cm.Name] = cm
			}
		}
	}
	return m
}

// checkPod holds what every pod of tripcap must: labels its controller
// selects, volumes for every mount, configMaps that exist, memory limits,
// a seccomp profile, no service account token, no privilege escalation.
func checkPod(t *testing.T, m *manifests, what string, sel *metav1.LabelSelector, tpl corev1.PodTemplateSpec) {
	t.Helper()
	for k, v := range sel.MatchLabels {
		if tpl.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod's labels %v", what, k, v, tpl.Labels)
		}
	}
	spec := tpl.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token it has no use for", what)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: no RuntimeDefault seccomp profile", what)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil && m.configMaps[v.ConfigMap.Name] == nil {
			t.Errorf("%s: volume %s names ConfigMap %s, not in the manifests", what, v.Name, v.ConfigMap.Name)
		}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", what, len(spec.Containers))
	}
	c := spec.Containers[0]
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Errorf("%s: mount %s has no volume", what, vm.Name)
			continue
		}
		if vm.SubPath != "" && v.ConfigMap != nil {
			if _, ok := m.configMaps[v.ConfigMap.Name].Data[vm.SubPath]; !ok {
				t.Errorf("%s: mount %s takes %s, not a key of ConfigMap %s", what, vm.Name, vm.SubPath, v.ConfigMap.Name)
			}
		}
	}
	// Every --config the container is given is a file it mounts.
	for i, a := range c.Args {
		if a != "--config" || i+1 >= len(c.Args) {
			continue
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return c.Args[i+1] == vm.MountPath || strings.HasPrefix(c.Args[i+1], vm.MountPath+"/")
		}) {
			t.Errorf("%s: --config %s is not mounted", what, c.Args[i+1])
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit", what)
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Errorf("%s: no CPU request", what)
	}
	sc := c.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: security context %+v: want privileged false, no escalation, read-only root, every capability dropped", what, sc)
	}
}

// TestKubernetesManifests: the manifests are valid API objects, and hold
// the fleet's invariants: the agent DaemonSet on the host network with
// NET_RAW and NET_ADMIN and nothing more, not privileged, its state and
// captures on the node; the server a non-root Deployment on PostgreSQL
// whose credentials come from a Secret, behind a Service that selects it.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.daemonSets) != 1 || len(m.deployments) != 1 || len(m.services) != 1 || len(m.namespaces) != 1 {
		t.Fatalf("%d DaemonSets, %d Deployments, %d Services, %d Namespaces; want one of each", len(m.daemonSets), len(m.deployments), len(m.services), len(m.namespaces))
	}
	ns := m.namespaces[0].Name
	for _, o := range []metav1.Object{m.daemonSets[0], m.deployments[0], m.services[0]} {
		if o.GetNamespace() != ns {
			t.Errorf("%s in namespace %q, not %q", o.GetName(), o.GetNamespace(), ns)
		}
	}
	for _, cm := range m.configMaps {
		if cm.Namespace != ns {
			t.Errorf("ConfigMap %s in namespace %q, not %q", cm.Name, cm.Namespace, ns)
		}
	}

	ds := m.daemonSets[0]
	checkPod(t, m, "agent", ds.Spec.Selector, ds.Spec.Template)
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("agent: hostNetwork %v, dnsPolicy %q; want the host's network and cluster DNS", pod.HostNetwork, pod.DNSPolicy)
	}
	if pod.HostPID || pod.HostIPC {
		t.Error("agent: shares the host's PID or IPC namespace; capture needs neither")
	}
	agent := pod.Containers[0]
	if got := agent.SecurityContext.Capabilities.Add; !slices.Equal(got, []corev1.Capability{"NET_RAW", "NET_ADMIN"}) {
		t.Errorf("agent: capabilities added %v, want exactly NET_RAW and NET_ADMIN", got)
	}
	if !slices.Equal(agent.Args[:1], []string{"agent"}) {
		t.Errorf("agent: args %v", agent.Args)
	}
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, vm := range agent.VolumeMounts {
		if p, ok := hostPaths[vm.Name]; ok && p != vm.MountPath {
			t.Errorf("agent: host %s mounted at %s: the paths the agent reports must be the host's", p, vm.MountPath)
		}
	}
	if !slices.Contains(slices.Collect(maps.Values(hostPaths)), "/var/lib/tripcap") || !slices.Contains(slices.Collect(maps.Values(hostPaths)), "/var/captures") {
		t.Errorf("agent: state and capture directories not on the node: %v", hostPaths)
	}

	dep := m.deployments[0]
	checkPod(t, m, "server", dep.Spec.Selector, dep.Spec.Template)
	spec := dep.Spec.Template.Spec
	server := spec.Containers[0]
	if spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot || spec.HostNetwork {
		t.Error("server: must run as non-root, off the host network")
	}
	if server.SecurityContext.Capabilities.Add != nil {
		t.Errorf("server: adds capabilities %v; it needs none", server.SecurityContext.Capabilities.Add)
	}
	if !slices.Equal(server.Args[:1], []string{"server"}) {
		t.Errorf("server: args %v", server.Args)
	}
	// The database is PostgreSQL (several replicas share it), its DSN in a
	// Secret: not in the ConfigMap, not on the command line.
	var cfg string
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			cfg += m.configMaps[v.ConfigMap.Name].Data["server.yaml"]
		}
	}
	if strings.Contains(cfg, "db:") || slices.ContainsFunc(server.Args, func(a string) bool { return strings.Contains(a, "postgres") }) {
		t.Error("server: the database DSN is in the ConfigMap or the arguments; it belongs in a Secret")
	}
	if !strings.Contains(cfg, "public-url:") {
		t.Error("server: no public-url: links in notifications would name the pod")
	}
	secrets := 0
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			secrets++
		}
	}
	if secrets == 0 {
		t.Error("server: no Secret mounted for the database DSN")
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Error("server: on PostgreSQL it runs replicas; fewer than 2")
	}
	svc := m.services[0]
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selects %s=%s, not the server's pods", k, v)
		}
	}
	ports := map[string]bool{}
	for _, p := range server.Ports {
		ports[p.Name] = true
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.StrVal != "" && !ports[p.TargetPort.StrVal] {
			t.Errorf("Service port %s targets %q, not a port of the server", p.Name, p.TargetPort.StrVal)
		}
	}
}

// TestKubernetesManifestsStrict: the strict decoding does refuse what the
// API server would, so the test above means something.
func TestKubernetesManifestsStrict(t *testing.T) {
	for _, bad := range []string{
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostNetwrok: true\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      hostNetwork: \"yes\"\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          resources:\n            limits:\n              memory: lots\n",
	} {
		if err := yaml.UnmarshalStrict([]byte(bad), &appsv1.DaemonSet{}); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}
