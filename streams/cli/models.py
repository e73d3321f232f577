"""``aimass models``: a tenant's model graph, applied from a file, shown, or removed (back to
the default graph of ``AIMASS_MODELS`` / ``AIMASS_ENSEMBLES``). Faust's own ``models``
command (which lists Faust records) is replaced by this one."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import orjson
from faust.cli import argument, option

from streams.settings import Settings


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def register_models(app, settings: Settings) -> None:
    @app.command(argument("action", type=str),
                 argument("file", type=str, required=False, default=""),
                 option("--tenant", type=str, required=True, help="The tenant."),
                 option("--json", "as_json", is_flag=True, default=False, help="JSON output."))
    async def models(self, action: str, file: str, tenant: str, as_json: bool) -> None:
        """A tenant's model graph: `models apply SPEC.yaml --tenant T` (validates, then
        publishes it; workers rebuild the tenant's models), `models show --tenant T`,
        `models remove --tenant T` (back to the default graph)."""
        from streams.contracts.fields import InvalidEvent
        from streams.contracts.fields import tenant as valid_tenant
        from streams.control.audit import record, spec_event
        from streams.control.distribution import apply_spec, read_specs, version_of
        from streams.control.exceptions import SpecError
        from streams.control.specs import load
        from streams.serving.quotas import Quotas
        from streams.state.statefile import load_key
        from streams.training.trainer import settings_spec

        try:
            valid_tenant({"tenant": tenant})
        except InvalidEvent as exc:
            _fail(f"--tenant {exc}")
        key, actor = load_key(settings), f"cli:{getpass.getuser()}"
        if action == "apply":
            if not file:
                _fail("models apply needs a spec file (YAML or JSON)")
            try:
                spec = load(Path(file).read_bytes())
            except OSError as exc:
                _fail(f"{file}: {exc.strerror}")
            except SpecError as exc:
                _fail(f"{file}: {exc}")
            cap = Quotas.from_file(settings.tenants).limit(tenant, "max_models")
            if cap is not None and len(spec.members) > cap:
                _fail(f"{file}: members: {len(spec.members)} members, over the tenant's "
                      f"max_models quota ({int(cap)})")
            known = read_specs(settings, key)
            rec = apply_spec(settings, key, tenant, spec, actor, known)
            record(settings, spec_event(actor, tenant, spec, rec.version,
                                        version_of(known, tenant)))
            print(f"tenant {tenant!r}: model graph v{rec.version} applied "
                  f"({len(spec.members)} members, {len(spec.ensembles)} ensembles)")
        elif action == "show":
            rec = read_specs(settings, key).get(tenant)
            doc = rec.to_doc() if rec is not None else {
                "tenant": tenant, "version": 0, "default": True,
                "spec": settings_spec(settings).to_doc()}
            if as_json:
                print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
            else:
                import yaml

                print(yaml.safe_dump(doc, sort_keys=False), end="")
        elif action == "remove":
            known = read_specs(settings, key)
            if tenant not in known:
                _fail(f"tenant {tenant!r} has no model graph of its own")
            apply_spec(settings, key, tenant, None, actor, known)
            record(settings, spec_event(actor, tenant, None, 0, version_of(known, tenant)))
            print(f"tenant {tenant!r}: back to the default model graph")
        else:
            _fail(f"unknown action {action!r}: apply, show or remove")
