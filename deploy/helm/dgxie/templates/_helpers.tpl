{{/* Names and labels shared by every object of the release. */}}
{{- define "dgxie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dgxie.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: pass (list $ "api"). */}}
{{- define "dgxie.selector" -}}
{{- $top := index . 0 -}}
app.kubernetes.io/name: {{ $top.Chart.Name }}
app.kubernetes.io/instance: {{ $top.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "dgxie.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dgxie.secretName" -}}
{{- default (printf "%s-secrets" (include "dgxie.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The environment every dgxie container gets: config file, key and database from the Secret. */}}
{{- define "dgxie.env" -}}
- name: DGXIE_CONFIG
  value: /etc/dgxie/dgxie.yaml
- name: DGXIE_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "dgxie.secretName" . }}
      key: secret-key
- name: DGXIE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "dgxie.secretName" . }}
      key: database-url
{{- end -}}

{{/* Probes on the instance's HTTP port: alive = /healthz, ready = /readyz (database reachable,
     schema at head); timings from .Values.probes. Pass (list $ PORT). */}}
{{- define "dgxie.probes" -}}
{{- $p := (index . 0).Values.probes -}}
{{- $port := index . 1 -}}
livenessProbe:
  httpGet: {path: /healthz, port: {{ $port }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: 5
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: /readyz, port: {{ $port }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: 5
  failureThreshold: {{ $p.readiness.failureThreshold }}
startupProbe:
  httpGet: {path: /healthz, port: {{ $port }}}
  periodSeconds: 5
  failureThreshold: {{ $p.startupFailureThreshold }}
{{- end -}}
