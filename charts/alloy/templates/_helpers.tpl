{{/*
Names, labels and the pieces of configuration that several templates share.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "alloy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object's name: the release name when it already says "alloy", else <release>-alloy. */}}
{{- define "alloy.fullname" -}}
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

{{/* Name of one component's objects: fullname-component (≤ 63 characters). */}}
{{- define "alloy.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "alloy.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{/* Labels every object of the release carries. Call with (list $ "component"). */}}
{{- define "alloy.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "alloy.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: alloy
{{- end }}

{{/* The labels that select one component's pods. Call with (list $ "component"). */}}
{{- define "alloy.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "alloy.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The operator and router image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "alloy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
A node pool's runtime image. The tag defaults to <appVersion>-<build>, the build being what
Dockerfile.runtime's ACCELERATOR argument made: cuda for nvidia, rocm for amd, cpu for cpu.
Call with (list $ "nvidia" $pool).
*/}}
{{- define "alloy.runtimeImage" -}}
{{- $root := index . 0 }}
{{- $builds := dict "nvidia" "cuda" "amd" "rocm" "cpu" "cpu" }}
{{- $image := (index . 2).image }}
{{- printf "%s:%s" $image.repository (default (printf "%s-%s" $root.Chart.AppVersion (index $builds (index . 1))) $image.tag) }}
{{- end }}

{{/* The node pools, as both the operator and the router read them (alloy.nodepools.NodePool). */}}
{{- define "alloy.nodePools" -}}
{{- $pools := dict }}
{{- range $vendor, $pool := .Values.nodePools }}
{{- $out := dict "image" (include "alloy.runtimeImage" (list $ $vendor $pool)) "nodeSelector" $pool.nodeSelector "tolerations" $pool.tolerations }}
{{- if $pool.resourceName }}{{ $_ := set $out "resourceName" $pool.resourceName }}{{ end }}
{{- range $key := list "maxNodes" "acceleratorsPerNode" "acceleratorMemoryGiB" }}
{{- if not (kindIs "invalid" (index $pool $key)) }}{{ $_ := set $out $key (index $pool $key) }}{{ end }}
{{- end }}
{{- $_ := set $pools $vendor $out }}
{{- end }}
{{- toYaml $pools }}
{{- end }}

{{/* Whether the AlloyModels of every namespace are served (else only the release namespace's). */}}
{{- define "alloy.clusterWide" -}}
{{- if .Values.watchAllNamespaces }}true{{ end }}
{{- end }}

{{/* The model cache claim the runtimes mount: an existing one, the chart's own, or none (an emptyDir). */}}
{{- define "alloy.modelCacheClaim" -}}
{{- if .Values.modelCache.existingClaim }}
{{- .Values.modelCache.existingClaim }}
{{- else if .Values.modelCache.create }}
{{- include "alloy.componentName" (list . "models") }}
{{- end }}
{{- end }}

{{/*
RBAC rules, one (apiGroup, resource, verbs) per call the component makes; tests/chart/test_rbac.py
records the calls and compares. No wildcards, nothing unused.
*/}}
{{- define "alloy.operatorRules" -}}
# Kopf lists and watches AlloyModels and keeps its bookkeeping in their annotations (patch);
# the handlers read one when its pods change (get).
- apiGroups: [alloy.dev]
  resources: [alloymodels]
  verbs: [get, list, watch, patch]
- apiGroups: [alloy.dev]
  resources: [alloymodels/status]
  verbs: [patch]
# Each model's Deployment and Service: applied (get, create, replace) and watched for status.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, update]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, update]
# A model's pods say why it is Pending or Failed.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{- define "alloy.routerModelRules" -}}
# AlloyModels are the router's registry (list, watch); it wakes a model through /scale and records
# when it was last used in its status.
- apiGroups: [alloy.dev]
  resources: [alloymodels]
  verbs: [list, watch]
- apiGroups: [alloy.dev]
  resources: [alloymodels/scale]
  verbs: [patch]
- apiGroups: [alloy.dev]
  resources: [alloymodels/status]
  verbs: [patch]
{{- end }}

{{/* Name of a cluster-scoped object (ClusterRole, its binding): namespaced too, so releases never clash. */}}
{{- define "alloy.clusterScopedName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s-%s" $root.Release.Namespace (include "alloy.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Where the router finds its API keys: the Secret, mounted as files. */}}
{{- define "alloy.apiKeysDir" -}}
/etc/alloy/api-keys
{{- end }}
