{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "kvp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource name: the release name when it already names the chart, else release-chart. */}}
{{- define "kvp.fullname" -}}
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

{{- define "kvp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kvp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kvp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: proxy
{{- end -}}

{{- define "kvp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kvp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kvp.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The ports come from the proxy's own config, so the two cannot disagree. */}}
{{- define "kvp.dataPort" -}}
{{- dig "server" "port" 8080 .Values.config | int -}}
{{- end -}}
{{- define "kvp.adminPort" -}}
{{- dig "server" "adminPort" 9090 .Values.config | int -}}
{{- end -}}

{{/* Kubernetes API access the config needs: the RBAC rules, the token mount and the NetworkPolicy follow from it. */}}
{{- define "kvp.watchNamespaces" -}}
{{- if eq (dig "kubernetes" "namespaceLabels" "static" .Values.config) "watch" -}}true{{- end -}}
{{- end -}}
{{- define "kvp.tokenReview" -}}
{{- if dig "kubernetes" "tokenReview" false .Values.config -}}true{{- end -}}
{{- end -}}
{{- define "kvp.uidRevocation" -}}
{{- dig "kubernetes" "uidRevocation" "off" .Values.config -}}
{{- end -}}
{{- define "kvp.needsKubernetesApi" -}}
{{- if or (include "kvp.watchNamespaces" .) (include "kvp.tokenReview" .) (ne (include "kvp.uidRevocation" .) "off") -}}true{{- end -}}
{{- end -}}

{{/* Replicas the Deployment never goes below (HPA minimum, or the fixed count). */}}
{{- define "kvp.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{ .Values.autoscaling.minReplicas | int }}{{- else -}}{{ .Values.replicaCount | int }}{{- end -}}
{{- end -}}

{{- define "kvp.configDir" -}}/etc/kube-vertex-proxy{{- end -}}
{{- define "kvp.postgresDir" -}}/etc/kube-vertex-proxy-secrets/audit-postgres{{- end -}}
{{- define "kvp.assertionKeyDir" -}}/etc/kube-vertex-proxy-secrets/callback-assertion{{- end -}}
{{- define "kvp.redisDir" -}}/etc/kube-vertex-proxy-secrets/limits-redis{{- end -}}

{{/*
The config file: .Values.config as given, plus the PostgreSQL audit sink when
auditPostgres.existingSecret is set (its URL read from the mounted Secret) and
the callback assertion key file when callbackAssertionKey.existingSecret is set.
*/}}
{{- define "kvp.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.auditPostgres.existingSecret -}}
{{- $audit := default (dict) (get $config "audit") -}}
{{- $sinks := default (list (dict "type" "stdout")) (get $audit "sinks") -}}
{{- $pg := dict "type" "postgres" "urlFile" (printf "%s/%s" (include "kvp.postgresDir" .) .Values.auditPostgres.key) -}}
{{- if .Values.auditPostgres.table -}}{{- $_ := set $pg "table" .Values.auditPostgres.table -}}{{- end -}}
{{- $_ := set $audit "sinks" (append $sinks $pg) -}}
{{- $_ := set $config "audit" $audit -}}
{{- end -}}
{{- if .Values.callbackAssertionKey.existingSecret -}}
{{- $callbacks := default (dict) (get $config "callbacks") -}}
{{- $assertion := default (dict) (get $callbacks "assertion") -}}
{{- $_ := set $assertion "keyFile" (printf "%s/%s" (include "kvp.assertionKeyDir" .) .Values.callbackAssertionKey.key) -}}
{{- $_ := set $callbacks "assertion" $assertion -}}
{{- $_ := set $config "callbacks" $callbacks -}}
{{- end -}}
{{- if .Values.limits.redis.existingSecret -}}
{{- $limits := default (dict) (get $config "limits") -}}
{{- $given := default (dict) (get $limits "store") -}}
{{- $store := dict "type" "redis" "urlFile" (printf "%s/%s" (include "kvp.redisDir" .) .Values.limits.redis.key) -}}
{{- if eq (get $given "type") "redis" -}}
{{- range $k := list "keyPrefix" "onUnavailable" "timeout" -}}
{{- if hasKey $given $k -}}{{- $_ := set $store $k (get $given $k) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $limits "store" $store -}}
{{- $_ := set $config "limits" $limits -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
