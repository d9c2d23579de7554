{{- define "kubetune.name" -}}kubetune{{- end -}}

{{- define "kubetune.fullname" -}}
{{- if contains "kubetune" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-kubetune" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "kubetune.labels" -}}
app.kubernetes.io/name: kubetune
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubetune.selectorLabels" -}}
app.kubernetes.io/name: kubetune
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubetune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "kubetune.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "kubetune.namespaces" -}}
{{- if .Values.watch.namespaces -}}{{ join "," .Values.watch.namespaces }}{{- else -}}{{ .Release.Namespace }}{{- end -}}
{{- end -}}

{{/* The permissions the operator uses, and nothing more (see tests/chart). */}}
{{- define "kubetune.rules" -}}
- apiGroups: ["kubetune.io"]
  resources: ["studies", "rounds", "trials"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["trials"]
  verbs: ["create"]
- apiGroups: ["kubetune.io"]
  resources: ["studies/status", "rounds/status", "trials/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- range $k := include "kubetune.workloadKinds" . | fromJsonArray }}
- apiGroups: [{{ (splitList "/" $k.apiVersion | initial | join "/") | quote }}]
  resources: [{{ $k.plural | quote }}]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
{{- end -}}

{{/*
The workload kinds enabled in values.yaml, as the JSON list the operator reads from
KUBETUNE_WORKLOAD_KINDS (and the Role's rules are made from).
*/}}
{{- define "kubetune.workloadKinds" -}}
{{- $kinds := list -}}
{{- if .Values.workloads.job -}}
{{- $kinds = append $kinds (dict "apiVersion" "batch/v1" "kind" "Job" "plural" "jobs") -}}
{{- end -}}
{{- if .Values.workloads.jobSet -}}
{{- $kinds = append $kinds (dict "apiVersion" "jobset.x-k8s.io/v1alpha2" "kind" "JobSet" "plural" "jobsets") -}}
{{- end -}}
{{- if .Values.workloads.pyTorchJob -}}
{{- $kinds = append $kinds (dict "apiVersion" "kubeflow.org/v1" "kind" "PyTorchJob" "plural" "pytorchjobs") -}}
{{- end -}}
{{- range .Values.workloads.other -}}
{{- $kinds = append $kinds (dict "apiVersion" .apiVersion "kind" .kind "plural" .plural) -}}
{{- end -}}
{{- toJson $kinds -}}
{{- end -}}
