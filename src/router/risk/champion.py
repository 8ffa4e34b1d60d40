"""Where delay-risk models live and which version routes each network.

``models/delay_risk/<version>/`` holds one model (``model.skops``, ``card.json``,
``card.md``, ``reliability.png``). ``models/delay_risk/champions.json`` names the
champion of each network: ``{"<network key>": {"version": ..., "network": [scenario
names], "history": [...]}}``, the key being :func:`network_key` of the ids behind
the features' category codes. A router loads its network's champion by default;
a challenger replaces it only through :func:`promote` (``router train-risk
--from-ledger``), which keeps both versions and the verdict in the history.

The models folder is ``$ROUTER_MODELS_DIR`` when set, else ``models/`` at the
project root.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from router.errors import ModelLoadError
from router.network import Network
from router.risk.lane import LaneRiskModel, UnavailableRisk, network_domain

__all__ = ["champion_entry", "load_champion", "load_version", "models_dir", "network_key", "promote"]


def models_dir() -> Path:
    env = os.environ.get("ROUTER_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


def _registry_path(root: Path | None = None) -> Path:
    return (root or models_dir()) / "delay_risk" / "champions.json"


def network_key(net: Network) -> str:
    """A short stable key of the network's feature domain (node, region, carrier, service ids)."""
    blob = json.dumps(network_domain(net), sort_keys=True).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def _read_registry(root: Path | None = None) -> dict:
    path = _registry_path(root)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({exc}); restore it from version control") from None
    return data if isinstance(data, dict) else {}


def champion_entry(net: Network, root: Path | None = None) -> dict | None:
    return _read_registry(root).get(network_key(net))


def load_version(version: str, net: Network | None = None, root: Path | None = None) -> LaneRiskModel:
    """Load ``models/delay_risk/<version>``; ModelLoadError when it is missing or does not fit ``net``."""
    directory = (root or models_dir()) / "delay_risk" / version
    if not directory.is_dir():
        raise ModelLoadError(
            f"delay-risk model {version!r} is not in {directory.parent}: restore its folder, or train one "
            "with `router train-risk`"
        )
    return LaneRiskModel.load(directory, net)


def load_champion(net: Network, root: Path | None = None) -> LaneRiskModel | UnavailableRisk | None:
    """The network's champion; None when no model was ever trained for it (the analytic risk routes).

    A champion that is named but cannot be loaded (missing, corrupt, made for other
    features or another scikit-learn) comes back as :class:`UnavailableRisk`: routing
    goes on with the analytic risk and every record says why.
    """
    try:
        entry = champion_entry(net, root)
    except ModelLoadError as exc:
        return UnavailableRisk("champion", str(exc))
    if entry is None:
        return None
    version = str(entry.get("version"))
    try:
        return load_version(version, net, root)
    except ModelLoadError as exc:
        return UnavailableRisk(version, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure to load must leave routing working
        return UnavailableRisk(version, f"delay-risk model {version!r} could not be loaded: {type(exc).__name__}: {exc}")


def promote(net: Network, version: str, *, scenarios: list[str], verdict: dict, root: Path | None = None) -> dict:
    """Make ``version`` the network's champion; the previous one and the verdict go into the history."""
    path = _registry_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = _read_registry(root)
    key = network_key(net)
    old = registry.get(key) or {}
    history = list(old.get("history", []))
    history.append(
        {
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "champion": version,
            "previous": old.get("version"),
            "verdict": verdict,
        }
    )
    registry[key] = {"version": version, "scenarios": sorted(set(scenarios)), "history": history}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a reader sees the old or the new registry, never half of one
    return registry[key]
