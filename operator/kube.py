"""The operator's calls to the Kubernetes API, through the official client.

The client is synchronous; Kopf runs the (sync) handlers that use it in its thread pool. Objects are
applied idempotently: an object whose `alloy.dev/spec-hash` already matches is left alone, so a
restarted operator writes nothing when everything is already right.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from alloy.operator.manifests import SPEC_HASH_ANNOTATION
from alloy.resource import API_VERSION, KIND, MODEL_LABEL

Object = dict[str, Any]


class KubeApi:
    def __init__(self, client: ApiClient) -> None:
        self._dynamic = DynamicClient(client)

    def _resource(self, api_version: str, kind: str) -> Any:
        return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: Object) -> bool:
        """Create the object, or replace it if its spec hash differs; True if anything was written."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        existing = self._get(resource, meta["namespace"], meta["name"])
        if existing is None:
            resource.create(body=manifest, namespace=meta["namespace"])
            return True
        annotations = existing.get("metadata", {}).get("annotations") or {}
        if annotations.get(SPEC_HASH_ANNOTATION) == meta["annotations"][SPEC_HASH_ANNOTATION]:
            return False
        body = copy.deepcopy(manifest)
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        if manifest["kind"] == "Service":  # the cluster IP is assigned once and immutable
            for field in ("clusterIP", "clusterIPs"):
                if field in existing.get("spec", {}):
                    body["spec"][field] = existing["spec"][field]
        resource.replace(body=body, namespace=meta["namespace"])
        return True

    def deployment(self, namespace: str, name: str) -> Object | None:
        return self._get(self._resource("apps/v1", "Deployment"), namespace, name)

    def pods(self, namespace: str, model_name: str) -> list[Object]:
        pods = self._resource("v1", "Pod").get(
            namespace=namespace, label_selector=f"{MODEL_LABEL}={model_name}"
        )
        items: list[Object] = pods.to_dict().get("items") or []
        return items

    def model(self, namespace: str, name: str) -> Object | None:
        return self._get(self._resource(API_VERSION, KIND), namespace, name)

    def patch_model_status(self, namespace: str, name: str, status: Object) -> None:
        """Merge `status` into the AlloyModel's status (fields it does not name are kept)."""
        self._resource(API_VERSION, KIND).status.patch(
            name=name,
            namespace=namespace,
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    @staticmethod
    def _get(resource: Any, namespace: str, name: str) -> Object | None:
        try:
            found: Object = resource.get(name=name, namespace=namespace).to_dict()
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found
