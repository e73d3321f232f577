"""Who may call the serving API, for what, and for which tenants.

API keys live in a JSON file (``AIMASS_API_KEYS``), each with a name, a role and the tenants it
may touch (``"*"``: all). Only a key's SHA-256 is stored; the key itself is shown once, when it
is made (``aimass keys add``). A caller sends ``Authorization: Bearer KEY`` (or ``X-API-Key``).
Without a keys file the API is open (the embedded demo); with one, every call to a protected
endpoint needs a key, a role that allows the action, and the tenant in the key's list.

Roles (each includes the ones above it):

- ``viewer``: ``GET /models``, ``GET /tenants/{tenant}/models``, ``GET /cluster``,
  ``GET /tasks`` and ``GET /tasks/{id}`` (its tenants only),
  ``GET /metrics`` (a scrape key for Prometheus: a viewer key for ``*``);
- ``scorer``: ``POST /recommend``, ``/predict``, ``/noop``;
- ``trainer``: ``POST /examples`` (hand over labelled data), ``POST /tasks`` and
  ``POST /tasks/{id}/cancel`` (backfills and exports of its tenants);
- ``admin``: everything, every tenant, and ``PUT``/``DELETE /tenants/{tenant}/models`` (a
  tenant's model graph).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "keys.json"
>>> key = add_key(path, "ads-eu", "scorer", ["acme"])
>>> ac = AccessControl.from_file(path)
>>> who = ac.authenticate(f"Bearer {key}")
>>> who.name, who.may("recommend"), who.may("examples"), who.sees("acme"), who.sees("globex")
('ads-eu', True, False, True, False)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("viewer", "scorer", "trainer", "admin")
ACTIONS = {  # action -> the least role allowed
    "models": "viewer", "metrics": "viewer", "cluster": "viewer",
    "recommend": "scorer", "predict": "scorer", "noop": "scorer",
    "examples": "trainer", "tasks": "trainer",
    "specs": "admin",
}
#: the serving API's protected paths and the action each is (every other path is open)
PROTECTED = {"/recommend": "recommend", "/predict": "predict", "/noop": "noop",
             "/models": "models", "/examples": "examples", "/metrics": "metrics",
             "/cluster": "cluster",
             # tasks: submitted and cancelled by trainers, seen by viewers (of the tenant)
             ("POST", "/tasks"): "tasks", ("GET", "/tasks"): "models",
             ("GET", "/tasks/{id}"): "models", ("POST", "/tasks/{id}/cancel"): "tasks",
             # a tenant's model graph: shown to viewers, changed by admins
             ("GET", "/tenants/{tenant}/models"): "models",
             ("PUT", "/tenants/{tenant}/models"): "specs",
             ("DELETE", "/tenants/{tenant}/models"): "specs"}


class AccessDenied(Exception):
    """``status`` 401 (no or unknown key) or 403 (role or tenant not allowed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    tenants: frozenset[str] | None  # None: every tenant

    def may(self, action: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(ACTIONS[action])

    def sees(self, tenant: str) -> bool:
        return self.tenants is None or tenant in self.tenants

    def check(self, action: str, tenant: str | None = None) -> None:
        if not self.may(action):
            raise AccessDenied(403, f"key {self.name!r} (role {self.role}) may not {action}")
        if tenant is not None and not self.sees(tenant):
            raise AccessDenied(403, f"key {self.name!r} may not use tenant {tenant!r}")


OPEN = Principal("anonymous", "admin", None)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AccessControl:
    def __init__(self, entries: list[dict] | None):
        """``entries``: [{"name", "sha256", "role", "tenants"}]; None: the API is open."""
        self.open = entries is None
        self._by_digest: dict[str, Principal] = {}
        for e in entries or ():
            if e["role"] not in ROLES:
                raise ValueError(f"key {e['name']!r}: role must be one of {ROLES}")
            tenants = e.get("tenants") or []
            self._by_digest[e["sha256"]] = Principal(
                e["name"], e["role"], None if "*" in tenants else frozenset(tenants))

    @classmethod
    def from_file(cls, path: Path | None) -> AccessControl:
        if path is None:
            return cls(None)
        if not Path(path).exists():
            raise ValueError(f"{path}: no such API keys file (make one: aimass keys add NAME "
                             "--role R --tenant T)")
        try:
            return cls(json.loads(Path(path).read_text()).get("keys", []))
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path}: not an aimass API keys file ({exc})") from None

    def authenticate(self, authorization: str | None, api_key: str | None = None) -> Principal:
        if self.open:
            return OPEN
        key = api_key
        if key is None and authorization:
            scheme, _, value = authorization.partition(" ")
            key = value.strip() if scheme.lower() == "bearer" else None
        if not key:
            raise AccessDenied(401, "an API key is required: Authorization: Bearer KEY")
        digest = _digest(key)
        for known, who in self._by_digest.items():  # constant time per comparison
            if hmac.compare_digest(known, digest):
                return who
        raise AccessDenied(401, "unknown API key")


def add_key(path: Path, name: str, role: str, tenants: list[str]) -> str:
    """Make a key, store its digest in ``path`` (created if missing); returns the key."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not tenants:
        raise ValueError("a key needs at least one tenant (or '*')")
    path = Path(path)
    doc = json.loads(path.read_text()) if path.exists() else {"keys": []}
    if any(k["name"] == name for k in doc["keys"]):
        raise ValueError(f"a key named {name!r} exists already")
    key = secrets.token_urlsafe(32)
    doc["keys"].append({"name": name, "sha256": _digest(key), "role": role,
                        "tenants": sorted(set(tenants))})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    path.chmod(0o600)
    return key


def revoke_key(path: Path, name: str) -> dict:
    """Remove the key named ``name`` from ``path``; returns what it was (name, role, tenants).
    A replica reads the keys file when it starts: restart the replicas to apply it."""
    path = Path(path)
    doc = json.loads(path.read_text()) if path.exists() else {"keys": []}
    gone = [k for k in doc["keys"] if k["name"] == name]
    if not gone:
        raise ValueError(f"no key named {name!r}")
    doc["keys"] = [k for k in doc["keys"] if k["name"] != name]
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return {k: gone[0][k] for k in ("name", "role", "tenants")}


def list_keys(path: Path) -> list[dict]:
    """Names, roles and tenants (never digests)."""
    doc = json.loads(Path(path).read_text()) if Path(path).exists() else {"keys": []}
    return [{k: e[k] for k in ("name", "role", "tenants")} for e in doc["keys"]]
