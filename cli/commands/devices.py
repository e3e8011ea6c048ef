"""`kminer devices`: list the devices with live readings; set a device's mode or limits.

    kminer devices [--json]
    kminer devices set-mode ID idle|mining|auto
    kminer devices set-limits ID [--max-temp C] [--max-power W | --no-power-limit]
    kminer devices pause ID | resume ID
    kminer devices schedule [show | set HOURS | clear] [--device ID]
    kminer devices while-in-use stop|slow [--device ID]

ID is "cpu", "cuda:N", "amd:N" or a GPU uuid. HOURS: weekly mining hours such as
"mon-fri 23:00-07:00; sat,sun" (see common/schedule.py); a running `kminer agent` takes them
at its next pass. JSON output is a list with one object per device
(readings a device does not report are null).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

from app.context import AppContext
from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).

# Wait this long between discovery and the reading, so the CPU load figure covers a real interval.
_LOAD_WINDOW_S = 0.25


def register(sub: Any) -> None:
    p = sub.add_parser("devices", help="list devices with live readings; set their mode or limits",
                       description="List every device (NVIDIA GPUs and the CPU) with its mode and live readings.")
    p.add_argument("--json", action="store_true", help="print JSON (one object per device)")
    p.set_defaults(handler=list_devices)
    acts = p.add_subparsers(dest="devices_action", metavar="ACTION")
    sm = acts.add_parser("set-mode", help="put a device in idle, mining or auto mode",
                         description="Put a device in idle (never mine), mining (always) or auto "
                                     "(only while you are away) mode. Saved in the settings.")
    sm.add_argument("device", metavar="ID", help='"cpu", "cuda:N" or a GPU uuid')
    sm.add_argument("mode", choices=["idle", "mining", "auto"])
    sm.set_defaults(handler=set_mode)
    sl = acts.add_parser("set-limits", help="set a device's temperature and power limits",
                         description="Above these limits a device is throttled (its job paused) until it cools down.")
    sl.add_argument("device", metavar="ID", help='"cpu", "cuda:N" or a GPU uuid')
    sl.add_argument("--max-temp", type=float, metavar="C", help="maximum temperature in °C (30-110)")
    power = sl.add_mutually_exclusive_group()
    power.add_argument("--max-power", type=float, metavar="W", help="maximum power draw in W")
    power.add_argument("--no-power-limit", action="store_true", help="remove the power limit")
    sl.set_defaults(handler=set_limits)
    for name, helptext in (("pause", "pause one device: no new job, its running job paused"),
                           ("resume", "resume a paused device")):
        pp = acts.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] +
                             ". Saved in the settings; a running agent honours it at its next pass.")
        pp.add_argument("device", metavar="ID", help='"cpu", "cuda:N", "amd:N" or a GPU uuid')
        pp.set_defaults(handler=pause_device, paused=name == "pause")
    sc = acts.add_parser("schedule", help="show or set the weekly mining hours (tariff windows)",
                         description="Devices take new jobs only within these hours; a job running when the "
                                     "window closes finishes. Example: \"mon-fri 23:00-07:00; sat,sun\".")
    sc.add_argument("schedule_action", nargs="?", choices=["show", "set", "clear"], default="show")
    sc.add_argument("hours", nargs="?", metavar="HOURS", help='e.g. "mon-fri 23:00-07:00; sat,sun" (for set)')
    sc.add_argument("--device", metavar="ID", help="one device's own hours (default: the whole rig's)")
    sc.add_argument("--json", action="store_true", help="print JSON")
    sc.set_defaults(handler=schedule)
    iu = acts.add_parser("while-in-use", help="in auto mode, stop or slow down while you use the PC",
                         description="stop: a device in auto mode works only while you are away; slow: it keeps "
                                     "working at a lower power limit (where the driver allows) or with fewer jobs.")
    iu.add_argument("policy", choices=["stop", "slow"])
    iu.add_argument("--device", metavar="ID", help="one device (default: the rig's default)")
    iu.set_defaults(handler=while_in_use)


def make_service(ctx: Any) -> Any:
    """The DeviceService the commands use (tests replace this to pass an NVML stand-in)."""
    from app.devices import DeviceService

    return DeviceService(ctx)


def _open() -> Any:
    ctx = AppContext.open()  # cli.main prints the settings notices
    return make_service(ctx)


def state_json(state: Any) -> dict[str, Any]:
    """One device as a JSON object: its info fields, mode, activity, limits and telemetry."""
    out: dict[str, Any] = state.info.to_json()
    out.update(mode=state.mode, active=state.active, throttled=state.throttled,
               throttle_reason=state.throttle_reason, max_temp_c=state.max_temp_c, max_power_w=state.max_power_w,
               telemetry=state.telemetry.to_json() if state.telemetry is not None else None)
    hold = getattr(state, "hold", None)
    out.update(hold=None if hold is None else {"source": hold.source, "reason": hold.reason, "until": hold.until},
               slowed=getattr(state, "slowed", None))
    return out


def _state_word(s: Any) -> str:
    from app.devices import state_word

    return state_word(s).replace("_", "-").replace("mining", "active")


def _n(v: Any, fmt: str = "{:.0f}", unit: str = "") -> str:
    return (fmt.format(v) + unit) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def _link(info: Any) -> str:
    if not isinstance(info.pcie_width, int):
        return "-"
    text = f"gen{info.pcie_gen} x{info.pcie_width}"
    if isinstance(info.pcie_max_width, int) and info.pcie_max_width > info.pcie_width:
        text += f" (of x{info.pcie_max_width})"
    return text


def list_devices(args: argparse.Namespace) -> int:
    svc = _open()
    try:
        time.sleep(_LOAD_WINDOW_S)
        states = svc.poll()
        away = svc.user_away()
    finally:
        svc.close()
    if svc.message:
        print(f"kminer: {svc.message}", file=sys.stderr)
    if args.json:
        print(json.dumps([state_json(s) for s in states], indent=2))
        return 0
    rows = [("ID", "NAME", "MODE", "STATE", "UTIL", "MEMORY", "TEMP", "POWER", "PCIE")]
    for s in states:
        t = s.telemetry
        state = _state_word(s)
        mem = f"{_n(t.mem_used_mb)}/{_n(t.mem_total_mb)} MiB" if t else "-"
        rows.append((s.info.id, s.info.name, s.mode, state, _n(t.util_pct, unit="%") if t else "-", mem,
                     _n(t.temp_c, unit=" °C") if t else "-", _n(t.power_w, unit=" W") if t else "-",
                     _link(s.info)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for s in states:
        if s.throttle_reason:
            print(f"{s.info.id}: throttled: {s.throttle_reason}")
        for note in (getattr(s, "hold", None) and s.hold.reason, getattr(s, "slowed", None),
                     getattr(s.info, "capability_note", None)):
            if note:
                print(f"{s.info.id}: {note}")
    print("user away: " + {True: "yes", False: "no", None: "unknown (auto mode stays idle)"}[away])
    return 0


def _using_service(change: Callable[[Any], Any]) -> Any:
    """Open the devices, apply `change(service)`, close; a ValueError becomes a one-line UserError."""
    svc = _open()
    try:
        return change(svc)
    except ValueError as e:
        raise UserError(str(e)) from None
    finally:
        svc.close()


def set_mode(args: argparse.Namespace) -> int:
    info = _using_service(lambda svc: (svc.set_mode(args.device, args.mode), svc.device(args.device))[1])
    print(f"{info.id} ({info.name}): mode {args.mode}")
    return 0


def set_limits(args: argparse.Namespace) -> int:
    from app.devices import UNCHANGED

    if args.max_temp is None and args.max_power is None and not args.no_power_limit:
        raise UserError("nothing to set; give --max-temp, --max-power or --no-power-limit")
    svc = _open()
    try:
        power = None if args.no_power_limit else (args.max_power if args.max_power is not None else UNCHANGED)
        svc.set_limits(args.device, max_temp_c=args.max_temp, max_power_w=power)
        s = svc.state(args.device)
    except ValueError as e:
        raise UserError(str(e)) from None
    finally:
        svc.close()
    power_text = f"{s.max_power_w:g} W" if s.max_power_w is not None else "no limit"
    print(f"{s.info.id} ({s.info.name}): max temperature {s.max_temp_c:g} °C, max power {power_text}")
    return 0


def pause_device(args: argparse.Namespace) -> int:
    info = _using_service(lambda svc: (svc.set_paused(args.device, args.paused), svc.device(args.device))[1])
    print(f"{info.id} ({info.name}): {'paused' if args.paused else 'resumed'}")
    return 0


def schedule(args: argparse.Namespace) -> int:
    if args.schedule_action == "set" and not (args.hours or "").strip():
        raise UserError('give the hours, e.g. kminer devices schedule set "mon-fri 23:00-07:00; sat,sun"')
    if args.schedule_action != "set" and args.hours:
        raise UserError(f"unexpected {args.hours!r}; did you mean: kminer devices schedule set {args.hours!r}")
    def change(svc: Any) -> tuple[Any, list]:
        if args.schedule_action in ("set", "clear"):
            svc.set_schedule(args.device, args.hours if args.schedule_action == "set" else None)
        if args.device:
            svc.device(args.device)
        return svc.ctx.settings.control, svc.states()

    control, states = _using_service(change)
    rows = [(s.info.id, control.device_schedules.get(s.info.key), s.hold.reason if s.hold and
             s.hold.source == "schedule" else None) for s in states]
    if args.json:
        print(json.dumps({"rig": control.schedule, "devices": [{"device": d, "own": own, "now": now}
                                                             for d, own, now in rows]}, indent=2))
        return 0
    print(f"rig: {control.schedule or 'any time'}")
    for d, own, now in rows:
        print(f"{d}: {own if own is not None else '(the rig’s)'}" + (f"  — {now}" if now else ""))
    return 0


def while_in_use(args: argparse.Namespace) -> int:
    who = _using_service(lambda svc: (svc.set_in_use(args.device, args.policy),
                                      svc.device(args.device).id if args.device else "rig default")[1])
    print(f"{who}: {args.policy} while you use the PC (devices in auto mode)")
    return 0
