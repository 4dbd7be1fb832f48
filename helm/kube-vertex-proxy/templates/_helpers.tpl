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
the callback assertion key file when callbackAssertionKey.existingSecret is set,
and one vertex.identities entry per teamIdentities namespace.
*/}}
{{- define "kvp.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.auditPostgres.existingSecret -}}
{{- $audit := default (dict) (get $config "audit") -}}
{{- $sinks := list -}}
{{- range (default (list (dict "type" "stdout")) (get $audit "sinks")) -}}
{{- if or (ne .type "sqlite") $.Values.auditPostgres.keepSqlite -}}{{- $sinks = append $sinks . -}}{{- end -}}
{{- end -}}
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
{{- if .Values.teamIdentities -}}
{{- $vertex := default (dict) (get $config "vertex") -}}
{{- $identities := default (list) (get $vertex "identities") -}}
{{- range $namespace := keys .Values.teamIdentities | sortAlpha -}}
{{- $identities = append $identities (dict "subjects" (dict "namespaces" (list $namespace)) "serviceAccount" (get $.Values.teamIdentities $namespace)) -}}
{{- end -}}
{{- $_ := set $vertex "identities" $identities -}}
{{- $_ := set $config "vertex" $vertex -}}
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

{{/* A config duration ("500ms", "25s", "5m", "1h") in whole seconds, rounded up. */}}
{{- define "kvp.durationSeconds" -}}
{{- $d := toString . -}}
{{- $n := regexFind "^[0-9]+" $d | int -}}
{{- $unit := regexReplaceAll "^[0-9]+" $d "" -}}
{{- if eq $unit "ms" -}}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "s" -}}{{ $n }}
{{- else if eq $unit "m" -}}{{ mul $n 60 }}
{{- else if eq $unit "h" -}}{{ mul $n 3600 }}
{{- else -}}{{ fail (printf "cannot read the duration %q" $d) }}
{{- end -}}
{{- end -}}

{{/*
Network destinations the config names, as YAML `targets: [{host, port, what, callback}]`:
callback backends (callbacks.routes[].upstream), PostgreSQL audit sinks written
inline (audit.sinks[].url), a Redis limits store written inline
(limits.store.url), and networkPolicy.egressTargets ("host:port") for the ones
behind a Secret the chart cannot read. The NetworkPolicy derives its egress
(and, for callback backends, ingress to the JWKS on the admin port) from them.
*/}}
{{- define "kvp.networkTargets" -}}
{{- $targets := list -}}
{{- $callbacks := default (dict) (get .Values.config "callbacks") -}}
{{- range (default (list) (get $callbacks "routes")) -}}
{{- $u := urlParse .upstream -}}
{{- $port := ternary "443" "80" (eq $u.scheme "https") -}}
{{- if contains ":" $u.host -}}{{- $port = last (splitList ":" $u.host) -}}{{- end -}}
{{- $targets = append $targets (dict "host" (first (splitList ":" $u.host)) "port" ($port | int) "what" (printf "callbacks route %s" .prefix) "callback" true) -}}
{{- end -}}
{{- $audit := default (dict) (get .Values.config "audit") -}}
{{- range (default (list) (get $audit "sinks")) -}}
{{- if and (eq .type "postgres") .url -}}
{{- $u := urlParse .url -}}
{{- $port := "5432" -}}
{{- if contains ":" $u.host -}}{{- $port = last (splitList ":" $u.host) -}}{{- end -}}
{{- $targets = append $targets (dict "host" (first (splitList ":" $u.host)) "port" ($port | int) "what" "the PostgreSQL audit sink" "callback" false) -}}
{{- end -}}
{{- end -}}
{{- $store := dig "limits" "store" (dict) .Values.config -}}
{{- if and (eq (toString (get $store "type")) "redis") (get $store "url") -}}
{{- $u := urlParse $store.url -}}
{{- $port := "6379" -}}
{{- if contains ":" $u.host -}}{{- $port = last (splitList ":" $u.host) -}}{{- end -}}
{{- $targets = append $targets (dict "host" (first (splitList ":" $u.host)) "port" ($port | int) "what" "the Redis limits store" "callback" false) -}}
{{- end -}}
{{- range .Values.networkPolicy.egressTargets -}}
{{- $parts := splitList ":" (toString .) -}}
{{- if ne (len $parts) 2 -}}{{- fail (printf "networkPolicy.egressTargets: %q is not host:port" .) -}}{{- end -}}
{{- $targets = append $targets (dict "host" (first $parts) "port" (last $parts | int) "what" "networkPolicy.egressTargets" "callback" false) -}}
{{- end -}}
{{- toYaml (dict "targets" $targets) -}}
{{- end -}}

{{/*
Whether the config reads a URL from a file the chart cannot see (a Secret): a
PostgreSQL sink with urlFile (auditPostgres.existingSecret adds one), or a Redis
limits store with urlFile. Its destination must then be in networkPolicy.egressTargets.
*/}}
{{- define "kvp.urlFromSecret" -}}
{{- if .Values.auditPostgres.existingSecret -}}auditPostgres.existingSecret (the PostgreSQL audit store){{- else -}}
{{- $audit := default (dict) (get .Values.config "audit") -}}
{{- range (default (list) (get $audit "sinks")) -}}
{{- if and (eq .type "postgres") .urlFile -}}config.audit.sinks[].urlFile (the PostgreSQL audit store){{- end -}}
{{- end -}}
{{- if get (dig "limits" "store" (dict) .Values.config) "urlFile" -}}config.limits.store.urlFile (the Redis limits store){{- end -}}
{{- end -}}
{{- end -}}

{{/*
NetworkPolicy peers for one host, as YAML `peers: [...]`: an IPv4 address is an
ipBlock /32; NAME.NAMESPACE.svc[.DOMAIN] is that namespace; a bare NAME is the
release's namespace; loopback needs no rule (empty). Anything else (a DNS name
outside the cluster) cannot be expressed in a NetworkPolicy: it must be listed
in networkPolicy.peersByHost, which also overrides the derivation.
Input: dict "host" "what" "root".
*/}}
{{- define "kvp.peersFor" -}}
{{- $host := .host -}}
{{- $byHost := .root.Values.networkPolicy.peersByHost -}}
{{- if hasKey $byHost $host -}}
{{- toYaml (dict "peers" (get $byHost $host)) -}}
{{- else if or (eq $host "localhost") (regexMatch "^127\\." $host) -}}
{{- toYaml (dict "peers" (list)) -}}
{{- else if regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $host -}}
{{- toYaml (dict "peers" (list (dict "ipBlock" (dict "cidr" (printf "%s/32" $host))))) -}}
{{- else if regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\\.svc(\\..+)?$" $host -}}
{{- $ns := index (splitList "." $host) 1 -}}
{{- toYaml (dict "peers" (list (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $ns))))) -}}
{{- else if regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $host -}}
{{- toYaml (dict "peers" (list (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .root.Release.Namespace))))) -}}
{{- else -}}
{{- fail (printf "networkPolicy: cannot derive a rule for %s (%s): a NetworkPolicy selects pods and IP ranges, not DNS names. Use its IP or a NAME.NAMESPACE.svc name, or list its peers in networkPolicy.peersByHost (e.g. --set-json 'networkPolicy.peersByHost={\"%s\":[{\"ipBlock\":{\"cidr\":\"10.0.0.0/24\"}}]}')" $host .what $host) -}}
{{- end -}}
{{- end -}}
