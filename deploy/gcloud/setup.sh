#!/usr/bin/env bash
# The Google Cloud side of kube-vertex-proxy, least privilege:
#   1. enable the Vertex AI API;
#   2. give the PROXY (and only the proxy) a Google identity holding the Vertex AI role:
#      either a Google service account (GSA) that the proxy's Kubernetes service account
#      (KSA) impersonates through Workload Identity (roles/iam.workloadIdentityUser on
#      the GSA, for that one KSA), or, with --principal, the KSA itself as a Workload
#      Identity Federation principal (no GSA at all);
#   3. nothing for callers: workloads that call Vertex AI through the proxy get no Google
#      role and no Google credential. The proxy's policy decides what each may do.
#
# The role: roles/aiplatform.user is the smallest predefined role that covers prediction,
# Gemini generation, embeddings, and training/pipeline jobs. If callers only predict and
# generate, pass --role with a custom role holding aiplatform.endpoints.predict (and
# aiplatform.endpoints.get / aiplatform.models.get for metadata reads). Jobs that run as a
# service account also need --job-service-account (roles/iam.serviceAccountUser on that one
# service account, never on the project).
#
# --team-identity NAMESPACE=GSA (repeatable) gives the callers of one namespace their own
# Google identity: GSA (a name, or a full email) gets the role instead of sharing the
# proxy's, and the proxy's identity gets roles/iam.serviceAccountTokenCreator on that one
# account so it can impersonate it (vertex.identities). Vertex AI's IAM then bounds each
# team, and Cloud Audit Logs name the team's account.
#
# Usage:
#   deploy/gcloud/setup.sh --project PROJECT [--namespace vertex-system] [--ksa kube-vertex-proxy]
#                          [--gsa vertex-proxy | --principal] [--role roles/aiplatform.user]
#                          [--job-service-account SA_EMAIL] [--team-identity NAMESPACE=GSA ...] [--dry-run]
# Re-running it is safe: existing resources are kept, bindings are idempotent.
set -euo pipefail

project=""
namespace="vertex-system"
ksa="kube-vertex-proxy"
gsa="vertex-proxy"
principal=false
role="roles/aiplatform.user"
job_sa=""
dry_run=false
team_identities=()

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while (($# > 0)); do
  case "$1" in
    --project) project="${2:?--project needs a value}"; shift 2 ;;
    --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --ksa) ksa="${2:?--ksa needs a value}"; shift 2 ;;
    --gsa) gsa="${2:?--gsa needs a value}"; shift 2 ;;
    --principal) principal=true; shift ;;
    --role) role="${2:?--role needs a value}"; shift 2 ;;
    --job-service-account) job_sa="${2:?--job-service-account needs a value}"; shift 2 ;;
    --team-identity) team_identities+=("${2:?--team-identity needs NAMESPACE=GSA}"); shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage 0 ;;
    *) echo "unknown argument: $1" >&2; usage 2 >&2 ;;
  esac
done
[[ -n "$project" ]] || { echo "--project is required" >&2; exit 2; }

# Runs a command, or only prints it with --dry-run.
run() {
  if [[ "$dry_run" == true ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

echo "== Vertex AI API"
run gcloud services enable aiplatform.googleapis.com --project "$project"

workload_pool="${project}.svc.id.goog"
if [[ "$principal" == true ]]; then
  if ! project_number="$(gcloud projects describe "$project" --format='value(projectNumber)' 2>/dev/null)" || [[ -z "$project_number" ]]; then
    [[ "$dry_run" == true ]] || { echo "cannot read the project number of ${project}" >&2; exit 1; }
    project_number="PROJECT_NUMBER"
  fi
  member="principal://iam.googleapis.com/projects/${project_number}/locations/global/workloadIdentityPools/${workload_pool}/subject/ns/${namespace}/sa/${ksa}"
  echo "== ${role} for the proxy's Kubernetes service account (${namespace}/${ksa}) as a Workload Identity Federation principal"
  run gcloud projects add-iam-policy-binding "$project" --member "$member" --role "$role" --condition None
  helm_values="serviceAccount.name=${ksa}"
else
  gsa_email="${gsa}@${project}.iam.gserviceaccount.com"
  echo "== Google service account ${gsa_email}"
  if gcloud iam service-accounts describe "$gsa_email" --project "$project" >/dev/null 2>&1; then
    echo "exists, kept"
  else
    run gcloud iam service-accounts create "$gsa" --project "$project" \
      --display-name "kube-vertex-proxy" \
      --description "The only holder of Vertex AI permissions for the cluster; used by kube-vertex-proxy through Workload Identity"
  fi
  member="serviceAccount:${gsa_email}"
  echo "== ${role} on ${project} for ${gsa_email}"
  run gcloud projects add-iam-policy-binding "$project" --member "$member" --role "$role" --condition None
  echo "== ${namespace}/${ksa} may act as ${gsa_email} (Workload Identity), and no other KSA"
  run gcloud iam service-accounts add-iam-policy-binding "$gsa_email" --project "$project" \
    --role roles/iam.workloadIdentityUser \
    --member "serviceAccount:${workload_pool}[${namespace}/${ksa}]"
  helm_values="serviceAccount.gcpServiceAccount=${gsa_email}"
fi

if [[ -n "$job_sa" ]]; then
  echo "== jobs created through the proxy may run as ${job_sa} (and only that service account)"
  run gcloud iam service-accounts add-iam-policy-binding "$job_sa" --project "$project" \
    --role roles/iam.serviceAccountUser --member "$member"
fi

for mapping in "${team_identities[@]}"; do
  team_ns="${mapping%%=*}"
  team_gsa="${mapping#*=}"
  if [[ "$mapping" != *=* || ! "$team_ns" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ || -z "$team_gsa" ]]; then
    echo "--team-identity: \"${mapping}\" is not NAMESPACE=GSA" >&2
    exit 2
  fi
  [[ "$team_gsa" == *@* ]] || team_gsa="${team_gsa}@${project}.iam.gserviceaccount.com"
  echo "== team identity for namespace ${team_ns}: ${team_gsa}"
  if gcloud iam service-accounts describe "$team_gsa" --project "$project" >/dev/null 2>&1; then
    echo "exists, kept"
  else
    run gcloud iam service-accounts create "${team_gsa%%@*}" --project "$project" \
      --display-name "kube-vertex-proxy team ${team_ns}" \
      --description "Vertex AI calls of namespace ${team_ns}, made by kube-vertex-proxy by impersonation"
  fi
  run gcloud projects add-iam-policy-binding "$project" --member "serviceAccount:${team_gsa}" --role "$role" --condition None
  echo "== the proxy may mint tokens for ${team_gsa} (and only that account)"
  run gcloud iam service-accounts add-iam-policy-binding "$team_gsa" --project "$project" \
    --role roles/iam.serviceAccountTokenCreator --member "$member"
  helm_values="${helm_values} --set teamIdentities.${team_ns}=${team_gsa}"
done

cat <<DONE

Done. Callers get no Google role: they call the proxy with their Kubernetes token.
Install the chart with (see README, "Install in a cluster"):
  --namespace ${namespace} --set ${helm_values}
DONE
