"""Streaming Gemini through kube-vertex-proxy with Google's Gen AI SDK for Python
(google-genai), Vertex AI mode. Only the base URL (the proxy's Service) and the
credential (the pod's projected token) change from a direct call; the proxy counts
the stream's tokens (audit record, metrics, token limits) as it passes.

    pip install google-genai

    VERTEX_ENDPOINT     http://kube-vertex-proxy.vertex-system.svc
    VERTEX_TOKEN_FILE   /var/run/secrets/kube-vertex-proxy/token
    VERTEX_PROJECT, VERTEX_LOCATION, VERTEX_MODEL
"""
import json
import os

from google import genai
from google.auth import credentials as ga_credentials
from google.genai import types

ENDPOINT = os.environ.get("VERTEX_ENDPOINT", "http://kube-vertex-proxy.vertex-system.svc")
TOKEN_FILE = os.environ.get("VERTEX_TOKEN_FILE", "/var/run/secrets/kube-vertex-proxy/token")
PROJECT = os.environ.get("VERTEX_PROJECT", "my-project")
LOCATION = os.environ.get("VERTEX_LOCATION", "us-central1")
MODEL = os.environ.get("VERTEX_MODEL", "gemini-2.5-flash")


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


client = genai.Client(
    vertexai=True,
    project=PROJECT,
    location=LOCATION,
    credentials=ProjectedToken(),
    http_options=types.HttpOptions(base_url=ENDPOINT),
)
chunks = []
usage = None
for chunk in client.models.generate_content_stream(model=MODEL, contents="Say hello in three words."):
    chunks.append(chunk.text or "")
    if chunk.usage_metadata is not None and chunk.usage_metadata.total_token_count is not None:
        usage = chunk.usage_metadata.total_token_count
print(json.dumps({"chunks": chunks, "totalTokenCount": usage}))
