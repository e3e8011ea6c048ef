"""`kminer settings`: read and change the settings from a terminal (headless rigs), with the
same checks as the settings dialog.

    kminer settings [show] [--json]          every setting as KEY = VALUE (devices included)
    kminer settings get KEY                  one value (as JSON with --json)
    kminer settings set KEY VALUE            checked, then saved atomically
    kminer settings unset KEY                back to the default
    kminer settings path                     where the file is

KEY is SECTION.FIELD (`jobs.sandbox`, `wallet.rpc_url`, `earnings.electricity_usd_per_kwh`) or
devices.DEVICE_KEY.FIELD for one device (`devices.cpu.price_floor_ntk_per_hour`; device keys as
`kminer devices` shows them). An empty VALUE clears an optional setting. Fields that are app
state (the window's geometry, the wallet's account) are not settings and are refused.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from typing import Any

from pydantic import ValidationError

from app.context import AppContext
from app.errors import UserError
from app.settings import DeviceSettings, Settings, is_hidden
from cli.commands.devices import make_service

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub) -> None:
    p = sub.add_parser("settings", help="show or change settings (same checks as the settings dialog)",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=_raw())
    p.set_defaults(handler=_show, json=False)
    s = p.add_subparsers(dest="settings_cmd", metavar="{show,get,set,unset,path}")
    show = s.add_parser("show", help="every setting as KEY = VALUE")
    show.add_argument("--json", action="store_true", help="the whole settings file as JSON")
    show.set_defaults(handler=_show)
    get = s.add_parser("get", help="one setting's value")
    get.add_argument("key", metavar="KEY")
    get.add_argument("--json", action="store_true", help="the value as JSON")
    get.set_defaults(handler=_get)
    st = s.add_parser("set", help="change one setting (checked, saved atomically)")
    st.add_argument("key", metavar="KEY")
    st.add_argument("value", metavar="VALUE", help="an empty string clears an optional setting")
    st.set_defaults(handler=_set)
    un = s.add_parser("unset", help="set one setting back to its default")
    un.add_argument("key", metavar="KEY")
    un.set_defaults(handler=_unset)
    s.add_parser("path", help="the settings file's path").set_defaults(handler=_path)


def _raw():
    return argparse.RawDescriptionHelpFormatter


def _ctx():
    return AppContext.open()


def _editable(model_cls) -> dict[str, Any]:
    return {n: f for n, f in model_cls.model_fields.items() if not is_hidden(f)}


def _locate(settings, key: str, *, create: bool = False):
    """(section object, its class, field name) for KEY; UserError when KEY names no setting."""
    parts = key.split(".")
    if parts[0] == "devices":
        if len(parts) != 3 or not parts[1]:
            raise UserError(f"{key}: device settings are devices.DEVICE_KEY.FIELD (e.g. devices.cpu.mode)")
        dkey = parts[1]
        if dkey not in settings.devices:
            if not create:
                raise UserError(f"{key}: no settings for device {dkey!r} yet (known: "
                                f"{', '.join(sorted(settings.devices)) or 'none'}; `kminer devices` lists device keys)")
            dkey = _device_key(dkey)
        section, cls, name = settings.device(dkey), DeviceSettings, parts[2]
    else:
        sections = {n for n, f in Settings.model_fields.items() if n not in ("devices", "schema_version")}
        if len(parts) != 2 or parts[0] not in sections:
            raise UserError(f"{key}: no such setting; keys are SECTION.FIELD with SECTION one of "
                            f"{', '.join(sorted(sections))}, or devices.DEVICE_KEY.FIELD")
        section = getattr(settings, parts[0])
        cls, name = type(section), parts[1]
    fields = _editable(cls)
    if name not in fields:
        hint = "is app state, not a setting" if name in cls.model_fields else "is not a setting"
        raise UserError(f"{key} {hint}; {'.'.join(parts[:-1])} has: {', '.join(fields)}")
    return section, cls, name


def _device_key(id_or_key: str) -> str:
    """The settings key of a device of this machine given by id (cpu, cuda:0) or key (GPU uuid)."""
    svc = make_service(AppContext.open())
    try:
        return svc.device(id_or_key).key
    except ValueError as e:
        raise UserError(str(e)) from None
    finally:
        svc.close()


def _rows(settings) -> list[tuple[str, Any, str]]:
    out = []
    for sec in Settings.model_fields:
        if sec in ("devices", "schema_version"):
            continue
        obj = getattr(settings, sec)
        for n, f in _editable(type(obj)).items():
            out.append((f"{sec}.{n}", getattr(obj, n), f.title or n))
    for dkey, dev in sorted(settings.devices.items()):
        for n, f in _editable(type(dev)).items():
            out.append((f"devices.{dkey}.{n}", getattr(dev, n), f.title or n))
    return out


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _show(args) -> int:
    ctx = _ctx()
    if args.json:
        print(ctx.settings.model_dump_json(indent=2))
        return 0
    rows = _rows(ctx.settings)
    width = max(len(k) for k, _, _ in rows)
    for key, value, title in rows:
        print(f"{key:<{width}} = {_text(value):<24} # {title}")
    return 0


def _get(args) -> int:
    ctx = _ctx()
    section, _, name = _locate(ctx.settings, args.key)
    value = getattr(section, name)
    print(json.dumps(value) if args.json else _text(value))
    return 0


def _store(ctx, key: str, section, cls, name: str, value: Any) -> Any:
    data = section.model_dump()
    data[name] = value
    try:
        new = cls.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{key}: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    setattr(section, name, getattr(new, name))
    ctx.save_settings()
    return getattr(new, name)


def _set(args) -> int:
    ctx = _ctx()
    section, cls, name = _locate(ctx.settings, args.key, create=True)
    field = cls.model_fields[name]
    raw: Any = args.value
    if not raw.strip():
        if field.is_required() or not _optional(field.annotation):
            raise UserError(f"{args.key} cannot be empty")
        raw = None
    elif field.annotation is bool:
        low = raw.strip().lower()
        if low not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise UserError(f"{args.key}: use true or false")
        raw = low in ("true", "yes", "on", "1")
    if args.key == "wallet.network":  # the URL of each network stays with it (WalletSettings.use_network)
        from wallet.networks import get_network

        try:
            get_network(raw or "")
        except ValueError as e:
            raise UserError(f"{args.key}: {e}") from None
        ctx.settings.wallet.use_network(raw)
        ctx.save_settings()
        value = raw
    else:
        value = _store(ctx, args.key, section, cls, name, raw)
    print(f"{args.key} = {_text(value)}  (saved to {ctx.paths.settings_file}; a running `kminer agent` takes it "
          "on its next pass; close the desktop app first, or it may write over it)")
    return 0


def _unset(args) -> int:
    ctx = _ctx()
    section, cls, name = _locate(ctx.settings, args.key, create=True)
    default = cls.model_fields[name].get_default(call_default_factory=True)
    value = _store(ctx, args.key, section, cls, name, default)
    print(f"{args.key} = {_text(value)}  (the default)")
    return 0


def _path(args) -> int:
    print(_ctx().paths.settings_file)
    return 0


def _optional(ann: Any) -> bool:
    return typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in typing.get_args(ann)
