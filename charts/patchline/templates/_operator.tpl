{{/*
One operator Deployment: the default instance (shard "") or the instance of one shard.
Arguments: root (the chart's context), shard. A shard's instance owns the Patchline resources
labelled patchline.dev/shard=<shard>, has its own Lease, metrics and webhook Services, and
serves no admission (the default instance does, for every policy).
*/}}
{{- define "patchline.operator" -}}
{{- $root := .root }}
{{- $name := include "patchline.fullname" $root }}
{{- $instance := include "patchline.instance" . }}
{{- $admission := and $root.Values.admission.enabled (not .shard) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $instance }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "patchline.operatorLabels" .shard | nindent 4 }}
spec:
  replicas: {{ $root.Values.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "patchline.operatorLabels" .shard | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "patchline.operatorLabels" .shard | nindent 8 }}
      annotations:
        # A changed config file rolls the pods.
        checksum/config: {{ toYaml $root.Values.config | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "patchline.operatorLabels" .shard | nindent 20 }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: operator
          image: {{ include "patchline.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: PATCHLINE_LOG_FORMAT
              value: json
            - name: PATCHLINE_PROBE_ADDRESS
              value: 0.0.0.0:8080
            - name: PATCHLINE_WEBHOOK_ADDRESS
              value: 0.0.0.0:9090
            # Webhook builds are told to report back here (the Service of this instance).
            - name: PATCHLINE_BUILD_CALLBACK_URL
              value: http://{{ $instance }}-webhooks.$(POD_NAMESPACE).svc
            # Names derived from the install's, so that installs and shards never share one.
            - name: PATCHLINE_LEADER_ELECTION_ID
              value: {{ $instance }}-leader
            {{- if .shard }}
            # This instance owns the Patchline resources labelled for its shard.
            - name: PATCHLINE_WATCH_LABEL_SELECTOR
              value: patchline.dev/shard={{ .shard }}
            {{- else if $root.Values.shards }}
            # The default instance owns the resources no shard label assigns elsewhere.
            - name: PATCHLINE_WATCH_LABEL_SELECTOR
              value: '!patchline.dev/shard'
            {{- end }}
            {{- if $admission }}
            - name: PATCHLINE_ADMISSION_WEBHOOK_CONFIGURATION
              value: {{ $name }}-admission
            - name: PATCHLINE_ADMISSION_SECRET
              value: {{ $name }}-admission-tls
            - name: PATCHLINE_ADMISSION_SERVICE
              value: {{ $name }}-admission
            - name: PATCHLINE_ADMISSION_ADDRESS
              value: 0.0.0.0:9443
            {{- if $root.Values.admission.certManager.enabled }}
            - name: PATCHLINE_ADMISSION_CERT_DIR
              value: /etc/patchline/admission-tls
            {{- end }}
            {{- end }}
            - name: PATCHLINE_CONFIG_FILE
              value: /etc/patchline/config/config.yaml
            {{- with $root.Values.defaultServiceAccount }}
            - name: PATCHLINE_DEFAULT_SERVICE_ACCOUNT
              value: {{ . | quote }}
            {{- end }}
            {{- with $root.Values.watchNamespaces }}
            - name: PATCHLINE_WATCH_NAMESPACES
              value: {{ join "," . | quote }}
            {{- end }}
            {{- if ne $root.Values.logLevel "info" }}
            - name: PATCHLINE_LOG_LEVEL
              value: {{ $root.Values.logLevel }}
            {{- end }}
            {{- if ne (int $root.Values.maxBuilds) 20 }}
            - name: PATCHLINE_MAX_BUILDS
              value: {{ $root.Values.maxBuilds | quote }}
            {{- end }}
            # Keep the V8 heap inside the memory limit, with room for buffers; a small young
            # generation (2 MiB semi-spaces, V8's default is 16) keeps RSS from growing with
            # bursts of watch events: +16 instead of +70 MiB while 20,000 pods are created
            # (npm run bench:pods), no slower (npm run bench:references).
            - name: NODE_OPTIONS
              value: --max-old-space-size={{ $root.Values.maxOldSpaceMiB }} --max-semi-space-size=2
          ports:
            - name: http-metrics
              containerPort: 8080
              protocol: TCP
            - name: http-webhooks
              containerPort: 9090
              protocol: TCP
            {{- if $admission }}
            - name: https-admission
              containerPort: 9443
              protocol: TCP
            {{- end }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http-metrics
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet:
              path: /healthz
              port: http-metrics
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http-metrics
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $root.Values.resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: config
              mountPath: /etc/patchline/config
              readOnly: true
            - name: webhook-secrets
              mountPath: /etc/patchline/webhooks
              readOnly: true
            {{- if and $admission $root.Values.admission.certManager.enabled }}
            - name: admission-tls
              mountPath: /etc/patchline/admission-tls
              readOnly: true
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ $name }}-config
        - name: webhook-secrets
          secret:
            secretName: {{ $name }}-webhooks
            optional: true
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if and $admission $root.Values.admission.certManager.enabled }}
        - name: admission-tls
          secret:
            secretName: {{ $name }}-admission-tls
        {{- end }}
{{- end -}}
