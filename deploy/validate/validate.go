// Package main is berth-validate: it decodes Kubernetes manifests strictly,
// so that a misspelt or misplaced field is an error rather than a field the
// API server would drop. Built-in kinds are decoded into their k8s.io/api
// types (and the ServiceMonitor into prometheus-operator's) with unknown
// fields refused; custom resources whose CustomResourceDefinition is given
// (KServe's) are pruned and validated against the CRD's openAPIV3Schema with
// the API server's own code (k8s.io/apiextensions-apiserver).
//
//	berth-validate [--crds DIR] FILE...
//
// A FILE may hold several YAML documents. Exit status 1 names every error.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// builtin maps apiVersion/kind to a new typed object of that kind.
var builtin = map[string]func() any{
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
}

// crdSchema is one served version of a CustomResourceDefinition.
type crdSchema struct {
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
}

// Validator knows the built-in kinds and the CRDs it was given.
type Validator struct {
	crds map[string]crdSchema // apiVersion/kind
}

// NewValidator reads every CustomResourceDefinition in the YAML files of dir
// ("" for none).
func NewValidator(dir string) (*Validator, error) {
	v := &Validator{crds: map[string]crdSchema{}}
	if dir == "" {
		return v, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, file := range files {
		docs, err := readDocuments(file)
		if err != nil {
			return nil, err
		}
		for _, doc := range docs {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(doc, &crd); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			if err := v.addCRD(&crd); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
		}
	}
	return v, nil
}

func (v *Validator) addCRD(crd *apiextensionsv1.CustomResourceDefinition) error {
	for _, version := range crd.Spec.Versions {
		if version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(
			version.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return err
		}
		structural, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return fmt.Errorf("%s %s: not a structural schema: %w", crd.Name, version.Name, err)
		}
		validator, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			return err
		}
		key := crd.Spec.Group + "/" + version.Name + "/" + crd.Spec.Names.Kind
		v.crds[key] = crdSchema{structural: structural, validator: validator}
	}
	return nil
}

// Document checks one manifest; a nil error means the API server would take
// it as written (as far as its schema tells).
func (v *Validator) Document(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	if head.APIVersion == "" || head.Kind == "" {
		return errors.New("no apiVersion or kind")
	}
	key := head.APIVersion + "/" + head.Kind
	if make, ok := builtin[key]; ok {
		return yaml.UnmarshalStrict(doc, make())
	}
	if schema, ok := v.crds[key]; ok {
		return schema.check(doc)
	}
	return fmt.Errorf("%s: no type or CRD schema to check it against", key)
}

func (s crdSchema) check(doc []byte) error {
	var object map[string]any
	if err := yaml.UnmarshalStrict(doc, &object); err != nil {
		return err
	}
	// The API server checks metadata as ObjectMeta, not by the CRD's schema.
	if metadata, ok := object["metadata"]; ok {
		raw, err := yaml.Marshal(metadata)
		if err != nil {
			return err
		}
		if err := yaml.UnmarshalStrict(raw, &metav1.ObjectMeta{}); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	var problems []string
	// Fields the schema does not know are what the API server would prune
	// (drop silently): refuse them here.
	pruned := structuralpruning.PruneWithOptions(object, s.structural, true,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range pruned {
		if path == "metadata" || strings.HasPrefix(path, "metadata.") {
			continue
		}
		problems = append(problems, "unknown field \""+path+"\"")
	}
	for _, err := range validation.ValidateCustomResource(field.NewPath(""), object, s.validator) {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// readDocuments splits a YAML stream into its non-empty documents.
func readDocuments(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func main() {
	args := os.Args[1:]
	crds := ""
	if len(args) >= 2 && args[0] == "--crds" {
		crds, args = args[1], args[2:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: berth-validate [--crds DIR] FILE...")
		os.Exit(2)
	}
	v, err := NewValidator(crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-validate:", err)
		os.Exit(2)
	}
	failed, checked := 0, 0
	for _, file := range args {
		docs, err := readDocuments(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed++
			continue
		}
		for i, doc := range docs {
			checked++
			if err := v.Document(doc); err != nil {
				fmt.Fprintf(os.Stderr, "%s: document %d: %v\n", file, i+1, err)
				failed++
			}
		}
	}
	fmt.Printf("berth-validate: %d manifests checked, %d invalid\n", checked, failed)
	if failed > 0 || checked == 0 {
		os.Exit(1)
	}
}
