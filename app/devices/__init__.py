"""The devices: every GPU and the CPU with modes, limits, telemetry and benchmarks (service),
and the user-away detector behind the `auto` mode (idle).

Other packages use these public names, never the modules inside (import-linter checks it).
gpu/'s types are re-exported for ui/, which imports app/ only.
"""

from app.devices.idle import IdleDetector, idle_backend_name
from app.devices.service import (MODES, NA, UNCHANGED, DeviceInfo, DeviceService, DeviceState, NAType, Telemetry,
                                 is_na, na_to_none)

__all__ = ["MODES", "NA", "UNCHANGED", "DeviceInfo", "DeviceService", "DeviceState", "IdleDetector", "NAType",
           "Telemetry", "idle_backend_name", "is_na", "na_to_none"]
