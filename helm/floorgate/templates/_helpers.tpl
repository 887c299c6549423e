{{- define "floorgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "floorgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "floorgate.labels" -}}
{{ include "floorgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "floorgate.policiesConfigMap" -}}
{{- .Values.policies.existingConfigMap | default (printf "%s-policies" (include "floorgate.fullname" .)) -}}
{{- end -}}

{{- define "floorgate.sharedState" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* More than one pod needs shared state: refuse to render otherwise, saying why. */}}
{{- define "floorgate.checkReplicas" -}}
{{- $many := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled -}}
{{- if and $many (not (include "floorgate.sharedState" .)) -}}
{{- fail "replicaCount > 1 (or autoscaling.enabled) needs shared state: set redis.url or redis.existingSecret. With in-memory state each pod keeps its own ledger (feedback sent to another pod is a 404) and gates on its share of the data." -}}
{{- end -}}
{{- end -}}
