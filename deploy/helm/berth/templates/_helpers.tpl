{{/* Names and labels shared by every template. */}}
{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "berth.postgresSecret" -}}
{{- default (printf "%s-registry" (include "berth.fullname" .)) .Values.registry.postgresql.existingSecret }}
{{- end }}

{{- define "berth.tlsSecret" -}}
{{- default (printf "%s-tls" (include "berth.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* "true" when clients must present certificates (mTLS), else empty. */}}
{{- define "berth.mtls" -}}
{{- if and .Values.tls.enabled .Values.tls.clientAuth }}true{{ end }}
{{- end }}

{{/* A probe's handler: an HTTP(S) GET from the kubelet, or, under mTLS, an
exec of curl in the container presenting the probe client certificate (the
kubelet's HTTPS probes present none, and Berth's mTLS handshake requires one
on every connection, the health routes' too). -k: the probe runs over
loopback inside the pod, where no one stands between it and the server. */}}
{{- define "berth.probe" -}}
{{- $v := .root.Values }}
{{- if include "berth.mtls" .root -}}
exec:
  command:
    - curl
    - -fsSk
    - -o
    - /dev/null
    - --max-time
    - {{ .timeout | default 2 | quote }}
    - --cert
    - /etc/berth/probe-tls/tls.crt
    - --key
    - /etc/berth/probe-tls/tls.key
    - https://127.0.0.1:{{ $v.server.httpPort }}{{ .path }}
{{- else -}}
httpGet:
  path: {{ .path }}
  port: http
  scheme: {{ ternary "HTTPS" "HTTP" $v.tls.enabled }}
{{- end }}
{{- end }}

{{/* Combinations that would render a pod that never gets ready, or a
scrape that is always refused. */}}
{{- define "berth.checkSecurity" -}}
{{- if and (include "berth.mtls" .) (not .Values.tls.probeClientSecret) }}
{{- fail "tls.clientAuth needs tls.probeClientSecret: under mTLS every connection must present a client certificate, and the kubelet's HTTPS probes present none (the chart then probes with curl in the pod, presenting that Secret's certificate)" }}
{{- end }}
{{- if and .Values.server.requireAuth (eq .Values.registry.type "none") }}
{{- fail "server.requireAuth needs a registry store (API keys live in it): set registry.type postgresql" }}
{{- end }}
{{- if and .Values.server.requireAuth .Values.serviceMonitor.enabled (not .Values.serviceMonitor.authorization.secret) }}
{{- fail "server.requireAuth with serviceMonitor.enabled needs serviceMonitor.authorization.secret (a Secret holding a key with the read scope): /metrics answers 401 without one" }}
{{- end }}
{{- if and (include "berth.mtls" .) .Values.serviceMonitor.enabled (not .Values.serviceMonitor.tlsConfig.clientCertSecret) }}
{{- fail "tls.clientAuth with serviceMonitor.enabled needs serviceMonitor.tlsConfig.clientCertSecret: Prometheus must present a client certificate" }}
{{- end }}
{{- end }}

{{/* The shutdown budget: preStop pause + Berth's grace must end before SIGKILL. */}}
{{- define "berth.checkGrace" -}}
{{- $needed := add (int .Values.lifecycle.preStopSleepSeconds) (div (add (int .Values.server.shutdownGraceMs) 999) 1000) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds + server.shutdownGraceMs/1000 (%d s): Kubernetes would SIGKILL Berth while it drains" (int .Values.terminationGracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- end }}
