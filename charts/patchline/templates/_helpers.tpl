{{- define "patchline.labels" -}}
app.kubernetes.io/name: patchline
app.kubernetes.io/component: operator
{{- end -}}

{{- define "patchline.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
The install's name: every object's name is derived from it, the cluster-scoped ones too
(ClusterRoles, their bindings, the ValidatingWebhookConfiguration), so that a second install
(another release, in its own namespace) collides with nothing. The release name when it
holds "patchline" (`helm install patchline` gives the names of `kubectl apply -k
manifests/`), else "<release>-patchline"; fullnameOverride wins. At most 40 characters:
the longest suffix added is 23.
*/}}
{{- define "patchline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "patchline" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-patchline" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels of one operator instance's pods: the default instance's, or a shard's. */}}
{{- define "patchline.operatorLabels" -}}
{{- if . -}}
app.kubernetes.io/name: patchline
app.kubernetes.io/component: operator-shard
patchline.dev/shard: {{ . }}
{{- else -}}
{{ include "patchline.labels" . }}
{{- end -}}
{{- end -}}

{{/* The name of one operator instance (arguments: root, shard): <install> or <install>-shard-<shard>. */}}
{{- define "patchline.instance" -}}
{{- $name := include "patchline.fullname" .root -}}
{{- if .shard }}{{ $name }}-shard-{{ .shard }}{{ else }}{{ $name }}{{ end -}}
{{- end -}}
