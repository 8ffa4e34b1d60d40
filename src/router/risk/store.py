"""Saving and loading a delay-risk model with its model card.

A model directory (``models/delay_risk/<version>/``) holds:

- ``model.skops``: the fitted estimator in skops format. A pickle runs arbitrary code
  when loaded; a skops file is rebuilt node by node and only from types the loader
  trusts, so :func:`load_model` checks the file's types against :data:`TRUSTED_TYPES`
  before building anything and never passes ``trusted=True``.
- ``card.json``: the model card (what the model is, the features in order with their
  dtypes, the training data's hash, time range and size, library versions, the exact
  command, metrics against the baselines), sorted keys, indent 2.
- ``card.md``: the same card as readable markdown, and ``reliability.png`` when given.

The card is what :func:`load_model` checks before trusting the model: a model fitted on
other features or with another scikit-learn cannot be used, and the error says so
instead of scoring lanes with garbage.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io as sio

from router.errors import ModelLoadError

__all__ = [
    "CARD_JSON",
    "CARD_MD",
    "MODEL_FILE",
    "RELIABILITY_PNG",
    "TRUSTED_TYPES",
    "card_features",
    "data_hash",
    "library_versions",
    "load_model",
    "render_card",
    "save_model",
]

MODEL_FILE = "model.skops"
CARD_JSON = "card.json"
CARD_MD = "card.md"
RELIABILITY_PNG = "reliability.png"

TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # our estimators: plain attribute containers around scikit-learn objects
        "router.risk.model.DelayRiskModel",
        "router.risk.model.LaneHistory",  # arrays and ints: each lane's transit bias
        "router.risk.baselines.LogisticBaseline",
        # the boosted trees' nodes, bin edges and loss (arrays and scalars only)
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        # HistGradientBoostingClassifier with categorical features validates its numeric
        # columns through FunctionTransformer(partial(check_array, ...)); a partial is
        # only as safe as what it wraps, and skops audits the wrapped function separately
        "functools.partial",
        "sklearn.utils.validation.check_array",
        # OneHotEncoder(dtype=np.float64) in the logistic baseline
        "numpy.dtype",
    }
)
"""Types a model file may hold beyond those skops trusts by default; each one vetted by hand.

A model that needs another type fails to load with its name in the message; vet the
type (does building it run code beyond setting attributes?) before adding it here.
"""

_CARD_FORMAT = 1


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a saved model depends on, for its card.

    numba is read from the installed package's metadata rather than imported: importing
    it costs seconds and it lives only in the compiled-inference module.
    """

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    # the package is imported before any of its modules; `import router` here would add
    # an edge risk -> router -> engine, upward through the layers
    router_version = getattr(sys.modules.get("router"), "__version__", "unknown")
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skops": version("skops"),
        "numba": version("numba"),
        "router": router_version,
    }


def data_hash(X, y, times=None) -> str:
    """blake2b (32-byte digest, hex) over the training arrays' dtypes, shapes and bytes.

    Shape and dtype go into the hash so that the same bytes read as another matrix do not
    collide; ``times`` may be None (hashed as absent, not as an empty array).
    """
    h = hashlib.blake2b(digest_size=32)
    for name, arr in (("X", X), ("y", y), ("times", times)):
        h.update(name.encode())
        if arr is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def card_features(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The card's features as (name, dtype) pairs, in order; accepts dicts or pairs in the JSON."""
    out = []
    for f in card.get("features") or []:
        if isinstance(f, Mapping):
            out.append((str(f["name"]), str(f["dtype"])))
        else:
            name, dtype = f
            out.append((str(name), str(dtype)))
    return out


def _model_features(model) -> list[tuple[str, str]] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    names = [str(n) for n in names]
    cats = getattr(model, "categorical_features", None)
    cat_set: set[str] = set()
    if cats is not None:
        items = list(cats)
        if items and all(isinstance(c, (bool, np.bool_)) for c in items):
            cat_set = {n for n, c in zip(names, items) if c}
        else:
            cat_set = {c if isinstance(c, str) else names[int(c)] for c in items}
    return [(n, "category" if n in cat_set else "float64") for n in names]


def _complete_card(model, card: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(card)
    out.setdefault("card_format", _CARD_FORMAT)
    out.setdefault("estimator", f"{type(model).__module__}.{type(model).__qualname__}")
    if "params" not in out and hasattr(model, "get_params"):
        out["params"] = {k: v for k, v in model.get_params(deep=False).items() if _is_jsonable(v)}
    out.setdefault("libraries", library_versions())
    fitted = _model_features(model)
    if "features" not in out:
        if fitted is None:
            raise ValueError("the card lists no features and the model has no feature_names_in_; add card['features']")
        out["features"] = [{"name": n, "dtype": d} for n, d in fitted]
    elif fitted is not None:
        names = [n for n, _ in card_features(out)]
        if names != [n for n, _ in fitted]:
            raise ValueError(
                f"card['features'] names {names} differ from the model's feature_names_in_ {[n for n, _ in fitted]}"
            )
    return out


def _is_jsonable(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _fmt(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4f}"
    if value is None:
        return "-"
    return str(value)


def render_card(card: Mapping[str, Any], *, reliability_image: str | None = None) -> str:
    """The card as markdown: model, features, training data, libraries, command, metrics, diagram.

    Known keys: ``name``, ``version``, ``description``, ``estimator``, ``params``,
    ``features``, ``training_data`` (``hash``, ``time_range``, ``rows``, ``positives``,
    ``scenarios``, ``seeds``), ``libraries``, ``command``, ``metrics`` (model name ->
    metric name -> value; the first entry is the model, the rest its baselines) and
    ``notes``. Missing sections are left out.
    """
    title = card.get("name", "Delay-risk model")
    if card.get("version"):
        title += f" {card['version']}"
    lines = [f"# {title}", ""]
    lines.append(
        card.get(
            "description",
            "Predicts, per (node, carrier option) lane of an order, the probability that the parcel "
            "arrives after its promised date.",
        )
    )
    lines.append("")
    if card.get("estimator"):
        lines.append(f"Estimator: `{card['estimator']}`.")
        lines.append("")
    if card.get("params"):
        lines += ["## Hyper-parameters", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | `{v!r}` |" for k, v in sorted(card["params"].items())]
        lines.append("")
    feats = card_features(card)
    if feats:
        lines += ["## Features", "", "| # | name | dtype |", "|---|---|---|"]
        lines += [f"| {i} | `{n}` | {d} |" for i, (n, d) in enumerate(feats)]
        lines.append("")
    data = card.get("training_data")
    if data:
        lines += ["## Training data", "", "| field | value |", "|---|---|"]
        known = ("hash", "time_range", "rows", "positives", "scenarios", "seeds")
        for key in known + tuple(k for k in sorted(data) if k not in known):
            if key not in data:
                continue
            value = data[key]
            if key == "time_range" and isinstance(value, (list, tuple)) and len(value) == 2:
                value = f"{value[0]} to {value[1]}"
            elif isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value)
            shown = f"`{value}`" if key == "hash" else _fmt(value)
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    if card.get("libraries"):
        lines += ["## Libraries", "", "| library | version |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(card["libraries"].items())]
        lines.append("")
    if card.get("command"):
        lines += ["## Command", "", "```sh", str(card["command"]), "```", ""]
    metrics = card.get("metrics")
    if metrics:
        names = list(metrics)
        cols: list[str] = []
        for m in metrics.values():
            cols += [c for c in m if c not in cols]
        lines += ["## Metrics", ""]
        lines.append("| metric | " + " | ".join(names) + " |")
        lines.append("|---|" + "---|" * len(names))
        for c in cols:
            lines.append(f"| {c} | " + " | ".join(_fmt(metrics[n].get(c)) for n in names) + " |")
        lines.append("")
    if reliability_image:
        lines += ["## Reliability", "", f"![Reliability diagram]({reliability_image})", ""]
    if card.get("notes"):
        lines += ["## Notes", "", str(card["notes"]), ""]
    return "\n".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    # a reader never sees half a file: write aside, then rename over
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    model,
    directory: str | os.PathLike[str],
    card: Mapping[str, Any],
    *,
    reliability_png: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model.skops``, ``card.json``, ``card.md`` (and ``reliability.png``) into ``directory``.

    The card is completed with what the model itself tells (``estimator``, JSON-able
    ``params``, ``features`` from ``feature_names_in_`` with dtype ``category`` for the
    categorical columns, ``libraries`` from :func:`library_versions`) unless the caller
    gave them; a caller's feature list must name the model's features in order.
    ``card.json`` is written last, so a directory with a card holds a complete model.
    An existing model is kept unless ``overwrite``: a published version must not change
    under the routers that loaded it.

    Returns the directory.
    """
    out = Path(directory)
    full = _complete_card(model, card)
    if not overwrite and ((out / MODEL_FILE).exists() or (out / CARD_JSON).exists()):
        raise FileExistsError(f"{out} already holds a model; save a new version elsewhere or pass overwrite=True")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / MODEL_FILE, sio.dumps(model))
    if reliability_png is not None:
        _write_atomic(out / RELIABILITY_PNG, bytes(reliability_png))
    else:
        (out / RELIABILITY_PNG).unlink(missing_ok=True)
    image = RELIABILITY_PNG if reliability_png is not None else None
    _write_atomic(out / CARD_MD, render_card(full, reliability_image=image).encode())
    _write_atomic(out / CARD_JSON, (json.dumps(full, sort_keys=True, indent=2) + "\n").encode())
    return out


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def load_model(
    directory: str | os.PathLike[str], *, features: Sequence[tuple[str, str]] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The model and card saved in ``directory``, after checking they can be used here.

    Parameters
    ----------
    directory : a directory written by :func:`save_model`.
    features : the (name, dtype) pairs, in order, the caller will build X from; the
        card's feature list must equal it. None skips that check.

    Raises
    ------
    ModelLoadError
        When a file is missing, the card or the model file is unreadable, the features
        differ, the scikit-learn major.minor version differs from the installed one, or
        the model file holds a type outside :data:`TRUSTED_TYPES` and skops' defaults.
    """
    where = Path(directory)
    if not where.is_dir():
        raise ModelLoadError(
            where, f"model directory {where} does not exist; pass the directory save_model wrote (it holds {MODEL_FILE} and {CARD_JSON})."
        )
    for name in (CARD_JSON, MODEL_FILE):
        if not (where / name).is_file():
            raise ModelLoadError(
                where, f"{name} is missing from model directory {where}; save the model again with save_model, which writes {MODEL_FILE} and {CARD_JSON} together."
            )
    try:
        card = json.loads((where / CARD_JSON).read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise ValueError(f"the top level is a {type(card).__name__}, not an object")
        saved_features = card_features(card)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            where, f"{CARD_JSON} in {where} is unreadable ({exc}); save the model again with save_model."
        ) from exc

    saved_sklearn = str((card.get("libraries") or {}).get("scikit-learn", ""))
    if not saved_sklearn:
        raise ModelLoadError(
            where, f"{CARD_JSON} in {where} does not record the scikit-learn version the model was saved with; save the model again with save_model."
        )
    if _major_minor(saved_sklearn) != _major_minor(sklearn.__version__):
        raise ModelLoadError(
            where,
            f"the model in {where} was saved with scikit-learn {saved_sklearn} but {sklearn.__version__} is installed; "
            f"retrain and save it with scikit-learn {_major_minor(sklearn.__version__)}, or install scikit-learn {_major_minor(saved_sklearn)}.",
        )

    if features is not None:
        wanted = [(str(n), str(d)) for n, d in features]
        _check_features(where, saved_features, wanted)

    path = where / MODEL_FILE
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zip, JSON and key errors alike for a damaged file
        raise ModelLoadError(
            where, f"{MODEL_FILE} in {where} is corrupt or not a skops file ({type(exc).__name__}: {exc}); restore it or save the model again."
        ) from exc
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise ModelLoadError(
            where,
            f"{MODEL_FILE} in {where} holds types outside the trusted allow-list ({', '.join(refused)}); "
            "do not load it unless you vetted these types and added them to router.risk.store.TRUSTED_TYPES.",
        )
    try:
        model = sio.load(path, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelLoadError(
            where, f"{MODEL_FILE} in {where} could not be rebuilt ({type(exc).__name__}: {exc}); restore it or save the model again."
        ) from exc

    fitted = _model_features(model)
    if fitted is not None and [n for n, _ in fitted] != [n for n, _ in saved_features]:
        raise ModelLoadError(
            where, f"{CARD_JSON} in {where} lists other features than the model in {MODEL_FILE} was fitted on; the two files do not belong together, save the model again."
        )
    return model, card


def _check_features(where: Path, saved: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> None:
    for i, (s, w) in enumerate(zip(saved, wanted)):
        if s != w:
            raise ModelLoadError(
                where,
                f"feature {i} of the model in {where} is {s[0]!r} ({s[1]}) but the caller supplies {w[0]!r} ({w[1]}); "
                "retrain the model on the current features or build X from the features its card lists.",
            )
    if len(saved) != len(wanted):
        longer = "model" if len(saved) > len(wanted) else "caller"
        extra = (saved if longer == "model" else wanted)[min(len(saved), len(wanted))]
        raise ModelLoadError(
            where,
            f"the model in {where} has {len(saved)} features but the caller supplies {len(wanted)} (the {longer}'s feature "
            f"{min(len(saved), len(wanted))} {extra[0]!r} has no counterpart); retrain the model on the current features "
            "or build X from the features its card lists.",
        )
