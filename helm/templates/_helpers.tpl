{{/* Names, labels and the parts every process shares. */}}

{{- define "thb.name" -}}
{{- .Release.Name | trunc 30 | trimSuffix "-" -}}
{{- end -}}

{{- define "thb.labels" -}}
app.kubernetes.io/part-of: thb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one process: (dict "root" $ "deployable" "referral" "process" "api") */}}
{{- define "thb.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .deployable }}
app.kubernetes.io/component: {{ .process }}
{{- end -}}

{{- define "thb.image" -}}
{{- $root := .root -}}
{{- $repository := printf "%s/%s" ($root.Values.image.repository | trimSuffix "/") .deployable -}}
{{- $digest := get $root.Values.image.digests .deployable -}}
{{- if $digest -}}
{{ $repository }}@{{ $digest }}
{{- else -}}
{{ $repository }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "thb.kafkaCluster" -}}
{{ include "thb.name" . }}-kafka
{{- end -}}

{{- define "thb.kafkaBootstrap" -}}
{{- if eq .Values.kafka.mode "external" -}}
{{ required "kafka.external.bootstrapServers is required when kafka.mode is external" .Values.kafka.external.bootstrapServers }}
{{- else -}}
{{ include "thb.kafkaCluster" . }}-kafka-bootstrap:9092
{{- end -}}
{{- end -}}

{{- define "thb.mongodbName" -}}
{{ include "thb.name" . }}-mongodb
{{- end -}}

{{- define "thb.keycloakName" -}}
{{ include "thb.name" . }}-keycloak
{{- end -}}

{{- define "thb.allowedClients" -}}
{{- if not .Values.allowedClients -}}
{{- fail "allowedClients is required: the clients whose tokens are accepted (THB_ALLOWED_AZP)" -}}
{{- end -}}
{{- join "," .Values.allowedClients -}}
{{- end -}}

{{/* The Keycloak client of a service (OIDC_CLIENT_ID, the `azp` of its exchanged tokens):
     services.<name>.oidcClientId, default `<name>-api`. (dict "name" NAME "service" ENTRY) */}}
{{- define "thb.clientId" -}}
{{- .service.oidcClientId | default (printf "%s-api" .name) -}}
{{- end -}}

{{/* The base URL of a service's API (THB_UPSTREAM_<NAME>, for the gateway and for calls on behalf of the user):
     its Service in this release when its API runs here, else gateway.externalUpstreams.<name>; empty when
     neither. (dict "root" $ "name" NAME) */}}
{{- define "thb.upstreamUrl" -}}
{{- $root := .root -}}
{{- $service := get $root.Values.services .name -}}
{{- if and $service $service.enabled $service.api.enabled -}}
{{- printf "http://%s-%s-api:%v" (include "thb.name" $root) .name ($service.api.port | default $root.Values.defaults.api.port) -}}
{{- else -}}
{{- get $root.Values.gateway.externalUpstreams .name -}}
{{- end -}}
{{- end -}}

{{/* THB_ALLOWED_AZP of a service's processes: allowedClients, then the clients of every service whose
     callsOnBehalf names it, whether that caller runs in this release or in another one (Keycloak issues their
     tokens only for the pairs of the realm). (dict "root" $ "name" NAME) */}}
{{- define "thb.serviceAllowedClients" -}}
{{- $name := .name -}}
{{- $clients := splitList "," (include "thb.allowedClients" .root) -}}
{{- range $caller, $service := .root.Values.services -}}
{{- if has $name ($service.callsOnBehalf | default list) -}}
{{- $clients = append $clients (include "thb.clientId" (dict "name" $caller "service" $service)) -}}
{{- end -}}
{{- end -}}
{{- join "," (uniq $clients) -}}
{{- end -}}

{{- define "thb.problemBase" -}}
{{- .Values.problemBase | default (printf "%s/problems/" (.Values.publicUrl | trimSuffix "/")) -}}
{{- end -}}

{{- define "thb.configMapName" -}}
{{- .Values.platformConfig.existingConfigMap | default (printf "%s-platform" (include "thb.name" .)) -}}
{{- end -}}

{{/* Environment shared by the gateway and every service process: (dict "root" $ "allowedClients" CSV) */}}
{{- define "thb.commonEnv" -}}
{{- with .root -}}
- name: THB_MODE
  value: production
- name: THB_CONFIG
  value: /etc/thb/config/platform.yaml
- name: OIDC_ISSUER
  value: {{ .Values.keycloak.issuer | quote }}
- name: THB_ALLOWED_AZP
  value: {{ $.allowedClients | quote }}
- name: THB_PROBLEM_BASE
  value: {{ include "thb.problemBase" . | quote }}
- name: THB_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
{{- if .Values.telemetry.otlp.enabled }}
- name: OTEL_TRACES_EXPORTER
  value: otlp
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ required "telemetry.otlp.endpoint is required when telemetry.otlp.enabled" .Values.telemetry.otlp.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .Values.telemetry.otlp.protocol | quote }}
{{- else }}
- name: OTEL_TRACES_EXPORTER
  value: none
{{- end }}
{{- end }}
{{- end -}}

{{/* Environment of a service's processes (API and workers): (dict "root" $ "name" "referral") */}}
{{- define "thb.serviceEnv" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{ include "thb.commonEnv" (dict "root" $root "allowedClients" (include "thb.serviceAllowedClients" (dict "root" $root "name" $name))) }}
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
- name: THB_SERVICE
  value: {{ .name | quote }}
- name: THB_KEYS_FILE
  value: /etc/thb/keys/keys.json
- name: MONGODB_DB
  value: {{ printf "thb_%s" .name | quote }}
- name: MONGODB_URI
  valueFrom:
    secretKeyRef:
{{- if eq $root.Values.mongodb.mode "external" }}
      name: {{ required "mongodb.external.existingSecret is required" $root.Values.mongodb.external.existingSecret | quote }}
      key: {{ $root.Values.mongodb.external.key | quote }}
{{- else }}
      name: {{ include "thb.mongodbName" $root }}-uri
      key: connectionString.standard
{{- end }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "thb.kafkaBootstrap" $root | quote }}
{{- end -}}

{{/* Refuses a services.<name>.callsOnBehalf that names a service outside the services map or the service itself,
     whichever of its processes run here. Renders nothing. (dict "root" $ "name" NAME) */}}
{{- define "thb.checkCallsOnBehalf" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- range ((get $root.Values.services $name).callsOnBehalf | default list) -}}
{{- if not (hasKey $root.Values.services .) -}}
{{- fail (printf "services.%s.callsOnBehalf: %s is not a service of the services map" $name .) -}}
{{- end -}}
{{- if eq . $name -}}
{{- fail (printf "services.%s.callsOnBehalf: a service does not call itself on behalf of the user" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Calls on behalf of the user (docs/on-behalf-calls.md), for the API process of a service only: only an API
     handles a user's request and so holds a user token to exchange; workers never call on behalf of a user and
     get none of this (deny by default). This service's Keycloak client, its secret from an existing Secret, and
     the base URL of each target's API; empty for a service that calls nobody. (dict "root" $ "name" NAME) */}}
{{- define "thb.onBehalfApiEnv" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $service := get $root.Values.services $name -}}
{{- include "thb.checkCallsOnBehalf" . -}}
{{- with $service.callsOnBehalf }}
{{- $secret := $service.oidcClientSecret | default dict }}
- name: OIDC_CLIENT_ID
  value: {{ include "thb.clientId" (dict "name" $name "service" $service) | quote }}
- name: OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret.secretName | default (printf "%s-%s-oidc" (include "thb.name" $root) $name) | quote }}
      key: {{ $secret.key | default "client-secret" | quote }}
{{- range . }}
{{- $url := include "thb.upstreamUrl" (dict "root" $root "name" .) }}
{{- if not $url }}
{{- fail (printf "services.%s.callsOnBehalf: the API of %s is not deployed in this release; set gateway.externalUpstreams.%s to its base URL" $name . .) }}
{{- end }}
- name: THB_UPSTREAM_{{ upper . }}
  value: {{ $url | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "thb.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Volumes: /tmp (the root filesystem is read-only), the platform configuration, the key file (services). */}}
{{- define "thb.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  - name: platform-config
    configMap:
      name: {{ include "thb.configMapName" .root }}
      items:
        - key: {{ .root.Values.platformConfig.key }}
          path: platform.yaml
{{- if .keys }}
  - name: keys
    secret:
      secretName: {{ required "keys.existingSecret is required: the Secret holding the key file (docs/keys.md)" .root.Values.keys.existingSecret | quote }}
      defaultMode: 0440
      items:
        - key: {{ .root.Values.keys.key }}
          path: keys.json
{{- end }}
{{- end -}}

{{- define "thb.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  - name: platform-config
    mountPath: /etc/thb/config
    readOnly: true
{{- if .keys }}
  - name: keys
    mountPath: /etc/thb/keys
    readOnly: true
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rules shared by the policies. */}}
{{- define "thb.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dnsNamespace }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
{{- define "thb.keycloakEgress" -}}
{{- if eq .Values.keycloak.mode "operator" }}
- to:
    - podSelector:
        matchLabels:
          app: keycloak
          app.kubernetes.io/instance: {{ include "thb.keycloakName" . }}
  ports:
    - {protocol: TCP, port: 8443}
{{- end }}
{{- end }}
{{- define "thb.externalEgress" -}}
{{- range .Values.networkPolicy.externalEgress }}
- {{ toYaml . | nindent 2 | trim }}
{{- end }}
{{- end }}
