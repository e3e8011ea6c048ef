"""The compiled contracts committed under wallet/artifacts (built by `make contracts`).

Each artifact is the JSON `wallet/compile.js` writes: ABI, creation bytecode, compiler
settings and the keccak256 of every source file that went into it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
CONTRACT_NAMES = ("NTK", "JobMarket", "ModelMarket", "OrderMarket")
"""Contracts the app deploys; HostileToken is a test contract and is never deployed by the app."""


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    compiler: str

    def abi_list(self) -> list[dict[str, Any]]:
        return [dict(item) for item in self.abi]


@functools.lru_cache(maxsize=None)
def load(name: str, folder: Path = ARTIFACTS_DIR) -> Artifact:
    raw = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return Artifact(name=raw["contractName"], abi=tuple(raw["abi"]),
                    bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")), compiler=raw["compiler"]["solc"])


def all_abis(folder: Path = ARTIFACTS_DIR) -> list[list[dict[str, Any]]]:
    return [json.loads(p.read_text(encoding="utf-8"))["abi"] for p in sorted(folder.glob("*.json"))]
