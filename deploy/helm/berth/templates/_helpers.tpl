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

{{- define "berth.apiKeysSecret" -}}
{{- default (printf "%s-api-keys" (include "berth.fullname" .)) .Values.apiKeys.existingSecret }}
{{- end }}

{{/* The shutdown budget: preStop pause + Berth's grace must end before SIGKILL. */}}
{{- define "berth.checkGrace" -}}
{{- $needed := add (int .Values.lifecycle.preStopSleepSeconds) (div (add (int .Values.server.shutdownGraceMs) 999) 1000) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds + server.shutdownGraceMs/1000 (%d s): Kubernetes would SIGKILL Berth while it drains" (int .Values.terminationGracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- end }}
