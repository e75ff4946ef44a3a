"""The InfluxDB 2 management API for the loopback fake (tests/fake_influx2.py): ``/ping``,
organizations, buckets, DBRP mappings and tasks, as the API reference documents them.

Request shapes are checked: the query parameters each endpoint documents, a JSON body with
``Content-Type: application/json`` and only the documented fields, the required ones
present; a task's ``name`` and ``every`` come from the ``option task`` record of its Flux, as
the server takes them. Anything else is a violation (answered 400, recorded in
``violations``). The server's version answers in ``X-Influxdb-Version``.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, dict[str, str], bytes]

#: Query parameters each endpoint documents (GET).
_PARAMS = {
    "/api/v2/orgs": {"offset", "limit", "descending", "org", "orgID", "userID"},
    "/api/v2/buckets": {"offset", "limit", "after", "org", "orgID", "name", "id"},
    "/api/v2/dbrps": {"orgID", "org", "id", "bucketID", "default", "db", "rp"},
    "/api/v2/tasks": {"name", "after", "user", "org", "orgID", "status", "limit", "type"},
}
#: (documented body fields, required fields) of each write.
_BODIES = {
    ("POST", "/api/v2/buckets"): ({"orgID", "name", "description", "rp", "retentionRules",
                                  "schemaType"}, {"orgID", "name"}),
    ("PATCH", "/api/v2/buckets/{id}"): ({"name", "description", "retentionRules"}, set()),
    ("POST", "/api/v2/dbrps"): ({"orgID", "org", "bucketID", "database", "retention_policy",
                                "default"}, {"bucketID", "database", "retention_policy"}),
    ("POST", "/api/v2/tasks"): ({"orgID", "org", "status", "flux", "description"}, {"flux"}),
    ("PATCH", "/api/v2/tasks/{id}"): ({"status", "flux", "name", "every", "cron", "offset",
                                       "description"}, set()),
}
_TASK_OPTION = re.compile(r"option task = \{name: \"([^\"]+)\", every: (\w+)\}")


@dataclass
class Admin:
    token: str
    org: str
    bucket: str
    version: str = "v2.7.11"
    org_id: str = "0a1b2c3d4e5f6071"
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    dbrps: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    #: (method, path) of every changing request, in order
    changes: list[tuple[str, str]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(0x1000))

    def __post_init__(self) -> None:
        self._add_bucket(self.bucket, [])

    def _new_id(self) -> str:
        return f"{next(self._ids):016x}"

    def _add_bucket(self, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        bucket = {"id": self._new_id(), "orgID": self.org_id, "type": "user", "name": name,
                  "retentionRules": rules, "labels": [], "links": {}}
        self.buckets[bucket["id"]] = bucket
        return bucket

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], text: str) -> Answer:
        if path == "/ping" and method in ("GET", "HEAD"):
            return 204, {"X-Influxdb-Version": self.version}, b""
        if headers.get("authorization", "") != f"Token {self.token}":
            return _error(401, "unauthorized access")
        route = re.sub(r"^(/api/v2/(?:buckets|tasks))/[0-9a-f]{16}$", r"\1/{id}", path)
        problems = self._check(method, route, query, headers, text)
        if problems:
            self.violations.extend(problems)
            return _error(400, "; ".join(problems))
        body = json.loads(text) if text else {}
        if method != "GET":
            self.changes.append((method, route))
        handler = getattr(self, f"_{method.lower()}_{route.split('/')[3]}", None)
        if handler is None:
            return _error(404, f"path not found: {method} {path}")
        result: Answer = handler(query, body, path.rsplit("/", 1)[-1])
        return result

    def _check(self, method: str, route: str, query: dict[str, list[str]],
               headers: dict[str, str], text: str) -> list[str]:
        problems = []
        if method == "GET":
            extra = set(query) - _PARAMS.get(route, set())
            if extra:
                problems.append(f"{route}: undocumented query parameters {sorted(extra)}")
            return problems
        documented, required = _BODIES.get((method, route), (set(), set()))
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"{method} {route}: Content-Type must be application/json")
        try:
            body = json.loads(text)
        except ValueError:
            return [*problems, f"{method} {route}: the body is not JSON"]
        if not isinstance(body, dict):
            return [*problems, f"{method} {route}: the body is not a JSON object"]
        if extra := set(body) - documented:
            problems.append(f"{method} {route}: undocumented fields {sorted(extra)}")
        if required - set(body):
            problems.append(f"{method} {route}: missing fields {sorted(required - set(body))}")
        return problems

    # --- endpoints ----------------------------------------------------------------------

    def _get_orgs(self, query: dict[str, list[str]], _body: Any, _id: str) -> Answer:
        wanted = query.get("org", [self.org])[0]
        if wanted != self.org:
            return _error(404, f'organization name "{wanted}" not found')
        return _json(200, {"orgs": [{"id": self.org_id, "name": self.org}]})

    def _get_buckets(self, query: dict[str, list[str]], _body: Any, _id: str) -> Answer:
        found = [b for b in self.buckets.values()
                 if b["name"] == query.get("name", [b["name"]])[0]
                 and b["orgID"] == query.get("orgID", [b["orgID"]])[0]]
        return _json(200, {"buckets": found})

    def _post_buckets(self, _query: Any, body: dict[str, Any], _id: str) -> Answer:
        if any(b["name"] == body["name"] for b in self.buckets.values()):
            return _error(422, f"bucket with name {body['name']} already exists")
        return _json(201, self._add_bucket(body["name"], body.get("retentionRules") or []))

    def _patch_buckets(self, _query: Any, body: dict[str, Any], bucket_id: str) -> Answer:
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            return _error(404, "bucket not found")
        if "retentionRules" in body:
            bucket["retentionRules"] = body["retentionRules"]
        return _json(200, bucket)

    def _get_dbrps(self, query: dict[str, list[str]], _body: Any, _id: str) -> Answer:
        if "orgID" not in query and "org" not in query:
            return _error(400, "either org or orgID must be provided")
        found = [m for m in self.dbrps
                 if m["bucketID"] == query.get("bucketID", [m["bucketID"]])[0]]
        return _json(200, {"content": found})

    def _post_dbrps(self, _query: Any, body: dict[str, Any], _id: str) -> Answer:
        if body["bucketID"] not in self.buckets:
            return _error(404, "bucket not found")
        mapping = {"id": self._new_id(), "orgID": self.org_id, "bucketID": body["bucketID"],
                   "database": body["database"], "retention_policy": body["retention_policy"],
                   "default": bool(body.get("default")), "virtual": False}
        self.dbrps.append(mapping)
        return _json(201, mapping)

    def _get_tasks(self, query: dict[str, list[str]], _body: Any, _id: str) -> Answer:
        found = [t for t in self.tasks.values()
                 if t["name"] == query.get("name", [t["name"]])[0]]
        return _json(200, {"tasks": found})

    def _task_fields(self, flux: str) -> dict[str, str] | None:
        option = _TASK_OPTION.search(flux)
        return None if option is None else {"name": option.group(1), "every": option.group(2)}

    def _post_tasks(self, _query: Any, body: dict[str, Any], _id: str) -> Answer:
        fields = self._task_fields(body["flux"])
        if fields is None:
            return _error(400, "invalid options: no task option with name and every")
        task = {"id": self._new_id(), "orgID": self.org_id, "org": self.org,
                "status": body.get("status", "active"), "flux": body["flux"],
                "description": body.get("description", ""), **fields}
        self.tasks[task["id"]] = task
        return _json(201, task)

    def _patch_tasks(self, _query: Any, body: dict[str, Any], task_id: str) -> Answer:
        task = self.tasks.get(task_id)
        if task is None:
            return _error(404, "task not found")
        if "flux" in body:
            fields = self._task_fields(body["flux"])
            if fields is None:
                return _error(400, "invalid options: no task option with name and every")
            task.update(fields, flux=body["flux"])
        task.update({k: v for k, v in body.items() if k in ("status", "description")})
        return _json(200, task)


def _json(status: int, data: Any) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(data).encode()


def _error(status: int, message: str) -> Answer:
    codes = {400: "invalid", 401: "unauthorized", 404: "not found", 422: "conflict"}
    return _json(status, {"code": codes.get(status, "internal error"), "message": message})
