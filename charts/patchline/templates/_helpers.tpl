{{- define "patchline.labels" -}}
app.kubernetes.io/name: patchline
app.kubernetes.io/component: operator
{{- end -}}

{{- define "patchline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
