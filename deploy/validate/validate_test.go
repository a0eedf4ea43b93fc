package main

import (
	"os"
	"strings"
	"testing"
)

const service = `apiVersion: v1
kind: Service
metadata:
  name: berth
spec:
  selector:
    app: berth
  ports:
    - name: grpc
      port: 8001
      appProtocol: grpc
`

func TestBuiltinKindDecodesStrictly(t *testing.T) {
	v, err := NewValidator("")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Document([]byte(service)); err != nil {
		t.Fatalf("a valid Service was refused: %v", err)
	}
	misspelt := strings.Replace(service, "appProtocol", "appProtocl", 1)
	if err := v.Document([]byte(misspelt)); err == nil || !strings.Contains(err.Error(), `unknown field "appProtocl"`) {
		t.Fatalf("a misspelt field was not named: %v", err)
	}
	wrongType := strings.Replace(service, "port: 8001", `port: "8001"`, 1)
	if err := v.Document([]byte(wrongType)); err == nil {
		t.Fatal("a string port was accepted")
	}
	duplicate := service + "  type: ClusterIP\n  type: NodePort\n"
	if err := v.Document([]byte(duplicate)); err == nil {
		t.Fatal("a repeated key was accepted")
	}
}

func TestUnknownKindIsAnError(t *testing.T) {
	v, _ := NewValidator("")
	doc := "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
	if err := v.Document([]byte(doc)); err == nil || !strings.Contains(err.Error(), "no type or CRD schema") {
		t.Fatalf("an unknown kind passed unchecked: %v", err)
	}
}

// KServe's CRDs, when the test is given them (BERTH_KSERVE_CRDS, set by
// tests/integration/test_kserve_manifests.py from scripts/deploy_tools.sh).
func TestCustomResourceAgainstItsCRD(t *testing.T) {
	dir := os.Getenv("BERTH_KSERVE_CRDS")
	if dir == "" {
		t.Skip("BERTH_KSERVE_CRDS is not set")
	}
	v, err := NewValidator(dir)
	if err != nil {
		t.Fatal(err)
	}
	runtime := `apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: kserve-berth
spec:
  supportedModelFormats:
    - name: onnx
      autoSelect: true
  protocolVersions: [v2, grpc-v2]
  containers:
    - name: kserve-container
      image: berth:0.1.0
`
	if err := v.Document([]byte(runtime)); err != nil {
		t.Fatalf("a valid ClusterServingRuntime was refused: %v", err)
	}
	cases := map[string]string{
		"unknown field":     strings.Replace(runtime, "protocolVersions", "protocolVersion", 1),
		"wrong type":        strings.Replace(runtime, "autoSelect: true", "autoSelect: sometimes", 1),
		"no container name": strings.Replace(runtime, "- name: kserve-container\n      image", "- image", 1),
		"bad metadata":      strings.Replace(runtime, "  name: kserve-berth", "  nmae: kserve-berth", 1),
		"container typo":    strings.Replace(runtime, "image:", "imgae:", 1),
	}
	for name, doc := range cases {
		if err := v.Document([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
