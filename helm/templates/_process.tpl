{{/*
One process of the platform: its Deployment and, by kind, Service, HorizontalPodAutoscaler,
PodDisruptionBudget and ServiceMonitor. Called by processes.yaml for every enabled API, worker and the gateway
with (dict "root" $ "deployable" NAME "process" PROCESS "kind" api|worker|gateway "settings" MERGED
"command" LIST "env" YAML "keys" BOOL).
*/}}
{{- define "thb.process" -}}
{{- $root := .root -}}
{{- $s := .settings -}}
{{- $name := printf "%s-%s-%s" (include "thb.name" $root) .deployable .process -}}
{{- if eq .kind "gateway" }}{{- $name = printf "%s-gateway" (include "thb.name" $root) -}}{{- end -}}
{{- $selector := include "thb.selector" (dict "root" $root "deployable" .deployable "process" .process) -}}
{{- $http := ne .kind "worker" -}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "thb.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
    thb.platform/kind: {{ .kind }}
spec:
  {{- if not (and $http $s.autoscaling.enabled) }}
  replicas: {{ $s.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "thb.labels" $root | nindent 8 }}
        {{- $selector | nindent 8 }}
        thb.platform/kind: {{ .kind }}
        {{- if ne .kind "gateway" }}
        thb.platform/service: {{ .deployable }}
        {{- end }}
      annotations:
        checksum/platform-config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum | trunc 16 }}
    spec:
      {{- include "thb.podSecurity" $root | nindent 6 }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .process }}
          image: {{ include "thb.image" (dict "root" $root "deployable" .deployable) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml .command | nindent 12 }}
          env:
            {{- .env | nindent 12 }}
          ports:
            - name: {{ ternary "http" "endpoints" $http }}
              containerPort: {{ $s.port }}
              protocol: TCP
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          resources:
            {{- toYaml $s.resources | nindent 12 }}
          {{- if $http }}
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 3
          {{- else }}
          {{- /* A worker serves its endpoints on the loopback interface only (plumbing.worker_endpoints):
                 the probes ask from inside the container. */}}
          livenessProbe:
            exec:
              command: [python, -c, "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{{ $s.port }}/healthz', timeout=3)"]
            periodSeconds: 15
            timeoutSeconds: 5
            failureThreshold: 3
          readinessProbe:
            exec:
              command: [python, -c, "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{{ $s.port }}/readyz', timeout=3)"]
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          {{- end }}
          {{- include "thb.volumeMounts" (dict "root" $root "keys" .keys) | nindent 10 }}
      {{- include "thb.volumes" (dict "root" $root "keys" .keys) | nindent 6 }}
{{- if $http }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "thb.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- $selector | nindent 4 }}
  ports:
    - name: http
      port: {{ $s.port }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- if and $http $s.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "thb.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $s.autoscaling.minReplicas }}
  maxReplicas: {{ $s.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $s.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if $s.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "thb.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
spec:
  minAvailable: {{ $s.pdb.minAvailable }}
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
{{- end }}
{{- if and (eq .kind "api") $root.Values.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "thb.labels" $root | nindent 4 }}
    {{- $selector | nindent 4 }}
    {{- with $root.Values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $root.Values.serviceMonitor.interval }}
{{- end }}
{{- end -}}
