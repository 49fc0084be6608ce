{{/* vim: set filetype=mustache: */}}

{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "homesec.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; the release name alone if it already contains the chart name. */}}
{{- define "homesec.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart label value. */}}
{{- define "homesec.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Namespace of every namespaced object. */}}
{{- define "homesec.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/* Labels shared by every object. */}}
{{- define "homesec.labels" -}}
helm.sh/chart: {{ include "homesec.chart" . }}
app.kubernetes.io/name: {{ include "homesec.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: homesec-telemetry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Component helpers take a dict: (dict "root" $ "component" "producer").
*/}}
{{- define "homesec.componentName" -}}
{{- printf "%s-%s" (include "homesec.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "homesec.selectorLabels" -}}
app.kubernetes.io/name: {{ include "homesec.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "homesec.componentLabels" -}}
{{ include "homesec.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "homesec.serviceAccountName" -}}
{{- $c := index .root.Values .component -}}
{{- if $c.serviceAccount.create -}}
{{- default (include "homesec.componentName" .) $c.serviceAccount.name -}}
{{- else -}}
{{- default "default" $c.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference: repository@digest or repository:tag (tag defaults to appVersion). */}}
{{- define "homesec.image" -}}
{{- $img := (index .root.Values .component).image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: preStop sleep + the app's shutdown grace + 10 s margin unless set;
a set value must leave the app its whole grace after the preStop hook, or rendering fails.
*/}}
{{- define "homesec.terminationGrace" -}}
{{- $c := index .root.Values .component -}}
{{- $needed := add $c.preStopSleepSeconds $c.shutdownGraceSeconds -}}
{{- if $c.terminationGracePeriodSeconds -}}
{{- if le (int $c.terminationGracePeriodSeconds) (int $needed) -}}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed %s.preStopSleepSeconds + %s.shutdownGraceSeconds (%d), or the %s is killed before it finishes" .component (int $c.terminationGracePeriodSeconds) .component .component (int $needed) .component) -}}
{{- end -}}
{{- int $c.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add $needed 10 -}}
{{- end -}}
{{- end -}}

{{/* Workload Identity: fail early when enabled without what it needs. */}}
{{- define "homesec.validateAzure" -}}
{{- $v := .Values -}}
{{- if $v.azure.workloadIdentity.enabled -}}
{{- $_ := required "azure.workloadIdentity.clientId is required with Workload Identity" $v.azure.workloadIdentity.clientId -}}
{{- $_ := required "eventHubs.fullyQualifiedNamespace is required with Workload Identity" $v.eventHubs.fullyQualifiedNamespace -}}
{{- if $v.consumer.enabled -}}
{{- $_ := required "blobStorage.accountUrl is required with Workload Identity" $v.blobStorage.accountUrl -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* An autoscaled component's replica range is a range: minReplicas <= maxReplicas. */}}
{{- define "homesec.validateReplicaRange" -}}
{{- $a := (index .root.Values .component).autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling.minReplicas (%d) exceeds %s.autoscaling.maxReplicas (%d)" .component (int $a.minReplicas) .component (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}

{{/* The producer's replica range. */}}
{{- define "homesec.validateProducerScale" -}}
{{- include "homesec.validateReplicaRange" (dict "root" . "component" "producer") -}}
{{- end -}}

{{/* The consumer's replica range, and it never runs more pods than there are partitions. */}}
{{- define "homesec.validateConsumerScale" -}}
{{- $c := .Values.consumer -}}
{{- $p := int .Values.eventHubs.partitionCount -}}
{{- $max := int $c.replicaCount -}}
{{- include "homesec.validateReplicaRange" (dict "root" . "component" "consumer") -}}
{{- if $c.autoscaling.enabled -}}
{{- $max = int $c.autoscaling.maxReplicas -}}
{{- end -}}
{{- if gt $max $p -}}
{{- fail (printf "consumer replicas (%d) exceed eventHubs.partitionCount (%d): the extra consumer pods would own no partition and idle" $max $p) -}}
{{- end -}}
{{- end -}}

{{/*
Settings the chart owns may not be overridden through <component>.config (the rendered keys would clash and
the producer and the consumer could disagree on the horizon); the producer's shutdown grace must leave it
4.5 s after its SHUTDOWN_DELAY_SECONDS to flush and answer every waiting request (it refuses to start otherwise).
*/}}
{{- define "homesec.validateShutdownAndHorizon" -}}
{{- $owned := dict "MAX_READING_AGE_SECONDS" "readings.maxAgeSeconds" "MAX_CLOCK_SKEW_SECONDS" "readings.maxClockSkewSeconds" "RESEND_WINDOW_SECONDS" "consumer.resendWindowSeconds" "ALARMS_EVENTHUB_NAME" "eventHubs.alarmsName" "TERMINATION_GRACE_SECONDS" "producer.terminationGracePeriodSeconds" "SHUTDOWN_GRACE_SECONDS" "<component>.shutdownGraceSeconds" -}}
{{- range $component := list "producer" "consumer" }}
{{- range $key, $value := (index $.Values $component).config }}
{{- if hasKey $owned $key }}
{{- fail (printf "%s.config.%s: set %s instead (the chart renders it)" $component $key (get $owned $key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $p := .Values.producer -}}
{{- $delay := float64 (default 0 (index $p.config "SHUTDOWN_DELAY_SECONDS")) -}}
{{- if and $p.enabled (lt (subf (float64 $p.shutdownGraceSeconds) $delay) 4.5) -}}
{{- fail (printf "producer.shutdownGraceSeconds (%d) must be at least 4.5 + producer.config.SHUTDOWN_DELAY_SECONDS (%g): the producer needs that long to flush and answer every waiting request (503 + Retry-After) before the server's own shutdown timeout, and refuses to start otherwise" (int $p.shutdownGraceSeconds) $delay) -}}
{{- end -}}
{{- end -}}

{{/* Pod labels for Workload Identity. */}}
{{- define "homesec.podAzureLabels" -}}
{{- if .Values.azure.workloadIdentity.enabled -}}
azure.workload.identity/use: "true"
{{- end -}}
{{- end -}}

{{/* ServiceAccount annotations for Workload Identity. */}}
{{- define "homesec.saAzureAnnotations" -}}
{{- if .Values.azure.workloadIdentity.enabled }}
azure.workload.identity/client-id: {{ .Values.azure.workloadIdentity.clientId | quote }}
{{- with .Values.azure.workloadIdentity.tenantId }}
azure.workload.identity/tenant-id: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Metrics are scraped one way per pod: a ServiceMonitor or a PodMonitor, or else the prometheus.io annotations.
Two ways would scrape each pod twice under two jobs and double every sum(rate(...)) of the dashboard and
the alerts, so the chart refuses both monitor kinds at once and drops the annotations from a pod a monitor
already scrapes.
*/}}
{{- define "homesec.validateMetrics" -}}
{{- $m := .Values.metrics -}}
{{- if and $m.serviceMonitor.enabled $m.podMonitor.enabled -}}
{{- fail "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: every pod would be scraped twice (two jobs), doubling every sum(rate(...)); enable one of them" -}}
{{- end -}}
{{- end -}}

{{/* "true" when a ServiceMonitor or PodMonitor scrapes the component's pods. */}}
{{- define "homesec.monitored" -}}
{{- $m := .root.Values.metrics -}}
{{- $c := index .root.Values .component -}}
{{- $hasService := or (eq .component "producer") $c.service.enabled -}}
{{- if or $m.podMonitor.enabled (and $m.serviceMonitor.enabled $hasService) -}}true{{- end -}}
{{- end -}}

{{/* Prometheus scrape annotations: only when no monitor scrapes the pods already. */}}
{{- define "homesec.scrapeAnnotations" -}}
{{- if and .root.Values.metrics.podAnnotations (not (include "homesec.monitored" .)) -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ (index .root.Values .component).adminPort | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{/* A secretKeyRef env entry: (dict "root" $ "env" NAME "key" KEY ["optional" true]). */}}
{{- define "homesec.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.existingSecret.name }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Zone and node spread for a component. */}}
{{- define "homesec.topologySpread" -}}
{{- if (index .root.Values .component).topologySpread.enabled -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "homesec.selectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "homesec.selectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
{{- end -}}
{{- end -}}

{{/* The container's env: secrets by reference only, then extraEnv. */}}
{{- define "homesec.containerEnv" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .component -}}
{{- $wi := $root.Values.azure.workloadIdentity.enabled -}}
{{- $keys := $root.Values.existingSecret.keys -}}
{{- $prefix := printf "HOMESEC_%s_" (upper .component) -}}
{{- /* Token keys, the same for both services (ingest tokens, read tokens): either key may be absent from
the Secret; each service refuses to start without both. */}}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sAUTH_KEYS" $prefix) "key" $keys.producerAuthKeys "optional" true) }}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sAUTH_PUBLIC_KEYS" $prefix) "key" $keys.producerAuthPublicKeys "optional" true) }}
{{- if eq .component "producer" }}
{{- if not $wi }}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sEVENTHUB_CONNECTION_STRING" $prefix) "key" $keys.eventHubsProducerConnectionString) }}
{{- end }}
{{- else }}
{{- /* Status reads are forwarded to the pod that owns a home's partition: this pod's address. */}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: {{ $prefix }}ADVERTISE_URL
  value: "http://$(POD_IP):{{ $c.port }}"
{{- end }}
{{- if and (eq .component "consumer") (not $wi) }}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sEVENTHUB_CONNECTION_STRING" $prefix) "key" $keys.eventHubsConsumerConnectionString) }}
{{- if and $root.Values.eventHubs.alarmsName $keys.eventHubsConsumerAlarmsConnectionString }}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sALARMS_EVENTHUB_CONNECTION_STRING" $prefix) "key" $keys.eventHubsConsumerAlarmsConnectionString "optional" true) }}
{{- end }}
{{ include "homesec.secretEnv" (dict "root" $root "env" (printf "%sBLOB_CONNECTION_STRING" $prefix) "key" $keys.blobConnectionString) }}
{{- end }}
{{- with $c.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A NetworkPolicy peer: every pod of one namespace, by its kubernetes.io/metadata.name label.
(dict "name" NAMESPACE "what" VALUE-PATH); an empty name fails rendering, naming the value. */}}
{{- define "homesec.namespacePeer" -}}
{{- if not .name }}
{{- fail (printf "%s is empty: name the namespace, or list the peers yourself" .what) }}
{{- end -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .name }}
{{- end -}}
