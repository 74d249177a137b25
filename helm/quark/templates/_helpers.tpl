{{/* Name of the chart, overridable. */}}
{{- define "quark.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release already holds it. */}}
{{- define "quark.fullname" -}}
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

{{- define "quark.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "quark.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "quark.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quark.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "quark.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-installer" (include "quark.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "quark.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* config.json as written on the nodes: the values' config, with
     Tsor.Enabled also switched on by tsor.enabled. */}}
{{- define "quark.configJson" -}}
{{- $cfg := deepCopy .Values.config }}
{{- if .Values.tsor.enabled }}
{{- $tsor := default dict $cfg.Tsor }}
{{- $_ := set $tsor "Enabled" true }}
{{- $_ := set $cfg "Tsor" $tsor }}
{{- end }}
{{- toPrettyJson $cfg }}
{{- end }}

{{/* tsord's ServiceAccount (peerSource kube). */}}
{{- define "quark.tsordServiceAccountName" -}}
{{- if .Values.tsor.rbac.create }}
{{- printf "%s-tsord" (include "quark.fullname" .) }}
{{- else }}
{{- default "default" .Values.tsor.rbac.serviceAccountName }}
{{- end }}
{{- end }}
