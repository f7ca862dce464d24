"""An in-process Kubernetes API for tests: kmock's emulator, made realistic enough for Kopf.

kmock 0.8's `KubernetesEmulator` is an in-memory object store behind Kubernetes-shaped URLs (discovery,
list, watch, create, merge/JSON patch, delete, finalizers). It stores objects exactly as posted, which is
not enough for an operator. `RealisticEmulator` rewrites requests before kmock's state machine sees them:

    stock kmock 0.8                               RealisticEmulator
    -------------------------------------------   ------------------------------------------------------
    no uid / resourceVersion / generation /       filled in on create; resourceVersion bumped on every
      creationTimestamp / namespace                 write, generation when .spec changes
    generateName -> 500                           random suffix, as the API server does
    failed JSON-patch `test` op -> 500            422, which Kopf reads as "conflict, retry next cycle"
    stale metadata.resourceVersion accepted       409 Conflict (merge patch and PUT)
    /status and /scale merged into the object     /status writes only .status (the main endpoint then
                                                    ignores .status); /scale speaks autoscaling/v1 Scale
                                                    through the CRD's specReplicasPath, statusReplicasPath
                                                    and labelSelectorPath
    PUT -> 404                                    full replace
    watch replays everything, never ends,         honours resourceVersion, timeoutSeconds, labelSelector,
      filters live events by the body's namespace   fieldSelector (metadata.name/namespace) and the URL
    list: resourceVersion "...", no selectors     numeric resourceVersion, kind `<Kind>List`, selectors
    no garbage collection                         ownerReferences cascade, synchronously
    request log holds rewritten requests          `writes()`: the requests as clients sent them
    keep-alive connections                        `Connection: close` on every response (see below)

Why Kopf needs this: it adds its finalizer with a JSON patch guarded by a `test` op on
metadata.resourceVersion (no resourceVersion -> 500 -> Kopf retries forever and handles nothing); it
resumes watches from the list's resourceVersion (a replaying watch re-delivers every object); it writes
status through /status when discovery advertises it; it posts Events with generateName; and its
"last-handled-configuration" diff relies on .spec, .metadata and .status living apart.

Kopf also treats every asyncio task started on its loop after it started as its own: at exit it waits
5 s for them, then cancels them. So the emulator closes each connection after its response (no idle
server-side connection tasks), and a test must not leave its own watch streams open across an operator's
exit on the same loop.

Entry points:

* `start_emulator(crds)`: async context manager for async tests; the emulator shares the test's loop.
* `EmulatorThread(crds)`: the same on its own loop in a daemon thread, for synchronous code (a router
  thread using the sync `kubernetes` client, `kopf.testing.KopfRunner`).
* `kube_client(url)`: an official-client `ApiClient` for the emulator (plain HTTP, no auth).

Resources are named `group/version/plural` (`apps/v1/deployments`, `alloy.dev/v1alpha1/alloymodels`) or
`version/plural` for the core group (`v1/pods`), as kmock names them.

Not emulated: admission/validation of objects (see `kube.crd_validation`), strategic-merge list merging
(treated as a merge patch: lists are replaced), server-side apply, propagationPolicy/orphaning and
blockOwnerDeletion, watch bookmarks, resourceVersion expiry (410 Gone), authentication/RBAC.
Uses kmock private attributes (`_objects`, `_lock`, `_buses`, `_resources`, `_requests`), so kmock is
pinned by what this was written against: 0.8.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import gzip
import importlib.resources
import re
import secrets
import string
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import aiohttp.web
import attrs
import jsonpatch
import kmock
import kubernetes
from kmock._internal import dicts as kmock_dicts  # the merge patch kmock itself applies

JSON = dict[str, Any]
Objects = list[JSON]  # aliases also keep `list` unambiguous in classes that define a list() method
ObjectKey = tuple[kmock.resource, str | None, str]
T = TypeVar("T")

UPDATE = kmock.action.UPDATE
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CRD_RESOURCE = "apiextensions.k8s.io/v1/customresourcedefinitions"
ALL_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})


class Call(NamedTuple):
    """One request as the client sent it (before the emulator rewrote it)."""

    method: str
    path: str


Calls = list[Call]


@dataclasses.dataclass(frozen=True)
class ScalePaths:
    """Where a resource keeps what its /scale subresource shows: a CRD's `subresources.scale`.

    Paths are the simple JSON paths CRDs use (`.spec.replicas`). `label_selector` None means the
    builtin workload convention: serialise the LabelSelector at `.spec.selector`."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None

    @classmethod
    def from_crd(cls, scale: Mapping[str, Any]) -> ScalePaths:
        # A CRD without labelSelectorPath has an empty selector, so "" (not None) marks "none".
        return cls(
            spec_replicas=scale.get("specReplicasPath", ".spec.replicas"),
            status_replicas=scale.get("statusReplicasPath", ".status.replicas"),
            label_selector=scale.get("labelSelectorPath", ""),
        )


# ----------------------------------------------------------------------------------------------------------
# Small pure helpers
# ----------------------------------------------------------------------------------------------------------


def now() -> str:
    """A timestamp in the API server's format (RFC 3339, seconds, Z)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_keys(json_path: str) -> list[str]:
    return [key for key in json_path.split(".") if key]


def dig(obj: Mapping[str, Any], json_path: str) -> Any:
    """The value at a simple JSON path (`.spec.replicas`), or None where any step is missing."""
    value: Any = obj
    for key in path_keys(json_path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def nest(json_path: str, value: Any) -> JSON:
    """A merge patch that sets `value` at a simple JSON path: `.spec.replicas` -> {spec: {replicas: v}}."""
    patch: Any = value
    for key in reversed(path_keys(json_path)):
        patch = {key: patch}
    if not isinstance(patch, dict):
        raise ValueError(f"not a path to a field: {json_path!r}")
    return patch


def selector_string(selector: Any) -> str:
    """Serialise a LabelSelector (matchLabels + matchExpressions) as the API server does for /scale."""
    if isinstance(selector, str) or not selector:
        return selector or ""
    terms = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, operator, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        terms.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                operator, f"!{key}"
            )
        )
    return ",".join(terms)


_TERM = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def labels_match(obj: Mapping[str, Any], selector: str | None) -> bool:
    """Whether `obj`'s labels satisfy a label selector string: `a=b,c!=d,e,!f,g in (x,y),h notin (z)`."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(str.strip, re.split(r",(?![^()]*\))", selector)):
        match = _TERM.match(term)
        if match is None:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message=f"bad selector: {term}")
        negated, key, op, value, set_op, values = match.groups()
        if op is not None:
            ok = (labels.get(key) == value) == (op != "!=")
        elif set_op is not None:
            choices = {choice.strip() for choice in values.split(",")}
            ok = (labels.get(key) in choices) == (set_op == "in")
        else:
            ok = (key in labels) != bool(negated)
        if not ok:
            return False
    return True


def fields_match(obj: Mapping[str, Any], selector: str | None) -> bool:
    """Whether `obj` satisfies a field selector (`metadata.name=x,metadata.namespace!=y`): equality only."""
    for term in filter(None, (selector or "").split(",")):
        parts = re.split(r"(!=|==|=)", term, maxsplit=1)
        if len(parts) != 3:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message=f"bad selector: {term}")
        field, op, value = parts
        actual = dig(obj, f".{field.strip()}")
        if (actual == value.strip()) != (op != "!="):
            return False
    return True


def api_version(resource: kmock.resource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


def resource_key(resource: str) -> kmock.resource:
    return kmock.resource(resource)


def resource_of(request: kmock.Request) -> kmock.resource:
    """The request's resource; only Kubernetes URLs reach the code that asks."""
    if request.resource is None:
        raise kmock.KubernetesEndpointNotFoundError()
    return request.resource


def object_key(request: kmock.Request) -> ObjectKey:
    """The (resource, namespace, name) of the object a request addresses."""
    if request.name is None:
        raise kmock.KubernetesEndpointNotFoundError()
    return resource_of(request), request.namespace, request.name


def unprocessable(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=422, reason="Invalid", message=message)


def conflict() -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=409,
        reason="Conflict",
        message="Operation cannot be fulfilled: the object has been modified; "
        "please apply your changes to the latest version and try again",
    )


# ----------------------------------------------------------------------------------------------------------
# The emulator
# ----------------------------------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class RealisticEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the API server behaviour Kopf relies on (see the module doc).

    Everything runs on the event loop that serves it; from another thread go through `EmulatorThread`."""

    cascade_deletion: bool = True
    _last_rv: int = attrs.field(default=0, init=False)  # the newest resourceVersion handed out
    _scale_paths: dict[kmock.resource, ScalePaths] = attrs.field(factory=dict, init=False)
    _calls: list[Call] = attrs.field(factory=list, init=False)

    # ---- public helpers (call them on the emulator's loop) ----------------------------------------------

    def register_crd(self, crd: Mapping[str, Any]) -> None:
        """Serve a CustomResourceDefinition: discovery, subresources and scale paths per served version.

        The CRD object itself is stored too, so `GET .../customresourcedefinitions/<name>` works."""
        spec, names = crd["spec"], crd["spec"]["names"]
        for version in spec["versions"]:
            if not version.get("served", True):
                continue
            resource = resource_key(f"{spec['group']}/{version['name']}/{names['plural']}")
            subresources = version.get("subresources") or {}
            self.resources[resource] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                shortnames=set(names.get("shortNames") or ()),
                categories=set(names.get("categories") or ()),
                verbs=set(ALL_VERBS),
                subresources=set(subresources) & {"status", "scale"},
            )
            if "scale" in subresources:
                self._scale_paths[resource] = ScalePaths.from_crd(subresources["scale"])
        stored = copy.deepcopy(dict(crd))
        stored["metadata"] = {**stored.get("metadata", {}), **self._new_metadata()}
        self._objects[resource_key(CRD_RESOURCE), None, stored["metadata"]["name"]] = stored

    def get_object(self, resource: str, namespace: str | None, name: str) -> JSON | None:
        """A copy of the live object, or None if absent or deleted."""
        key = (resource_key(resource), namespace, name)
        if key in self._objects and not self._objects[key].deleted:
            return copy.deepcopy(self._objects[key].raw)
        return None

    def list_objects(self, resource: str, namespace: str | None = None) -> Objects:
        """Copies of the live objects of a resource, in one namespace or (None) in all."""
        wanted = resource_key(resource)
        return [
            copy.deepcopy(obj.raw)
            for (res, ns, _), obj in self._objects.items()
            if res == wanted and not obj.deleted and namespace in (None, ns)
        ]

    def mark(self) -> int:
        """A position in the request log, for `writes(since=...)`."""
        return len(self._calls)

    def calls(self, since: int = 0) -> Calls:
        """All requests (method, path) since a `mark()`, as the clients sent them."""
        return self._calls[since:]

    def writes(self, since: int = 0, prefix: str = "/") -> Calls:
        """The POST/PUT/PATCH/DELETE requests since a `mark()` whose path starts with `prefix`.

        Kopf also writes Events (POST /api/v1/namespaces/<ns>/events) when it posts them."""
        return [
            call
            for call in self._calls[since:]
            if call.method in WRITE_METHODS and call.path.startswith(prefix)
        ]

    # ---- the interceptor ----------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response = await super().__call__(raw_request)
        # No keep-alive: Kopf, at exit, waits 5 s for every task started on its loop after it started and
        # then cancels it; an idle keep-alive connection's server task would be one of them.
        response.force_close()
        return response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._calls.append(Call(request.method.value, request.url.path))
        return await self._dispatch(request)

    async def _dispatch(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is None:  # not a Kubernetes URL: discovery, /version
            return await super()._handle(request)
        if request.subresource == "scale" and request.name:
            return await self._handle_scale(request)

        if request.action == kmock.action.CREATE:
            request = self._swap(request, self._prepare_create(request))
        elif request.method == "PUT" and request.name and request.subresource in (None, "status"):
            request = self._swap(request, self._prepare_put(request))
        elif request.action == UPDATE and request.subresource in (None, "status"):
            request = self._swap(request, self._prepare_patch(request))
        elif request.action == kmock.action.DELETE and request.name:
            self._bump_before_delete(request)

        response = await super()._handle(request)
        if request.action == kmock.action.CREATE and not response.prepared:
            response.set_status(201)  # the API server answers a create with 201 Created

        # Objects disappear on DELETE (no finalizers) or on the PATCH that removes the last finalizer.
        if self.cascade_deletion and request.name and request.action in (kmock.action.DELETE, UPDATE):
            await self._cascade()
        return response

    def _swap(self, old: kmock.Request, new: kmock.Request) -> kmock.Request:
        # kmock finds the reaction for a request BY IDENTITY in its request log, so a rewritten
        # (attrs.evolve'd) request must replace the original there, or kmock answers "no reaction".
        for index in range(len(self._requests) - 1, -1, -1):
            if self._requests[index] is old:
                self._requests[index] = new
                break
        else:
            self._requests.append(new)
        return new

    def _next_rv(self) -> str:
        self._last_rv += 1
        return str(self._last_rv)

    def _new_metadata(self) -> JSON:
        return {"uid": str(uuid.uuid4()), "resourceVersion": self._next_rv(), "creationTimestamp": now()}

    def _info(self, resource: kmock.resource | None) -> kmock.ResourceInfo | None:
        return self._resources[resource] if resource is not None and resource in self._resources else None

    def _has_subresource(self, resource: kmock.resource | None, subresource: str) -> bool:
        info = self._info(resource)
        return info is not None and subresource in info.subresources

    def _current(self, request: kmock.Request) -> JSON | None:
        key = object_key(request)
        if key in self._objects and not self._objects[key].deleted:
            return copy.deepcopy(self._objects[key].raw)
        return None

    # ---- create -------------------------------------------------------------------------------------------

    def _prepare_create(self, request: kmock.Request) -> kmock.Request:
        data = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        if not meta.get("name"):
            raise unprocessable("metadata.name: Required value: name or generateName is required")
        if request.namespace is not None:
            meta["namespace"] = request.namespace
        meta.update(self._new_metadata(), generation=1)
        meta.pop("deletionTimestamp", None)
        info = self._info(request.resource)
        if info is not None and info.kind:
            data.setdefault("kind", info.kind)
        data.setdefault("apiVersion", api_version(resource_of(request)))
        return attrs.evolve(request, data=data, name=None)

    # ---- patch --------------------------------------------------------------------------------------------

    def _prepare_patch(self, request: kmock.Request) -> kmock.Request:
        old = self._current(request)
        if old is None:
            return request  # kmock answers 404
        if isinstance(request.data, dict):
            data: Any = self._merge_patch(request, old, copy.deepcopy(request.data))
        elif isinstance(request.data, list):
            data = self._json_patch(request, old, copy.deepcopy(request.data))
        else:
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="unsupported patch body")
        return attrs.evolve(request, data=data)

    def _merge_patch(self, request: kmock.Request, old: JSON, data: JSON) -> JSON:
        """A merge patch (also strategic merge, approximated) with resourceVersion/generation bookkeeping."""
        expected_rv = (data.get("metadata") or {}).get("resourceVersion")
        if expected_rv is not None and expected_rv != old["metadata"].get("resourceVersion"):
            raise conflict()
        if request.subresource == "status":
            data = {"status": data["status"]} if "status" in data else {}
        elif self._has_subresource(request.resource, "status"):
            data.pop("status", None)
        new = kmock_dicts.patch_dict(old, data)
        meta = dict(data.get("metadata") or {}, resourceVersion=self._next_rv())
        if old.get("spec") != new.get("spec"):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        return {**data, "metadata": meta}

    def _json_patch(self, request: kmock.Request, old: JSON, ops: list[JSON]) -> list[JSON]:
        """A JSON patch; a failed `test` op is 422, which Kopf expects on a stale resourceVersion."""

        def touches_status(op: JSON) -> bool:
            return str(op.get("path", "")).startswith("/status")

        if request.subresource == "status":
            ops = [op for op in ops if op.get("op") == "test" or touches_status(op)]
        elif self._has_subresource(request.resource, "status"):
            ops = [op for op in ops if not touches_status(op)]
        try:
            new = jsonpatch.apply_patch(old, ops, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise unprocessable(str(error)) from error
        ops = [*ops, {"op": "add", "path": "/metadata/resourceVersion", "value": self._next_rv()}]
        if old.get("spec") != new.get("spec"):
            generation = old["metadata"].get("generation", 1) + 1
            ops.append({"op": "add", "path": "/metadata/generation", "value": generation})
        return ops

    # ---- put (replace) ------------------------------------------------------------------------------------

    def _prepare_put(self, request: kmock.Request) -> kmock.Request:
        """A full replace, expressed as a JSON patch of the root so kmock stores it as a new version."""
        old = self._current(request)
        if old is None:
            raise kmock.KubernetesObjectNotFoundError()
        body = copy.deepcopy(request.data) if isinstance(request.data, dict) else {}
        expected_rv = (body.get("metadata") or {}).get("resourceVersion")
        if expected_rv and expected_rv != old["metadata"].get("resourceVersion"):
            raise conflict()
        if request.subresource == "status":
            new = dict(old, status=body.get("status"))
        else:
            new = body
            if self._has_subresource(request.resource, "status"):
                new["status"] = old.get("status")
            new = {key: value for key, value in new.items() if value is not None}
        meta = new.setdefault("metadata", {})
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
        if old.get("spec") != new.get("spec"):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = self._next_rv()
        replace = [{"op": "replace", "path": "", "value": new}]
        return attrs.evolve(request, method="PATCH", action=UPDATE, subresource=None, data=replace)

    # ---- delete -------------------------------------------------------------------------------------------

    def _bump_before_delete(self, request: kmock.Request) -> None:
        """The API server bumps resourceVersion on (soft-)deletion; watchers see the new one."""
        key = object_key(request)
        if key in self._objects and not self._objects[key].deleted:
            meta = dict(self._objects[key].raw["metadata"])
            meta["resourceVersion"] = self._next_rv()
            self._objects[key]["metadata"] = meta

    async def _cascade(self) -> None:
        """Delete dependents whose owners (ownerReferences[].uid) are all gone: a synchronous GC."""
        changed = True
        while changed:
            changed = False
            alive = {obj.raw["metadata"].get("uid") for obj in self._objects.values() if not obj.deleted}
            gone = {
                obj.last.raw["metadata"].get("uid")
                for obj in self._objects.values()
                if obj.deleted and not obj.empty
            }
            for (resource, _, _), obj in list(self._objects.items()):
                if obj.deleted:
                    continue
                owners = {ref.get("uid") for ref in obj.raw["metadata"].get("ownerReferences") or []}
                if owners & gone and not owners & alive:
                    async with self._lock:
                        obj.delete()
                        await self._buses[resource].put({"type": "DELETED", "object": obj.last.raw})
                    changed = True

    # ---- scale subresource ------------------------------------------------------------------------------

    def scale_of(self, resource: kmock.resource, obj: Mapping[str, Any]) -> JSON:
        """The autoscaling/v1 Scale view of an object, through its resource's scale paths."""
        paths = self._scale_paths.get(resource, ScalePaths())
        meta = obj.get("metadata", {})
        if paths.label_selector is None:  # builtin workloads: the LabelSelector in .spec.selector
            selector = selector_string(dig(obj, ".spec.selector"))
        else:
            selector = (dig(obj, paths.label_selector) or "") if paths.label_selector else ""
        identity = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {key: meta[key] for key in identity if key in meta},
            "spec": {"replicas": dig(obj, paths.spec_replicas) or 0},
            "status": {"replicas": dig(obj, paths.status_replicas) or 0, "selector": selector},
        }

    async def _handle_scale(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        resource = resource_of(request)
        if not self._has_subresource(resource, "scale"):
            raise kmock.KubernetesNotFoundError(message=f"{resource.plural} has no scale subresource")
        old = self._current(request)
        if old is None:
            raise kmock.KubernetesObjectNotFoundError()
        if request.method == "GET":
            return aiohttp.web.json_response(self.scale_of(resource, old))
        if request.method not in ("PATCH", "PUT"):
            raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", message=request.method.value)
        replicas = self._scaled_replicas(self.scale_of(resource, old), request.data)
        paths = self._scale_paths.get(resource, ScalePaths())
        write = attrs.evolve(
            request,
            method="PATCH",
            action=UPDATE,
            subresource=None,
            data=nest(paths.spec_replicas, replicas),
        )
        await self._dispatch(self._swap(request, write))  # resourceVersion/generation bump, MODIFIED event
        return aiohttp.web.json_response(self.scale_of(resource, self._current(request) or old))

    def _scaled_replicas(self, scale: JSON, body: Any) -> int:
        if isinstance(body, list):
            try:
                scale = jsonpatch.apply_patch(scale, body, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise unprocessable(str(error)) from error
        elif isinstance(body, dict):
            scale = dict(kmock_dicts.patch_dict(scale, body))
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise unprocessable(f"spec.replicas: Invalid value: {replicas!r}")
        return replicas

    # ---- list & watch -------------------------------------------------------------------------------------

    def _visible(self, request: kmock.Request) -> Objects:
        """The live objects a list/watch request selects (resource, namespace, name, selectors)."""
        found = []
        for (resource, namespace, name), obj in self._objects.items():
            if obj.deleted or resource != request.resource:
                continue
            if request.namespace not in (None, namespace) or request.name not in (None, name):
                continue
            if self._selects(request, obj.raw):
                found.append(obj.raw)
        return found

    def _selects(self, request: kmock.Request, obj: Mapping[str, Any]) -> bool:
        return labels_match(obj, request.params.get("labelSelector")) and fields_match(
            obj, request.params.get("fieldSelector")
        )

    async def _serve_list(self, request: kmock.Request) -> JSON:
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        async with self._lock:
            items = self._visible(request)
            resource_version = str(self._last_rv)
        info = self._info(request.resource)
        return {
            "apiVersion": api_version(request.resource),
            "kind": f"{info.kind}List" if info is not None and info.kind else "List",
            "metadata": {"resourceVersion": resource_version},
            "items": items,
        }

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[Any]:
        yield b""  # send the headers now: a quiet watch is still an open stream
        since = request.params.get("resourceVersion") or ""
        since_rv = int(since) if since.isdigit() else 0
        timeout = request.params.get("timeoutSeconds")
        bus = self._buses[resource_of(request)]
        async with self._lock:
            # Mark the bus before the snapshot, so nothing written in between is lost.
            mark = await bus.mark()
            initial = [
                obj
                for obj in self._visible(request)
                if int(obj.get("metadata", {}).get("resourceVersion") or 0) > since_rv
            ]
        try:
            for obj in initial:
                yield {"type": "ADDED", "object": obj}
            async with asyncio.timeout(float(timeout) if timeout else None):
                async for event in mark:
                    obj = event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    if request.namespace not in (None, meta.get("namespace")):
                        continue
                    if request.name not in (None, meta.get("name")) or not self._selects(request, obj):
                        continue
                    yield event
        except TimeoutError:
            return  # timeoutSeconds: the stream ends normally, as the API server ends it
        finally:
            await bus.unmark(mark)


# ----------------------------------------------------------------------------------------------------------
# Running it
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Emulator:
    """A running emulator as seen from its own event loop (async tests): its URL and its state."""

    url: str  # http://127.0.0.1:<port>, no trailing slash
    emulator: RealisticEmulator

    def get(self, resource: str, namespace: str | None, name: str) -> JSON | None:
        """A copy of the live object, or None."""
        return self.emulator.get_object(resource, namespace, name)

    def list(self, resource: str, namespace: str | None = None) -> Objects:
        """Copies of the live objects of a resource (all namespaces when `namespace` is None)."""
        return self.emulator.list_objects(resource, namespace)

    def mark(self) -> int:
        """A position in the request log, for `writes(since=...)`."""
        return self.emulator.mark()

    def writes(self, since: int = 0, prefix: str = "/") -> Calls:
        """POST/PUT/PATCH/DELETE requests since `mark()` whose path starts with `prefix`."""
        return self.emulator.writes(since, prefix)


def load_builtin_resources(emulator: RealisticEmulator) -> None:
    """Declare the builtin kinds kmock bundles (a K3s dump: v1, apps/v1, rbac, events, CRDs...).

    Same as `resources.load_bundled()`, which calls the deprecated `importlib.resources.read_binary`
    and so fails under `-W error`."""
    bundle = importlib.resources.files("kmock._internal") / "resources.json.gz"
    emulator.resources.load_data(gzip.decompress(bundle.read_bytes()))


@contextlib.asynccontextmanager
async def start_emulator(crds: Iterable[Mapping[str, Any]] = ()) -> AsyncIterator[Emulator]:
    """Serve a `RealisticEmulator` on 127.0.0.1 (a free port) with the builtin kinds and `crds`."""
    async with RealisticEmulator() as emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        load_builtin_resources(emulator)
        for crd in crds:
            emulator.register_crd(crd)
        yield Emulator(url=str(server.url).rstrip("/"), emulator=emulator)


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread, for synchronous code.

    Use it where the code under test blocks (the sync `kubernetes` client, a router thread,
    `kopf.testing.KopfRunner`): a blocking call on the emulator's own loop would deadlock it. The helpers
    here run on the emulator's loop and are safe to call from any other thread."""

    def __init__(self, crds: Iterable[Mapping[str, Any]] = (), *, timeout: float = 10.0) -> None:
        self._crds = [copy.deepcopy(dict(crd)) for crd in crds]
        self._timeout = timeout
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: Emulator | None = None
        self._failure: Exception | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise RuntimeError(f"the emulator did not start within {self._timeout}s")
        if self._running is None:
            raise RuntimeError("the emulator failed to start") from self._failure
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(self._timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as error:  # noqa: BLE001 -- handed over to the thread waiting in __enter__
            self._failure = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with start_emulator(self._crds) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()

    @property
    def running(self) -> Emulator:
        if self._running is None:
            raise RuntimeError("the emulator is not running; use `with EmulatorThread(...)`")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def emulator(self) -> RealisticEmulator:
        """The emulator itself: touch it only through `call()` (it belongs to another thread's loop)."""
        return self.running.emulator

    def call(self, fn: Callable[[Emulator], T]) -> T:
        """Run `fn(running emulator)` on the emulator's loop and return its result."""
        if threading.current_thread() is self._thread or self._loop is None:
            raise RuntimeError("call() is for other threads; on the emulator's loop use it directly")
        running = self.running

        async def on_loop() -> T:
            return fn(running)

        return asyncio.run_coroutine_threadsafe(on_loop(), self._loop).result(self._timeout)

    def get(self, resource: str, namespace: str | None, name: str) -> JSON | None:
        """A copy of the live object, or None."""
        return self.call(lambda running: running.get(resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> Objects:
        """Copies of the live objects of a resource (all namespaces when `namespace` is None)."""
        return self.call(lambda running: running.list(resource, namespace))

    def mark(self) -> int:
        """A position in the request log, for `writes(since=...)`."""
        return self.call(lambda running: running.mark())

    def writes(self, since: int = 0, prefix: str = "/") -> Calls:
        """POST/PUT/PATCH/DELETE requests since `mark()` whose path starts with `prefix`."""
        return self.call(lambda running: running.writes(since, prefix))


def kube_client(url: str) -> kubernetes.client.ApiClient:
    """An official-client ApiClient for the emulator at `url` (plain HTTP, no credentials).

    Its calls block: from an async test run them with `asyncio.to_thread`, never on the emulator's loop."""
    return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
