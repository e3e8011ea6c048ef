"""The devices: every GPU and the CPU with modes, limits, telemetry and benchmarks (service),
the user-away detector behind the `auto` mode (idle), per-device pause, mining hours and
slowing down while in use (control), the watchdog of hung and lost GPUs (watchdog) and the
user's event script (hook).

Other packages use these public names, never the modules inside (import-linter checks it).
gpu/'s types are re-exported for ui/, which imports app/ only.
"""

from app.devices.control import STATE_WORDS, Hold, state_word
from app.devices.hook import HookRunner, hook_env
from app.devices.idle import IdleDetector, idle_backend_name
from app.devices.watchdog import Watchdog, WatchdogEvent
from app.devices.service import (MODES, NA, UNCHANGED, DeviceInfo, DeviceService, DeviceState, NAType, Telemetry,
                                 is_na, na_to_none)

__all__ = ["MODES", "NA", "STATE_WORDS", "state_word", "UNCHANGED", "DeviceInfo", "DeviceService", "DeviceState", "Hold", "HookRunner",
           "IdleDetector", "NAType", "Telemetry", "Watchdog", "WatchdogEvent", "hook_env", "idle_backend_name", "is_na",
           "na_to_none"]
