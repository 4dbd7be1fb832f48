"""Calling Vertex AI through kube-vertex-proxy with the official Python client
(google-cloud-aiplatform), REST transport. Only the endpoint (the proxy's Service) and
the credential (the pod's projected token) change from a direct call.

    pip install google-cloud-aiplatform

    VERTEX_ENDPOINT     http://kube-vertex-proxy.vertex-system.svc
    VERTEX_TOKEN_FILE   /var/run/secrets/kube-vertex-proxy/token
    VERTEX_PROJECT, VERTEX_LOCATION, VERTEX_ENDPOINT_ID
"""
import json
import os

from google.auth import credentials as ga_credentials
from google.cloud import aiplatform_v1
from google.protobuf import json_format, struct_pb2

ENDPOINT = os.environ.get("VERTEX_ENDPOINT", "http://kube-vertex-proxy.vertex-system.svc")
TOKEN_FILE = os.environ.get("VERTEX_TOKEN_FILE", "/var/run/secrets/kube-vertex-proxy/token")
PROJECT = os.environ.get("VERTEX_PROJECT", "my-project")
LOCATION = os.environ.get("VERTEX_LOCATION", "us-central1")
ENDPOINT_ID = os.environ.get("VERTEX_ENDPOINT_ID", "1234567890")


class ProjectedToken(ga_credentials.Credentials):
    """The pod's projected service-account token, re-read on every refresh (the kubelet rotates it)."""

    def refresh(self, request):
        with open(TOKEN_FILE, encoding="utf-8") as f:
            self.token = f.read().strip()

    @property
    def expired(self):
        return True  # read the file for every call: it is cheap, and never stale

    @property
    def valid(self):
        return False


client = aiplatform_v1.PredictionServiceClient(
    transport="rest",  # the proxy speaks Vertex AI's REST API
    credentials=ProjectedToken(),
    client_options={"api_endpoint": ENDPOINT},
)
instance = json_format.ParseDict({"text": "hello"}, struct_pb2.Value())
response = client.predict(
    endpoint=f"projects/{PROJECT}/locations/{LOCATION}/endpoints/{ENDPOINT_ID}",
    instances=[instance],
)
print(json.dumps({"predictions": aiplatform_v1.PredictResponse.to_dict(response)["predictions"]}))
