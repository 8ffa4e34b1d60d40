"""Strategies as data: a YAML strategy file, its validation against a scenario, and its compiled form.

A strategy file (docs/strategies.md) declares a base ranking (the optimizer's
score weights, or an ordered list of rule keys as ``tier_rules`` uses), hard
rules that exclude nodes, carriers or lanes (by id, node kind, region, the
order's tier, a time window, or a live condition), per-tier overrides and a
fallback chain. :func:`load_strategy_file` reports every problem of a file with
its line and field; :func:`compile_strategy` turns a valid spec into a
:class:`DeclaredStrategy`, whose rules are compiled once into numpy masks
(per tier x node x option), so ranking one order is a few array gathers.

How a rule acts: the candidates (generated and scored as for any strategy)
that use an excluded lane go after every candidate that does not; when every
candidate is excluded the strategy fails and the decision walks the fallback
chain, which the record says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from router.candidates import CandidateSet
from router.context import OrderContext
from router.errors import RouterError, StrategyFileError, field_path
from router.network import Network
from router.scenario import Scenario
from router.scoring import Scores
from router.strategies import StrategySet, default_strategies

__all__ = [
    "BUILTIN_FILES",
    "DeclaredStrategy",
    "Ranking",
    "RankKey",
    "Rule",
    "StrategySpec",
    "TierOverride",
    "builtin_spec_path",
    "compile_strategy",
    "declared_builtins",
    "declared_set",
    "load_strategy_file",
    "spec_version",
]

#: The shipped strategy files of the four built-in strategies (package data).
BUILTIN_FILES = ("nearest", "cheapest", "tier_rules", "optimizer")

#: Score weight name (as in StrategyParams) -> (score term, whether the tier multiplier applies).
WEIGHT_TERMS: dict[str, tuple[str, bool]] = {
    "cost_weight": ("cost", False),
    "eta_hour_usd": ("eta", False),
    "late_hour_usd": ("lateness", True),
    "late_risk_usd": ("late_risk", True),
    "load_usd": ("load", False),
    "split_penalty_usd": ("split", False),
    "stock_value_weight": ("stock_value", False),
}

RANK_KEYS = ("shipments", "preferred", "distance", "late", "cost", "eta", "late_risk", "total")
_DEFAULT_DECIMALS = {"distance": 6}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Weights(_Frozen):
    """Score weights that replace the params' ones (USD per unit of each term); unset keeps the params' weight."""

    cost_weight: float | None = None
    eta_hour_usd: float | None = None
    late_hour_usd: float | None = None
    late_risk_usd: float | None = None
    load_usd: float | None = None
    split_penalty_usd: float | None = None
    stock_value_weight: float | None = None


class OptimizerRanking(_Frozen):
    weights: Weights = Weights()


def _key_from_str(v: Any) -> Any:
    return {"key": v} if isinstance(v, str) else v


class RankKey(_Frozen):
    """One key of a rule-list ranking, most significant first; ``decimals`` rounds it before comparing."""

    key: Literal["shipments", "preferred", "distance", "late", "cost", "eta", "late_risk", "total"]
    decimals: int | None = Field(default=None, ge=0, le=12)


class Ranking(_Frozen):
    """Exactly one of ``optimizer`` (weighted score) and ``rules`` (ordered keys)."""

    optimizer: OptimizerRanking | None = None
    rules: tuple[Annotated[RankKey, BeforeValidator(_key_from_str)], ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Ranking:
        if (self.optimizer is None) == (self.rules is None):
            raise ValueError("give exactly one of 'optimizer' and 'rules'")
        return self


class Exclude(_Frozen):
    """What a rule excludes. Node and lane selectors combine: nodes x options both selected."""

    nodes: tuple[str, ...] = ()
    node_kinds: tuple[Literal["warehouse", "store", "dc"], ...] = ()
    regions: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()


class When(_Frozen):
    """Conditions under which a rule applies (all must hold)."""

    tiers: tuple[str, ...] = Field(default=(), description="the order's customer tier is one of these")
    hours_utc: tuple[float, float] | None = Field(
        default=None, description="[from, to) hour of day UTC at decision time; from > to wraps midnight"
    )
    pick_queue_hours_above: float | None = Field(
        default=None, ge=0.0, description="only legs whose node's pick queue is longer than this many hours"
    )
    dest_weather_above: float | None = Field(
        default=None, ge=0.0, description="the weather severity of the order's destination region exceeds this"
    )

    @model_validator(mode="after")
    def _hours(self) -> When:
        if self.hours_utc is not None:
            a, b = self.hours_utc
            if not (0.0 <= a <= 24.0 and 0.0 <= b <= 24.0):
                raise ValueError("hours_utc must lie in [0, 24]")
            if a == b:
                raise ValueError("hours_utc is an empty window (from == to)")
        return self


class Rule(_Frozen):
    """A hard rule: exclude what ``exclude`` selects when ``when`` holds."""

    name: str = ""
    exclude: Exclude = Exclude()
    when: When = When()


class TierOverride(_Frozen):
    max_splits: int | None = Field(default=None, ge=1, le=6, description="most shipments for this tier's orders")
    preferred_nodes: tuple[str, ...] | None = Field(
        default=None, description="best first; the 'preferred' rank key reads it (default: the scenario's node_priority)"
    )
    promise_slack_hours: float = Field(
        default=0.0, ge=0.0, le=240.0, description="count a plan late when it arrives within this many hours of the promise"
    )


class StrategySpec(_Frozen):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    ranking: Ranking
    rules: tuple[Rule, ...] = ()
    tiers: dict[str, TierOverride] = Field(default_factory=dict)
    fallback: tuple[str, ...] = ()


# -- loading -----------------------------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """(path) -> 1-based line of every mapping key and sequence item of a composed YAML document."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            out[(*path, key)] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)
    return out


def _line_of(lines: dict[tuple, int], loc: Iterable) -> int:
    """The line of the deepest prefix of ``loc`` written in the file (a missing field: its parent's)."""
    best = lines.get((), 1)
    cur: tuple = ()
    for part in loc:
        nxt = (*cur, part)
        if nxt in lines:
            cur = nxt
            best = lines[nxt]
        # a segment not in the file (a union member's name) is skipped
    return best


def _reason(err: dict) -> str:
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    given = err.get("input")
    if str(err.get("type", "")).endswith(("_type", "_parsing", "literal_error")) and isinstance(
        given, (str, int, float, bool)
    ):
        msg += f", got {given!r}"
    return msg


def load_strategy_file(
    path: str | Path, scenario: Scenario | None = None, *, known: Iterable[str] = ()
) -> StrategySpec:
    """Read, validate and check a strategy file; raise :class:`StrategyFileError` with every problem.

    The schema is checked first (every error with its line and dotted field); when it
    passes and ``scenario`` is given, the references are checked against it: unknown
    node, carrier, service, region or tier, a rule set that leaves some tier no node,
    a negative weight, and fallbacks that name no known strategy (the built-ins,
    ``known``, and the file's own name).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyFileError([(0, "<file>", f"cannot read: {exc}")], source=str(path)) from None
    return parse_strategy(text, scenario, known=known, source=str(path))


def parse_strategy(
    text: str, scenario: Scenario | None = None, *, known: Iterable[str] = (), source: str = "<string>"
) -> StrategySpec:
    """:func:`load_strategy_file` on the text of a file."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
        raise StrategyFileError([(line, "<yaml>", reason or str(exc))], source=source) from None
    if root is None or not isinstance(data, dict):
        raise StrategyFileError([(1, "<root>", "a strategy file is a mapping (name, ranking, ...)")], source=source)
    lines = _line_map(root)
    try:
        spec = StrategySpec.model_validate(data)
    except ValidationError as exc:
        found = [(_line_of(lines, e["loc"]), field_path(e["loc"]), _reason(e)) for e in exc.errors()]  # type: ignore[arg-type]
        seen = {f for _, f, _ in found}
        for loc, reason in reference_problems(data, scenario, known=known):
            if field_path(loc) not in seen:
                found.append((_line_of(lines, loc), field_path(loc), reason))
        raise StrategyFileError(sorted(found, key=lambda p: p[0]), source=source) from None
    semantic = check_spec(spec, scenario, known=known)
    if semantic:
        raise StrategyFileError(
            sorted(((_line_of(lines, loc), field_path(loc), reason) for loc, reason in semantic), key=lambda p: p[0]),
            source=source,
        )
    return spec


def _seq(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else []


def _map(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def reference_problems(data: Any, scenario: Scenario | None, *, known: Iterable[str] = ()) -> list[tuple[tuple, str]]:
    """Names and signs of a strategy file's raw data (schema-valid or not) as (location, reason).

    Tolerant of a broken schema (a field of the wrong type is skipped; the schema
    reports it), so one run reports wrong names alongside wrong types: negative or
    non-finite weights, fallbacks that name no known strategy, and, given a scenario,
    unknown nodes, regions, carriers, services and tiers.
    """
    out: list[tuple[tuple, str]] = []
    data = _map(data)
    weights = _map(_map(_map(data.get("ranking")).get("optimizer")).get("weights"))
    for wname, w in weights.items():
        if isinstance(w, (int, float)) and not isinstance(w, bool):
            if w < 0:
                out.append((("ranking", "optimizer", "weights", wname), f"weight {w} is negative: a weight is a price, >= 0"))
            elif not np.isfinite(w):
                out.append((("ranking", "optimizer", "weights", wname), f"weight {w} is not finite"))
    own = data.get("name")
    names = set(default_strategies().names()) | set(known) | ({own} if isinstance(own, str) else set())
    for i, f in enumerate(_seq(data.get("fallback"))):
        if not isinstance(f, str):
            continue
        if f == own:
            out.append((("fallback", i), "a strategy cannot fall back to itself"))
        elif f not in names:
            out.append((("fallback", i), f"unknown strategy {f!r}; known: {', '.join(sorted(names))}"))
    keys = _seq(_map(data.get("ranking")).get("rules"))
    uses_preferred = any(k == "preferred" or (isinstance(k, dict) and k.get("key") == "preferred") for k in keys)
    for t, ov in _map(data.get("tiers")).items():
        if _map(ov).get("preferred_nodes") is not None and not uses_preferred:
            out.append(
                (("tiers", t, "preferred_nodes"), "preferred_nodes is read only by a rules ranking with the 'preferred' key")
            )
    if scenario is None:
        return out
    nodes = scenario.node_index
    regions = scenario.region_index
    carriers = scenario.carrier_index
    services = {s for _, s in scenario.options}
    tiers = scenario.tiers

    def unknown(loc: tuple, kind: str, value: str, pool: Iterable[str]) -> None:
        pool = sorted(pool)
        shown = ", ".join(pool[:12]) + (", ..." if len(pool) > 12 else "")
        out.append((loc, f"unknown {kind} {value!r} in scenario {scenario.name}; known: {shown}"))

    for r, rule in enumerate(_seq(data.get("rules"))):
        ex = _map(_map(rule).get("exclude"))
        for field, kind, pool in (
            ("nodes", "node", nodes),
            ("regions", "region", regions),
            ("carriers", "carrier", carriers),
            ("services", "service", services),
        ):
            for j, x in enumerate(_seq(ex.get(field))):
                if isinstance(x, str) and x not in pool:
                    unknown(("rules", r, "exclude", field, j), kind, x, pool)
        for j, t in enumerate(_seq(_map(_map(rule).get("when")).get("tiers"))):
            if isinstance(t, str) and t not in tiers:
                unknown(("rules", r, "when", "tiers", j), "tier", t, tiers)
    for t, ov in _map(data.get("tiers")).items():
        if t not in tiers:
            unknown(("tiers", t), "tier", t, tiers)
        for j, x in enumerate(_seq(_map(ov).get("preferred_nodes"))):
            if isinstance(x, str) and x not in nodes:
                unknown(("tiers", t, "preferred_nodes", j), "node", x, nodes)
    return out


def check_spec(spec: StrategySpec, scenario: Scenario | None, *, known: Iterable[str] = ()) -> list[tuple[tuple, str]]:
    """Semantic problems of a schema-valid spec as (location, reason); empty when it is sound."""
    out = reference_problems(spec.model_dump(mode="json"), scenario, known=known)
    if scenario is None:
        return out
    tiers = scenario.tiers
    if out:
        return out  # masks of unknown names mean nothing
    # A rule set that leaves some tier no node (no lane at all) at some hour: an error, not a runtime surprise.
    net_opts = scenario.options
    for t in sorted(tiers):
        hours = sorted({0.0} | {h for rule in spec.rules if rule.when.hours_utc for h in rule.when.hours_utc if h < 24})
        for h in hours:
            blocked = np.zeros((len(scenario.nodes), len(net_opts)), dtype=bool)
            hit: list[int] = []
            for r, rule in enumerate(spec.rules):
                w = rule.when
                if w.pick_queue_hours_above is not None or w.dest_weather_above is not None:
                    continue  # live conditions depend on the state: not decidable here
                if w.tiers and t not in w.tiers:
                    continue
                if w.hours_utc is not None and not _in_window(h, w.hours_utc):
                    continue
                blocked |= _lane_mask(rule.exclude, scenario)
                hit.append(r)
            if hit and blocked.all():
                windowed = any(spec.rules[r].when.hours_utc is not None for r in hit)
                at = f" at {h:g}:00 UTC" if windowed else ""
                out.append(
                    (
                        ("rules", hit[-1]),
                        f"for tier {t}{at} these rules exclude every node: "
                        + ", ".join(f"rules[{r}]" for r in hit),
                    )
                )
                break
    return out


def _in_window(hour: float, window: tuple[float, float]) -> bool:
    a, b = window
    return a <= hour < b if a < b else (hour >= a or hour < b)


def _lane_mask(ex: Exclude, scenario: Scenario) -> np.ndarray:
    """bool[N, O]: the lanes (node x option) a rule's ``exclude`` selects."""
    nodes = scenario.nodes
    node_sel = bool(ex.nodes or ex.node_kinds or ex.regions)
    opt_sel = bool(ex.carriers or ex.services)
    n_mask = np.array(
        [
            (n.id in ex.nodes) or (n.kind in ex.node_kinds) or (n.region is not None and n.region in ex.regions)
            for n in nodes
        ]
        if node_sel
        else [True] * len(nodes),
        dtype=bool,
    )
    o_mask = np.array(
        [(c in ex.carriers) or (s in ex.services) for c, s in scenario.options]
        if opt_sel
        else [True] * len(scenario.options),
        dtype=bool,
    )
    return n_mask[:, None] & o_mask[None, :]


def spec_version(spec: StrategySpec) -> str:
    """The content hash of the spec: sha256 of its canonical JSON (sorted keys, every default written)."""
    canon = orjson.dumps(spec.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canon).hexdigest()


# -- compiling ---------------------------------------------------------------------------------


def _lexrank(keys: list[np.ndarray]) -> np.ndarray:
    c = len(keys[0])
    return np.lexsort((np.arange(c), *reversed(keys)))


class DeclaredStrategy:
    """A strategy compiled from a :class:`StrategySpec`; implements :class:`~router.strategies.Strategy`.

    Every rule is folded once into ``_thr[t]``, float[N, O]: the pick-queue hours
    above which a leg on that lane (node x option) is excluded for tier ``t`` (the
    last row: a tier the scenario does not know); -inf for an unconditional
    exclusion, +inf where no rule applies. Rules with a time window or a weather
    condition keep their own threshold arrays, folded in by minimum when they hold
    (each combination cached). Excluding candidates is then one gather and one
    comparison over the legs.
    """

    def __init__(self, spec: StrategySpec, scenario: Scenario, network: Network) -> None:
        self.spec = spec
        self.name = spec.name
        self.version = spec_version(spec)
        self.fallback = spec.fallback
        self._tiers = {t: i for i, t in enumerate(sorted(scenario.tiers))}
        nt = len(self._tiers) + 1
        n, o = network.n_nodes, network.n_options
        if list(network.node_ids) != [x.id for x in scenario.nodes] or n != len(scenario.nodes):
            raise RouterError("the network was not built from this scenario")
        # One threshold per tier x node x option on the leg's pick-queue hours: a leg is
        # excluded when its queue exceeds it. An unconditional exclusion is -inf (every queue
        # exceeds it), a pick-queue rule its hours, no rule +inf; rules folded by minimum.
        self._thr = np.full((nt, n, o), np.inf)
        self._cond: list[tuple[np.ndarray, tuple[float, float] | None, float | None, np.ndarray]] = []
        for rule in spec.rules:
            lanes = _lane_mask(rule.exclude, scenario)
            w = rule.when
            tiers = np.zeros(nt, dtype=bool)
            if w.tiers:
                tiers[[self._tiers[x] for x in w.tiers]] = True
            else:
                tiers[:] = True
            q = -np.inf if w.pick_queue_hours_above is None else float(w.pick_queue_hours_above)
            thr = np.where(lanes, q, np.inf)
            if w.hours_utc is not None or w.dest_weather_above is not None:
                self._cond.append((tiers, w.hours_utc, w.dest_weather_above, thr))
            else:
                self._thr[tiers] = np.minimum(self._thr[tiers], thr)
        self._thr_any: np.ndarray = np.asarray((self._thr < np.inf).any(axis=(1, 2)))
        self._combo: dict[tuple[int, ...], np.ndarray] = {}
        # per tier: max shipments, preferred-node rank (None: the scenario's), promise slack
        big = 1 << 30
        self._max_splits = np.full(nt, big, dtype=np.int64)
        self._preferred: list[np.ndarray | None] = [None] * nt
        self._slack = np.zeros(nt)
        for t, ov in spec.tiers.items():
            i = self._tiers[t]
            if ov.max_splits is not None:
                self._max_splits[i] = ov.max_splits
            if ov.preferred_nodes is not None:
                rank = np.full(n, len(ov.preferred_nodes), dtype=np.int64)
                for pos, nid in enumerate(ov.preferred_nodes):
                    rank[scenario.node_index[nid]] = pos
                self._preferred[i] = rank
            self._slack[i] = ov.promise_slack_hours
        self._split_cap = bool((self._max_splits < big).any())
        r = spec.ranking
        self._keys: tuple[RankKey, ...] | None = r.rules
        self._weights: list[tuple[str, float, bool]] = []
        if r.optimizer is not None:
            for wname, wv in r.optimizer.weights:
                if wv is not None:
                    term, tiered = WEIGHT_TERMS[wname]
                    self._weights.append((term, float(wv), tiered))
        self.rule = self._sentence()

    def _sentence(self) -> str:
        if self.spec.description:
            head = self.spec.description.strip().splitlines()[0]
        elif self._keys is not None:
            head = "ordered keys: " + ", then ".join(k.key for k in self._keys)
        else:
            head = "lowest total score" + (
                " with " + ", ".join(f"{t} x{w:g}" for t, w, _ in self._weights) if self._weights else ""
            )
        if self.spec.rules:
            head += f"; {len(self.spec.rules)} hard rule{'s' if len(self.spec.rules) != 1 else ''}"
        return f"{head} (declared, version {self.version[:12]})"

    # -- the hot path ----------------------------------------------------------------------

    def _thresholds(self, t: int, ctx: OrderContext) -> np.ndarray | None:
        """float[N, O]: the pick-queue hours above which a leg is excluded for this order now (None: no rule)."""
        active: list[int] = []
        for i, (tiers, hours, weather, _thr) in enumerate(self._cond):
            if not tiers[t]:
                continue
            if hours is not None and not _in_window(ctx.now_hour_utc, hours):
                continue
            if weather is not None and not ctx.dest_weather > weather:
                continue
            active.append(i)
        if not active:
            return self._thr[t] if self._thr_any[t] else None
        key = (t, *active)
        hit = self._combo.get(key)
        if hit is None:
            hit = self._thr[t].copy()
            for i in active:
                np.minimum(hit, self._cond[i][3], out=hit)
            self._combo[key] = hit
        return hit

    def excluded(self, cs: CandidateSet, ctx: OrderContext) -> np.ndarray | None:
        """bool[C]: the candidates a hard rule or a tier override excludes (None: none can be)."""
        t = self._tiers.get(ctx.tier, len(self._tiers))
        thr = self._thresholds(t, ctx)
        bad: np.ndarray | None = None
        single = cs.leg_node.shape[1] == 1
        if thr is not None:
            if single:
                bad = cs.leg_queue_hours[:, 0] > thr[cs.leg_node[:, 0], cs.leg_opt[:, 0]]
            else:
                act = cs.active
                hit = cs.leg_queue_hours > thr[np.where(act, cs.leg_node, 0), np.where(act, cs.leg_opt, 0)]
                bad = (hit & act).any(axis=1)
        if self._split_cap and not single:
            over = cs.n_legs > self._max_splits[t]
            bad = over if bad is None else bad | over
        return bad

    def _key(self, k: RankKey, t: int, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        name = k.key
        if name == "shipments":
            v = cs.n_legs
        elif name == "preferred":
            own = self._preferred[t]
            rank = own if own is not None else ctx.tier_node_rank
            nn = np.where(cs.active, cs.leg_node, 0)
            v = np.where(cs.active, rank[nn], -1).max(axis=1)
        elif name == "distance":
            v = cs.leg_miles.sum(axis=1)
        elif name == "late":
            v = (cs.leg_eta_hours.max(axis=1) > ctx.promise_hours - self._slack[t]).astype(np.int64)
        elif name == "total":
            v = scores.total
        else:
            v = scores.term(name).values
        dec = k.decimals if k.decimals is not None else _DEFAULT_DECIMALS.get(name)
        return np.round(v, dec) if dec is not None else v

    def _total(self, t: int, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        total = scores.total
        if not self._weights and not self._slack[t]:
            return total
        total = total.copy()
        for term_name, w, tiered in self._weights:
            term = scores.term(term_name)
            weight = w * ctx.tier_multiplier if tiered else w
            total += term.values * weight - term.contributions
        if self._slack[t]:
            term = scores.term("lateness")
            weight = next((w * ctx.tier_multiplier for n, w, _ in self._weights if n == "lateness"), term.weight)
            late = np.maximum(cs.leg_eta_hours.max(axis=1) - (ctx.promise_hours - self._slack[t]), 0.0)
            total += late * weight - term.values * weight
        return total

    def rank(self, cs: CandidateSet, scores: Scores, ctx: OrderContext) -> np.ndarray:
        t = self._tiers.get(ctx.tier, len(self._tiers))
        bad = self.excluded(cs, ctx)
        if bad is not None and not bad.any():
            bad = None
        if bad is not None and bad.all():
            raise RouterError(f"the rules of {self.name} exclude every candidate plan")
        if self._keys is None:
            total = self._total(t, cs, scores, ctx)
            if bad is None:
                return np.argsort(total, kind="stable")
            return np.lexsort((total, bad))
        keys = [self._key(k, t, cs, scores, ctx) for k in self._keys]
        if bad is not None:
            keys.insert(0, bad)
        return _lexrank(keys)


def compile_strategy(spec: StrategySpec, scenario: Scenario, network: Network) -> DeclaredStrategy:
    """Compile a validated spec for one network (masks per tier x node x option, built once)."""
    return DeclaredStrategy(spec, scenario, network)


def builtin_spec_path(name: str) -> Path:
    """The shipped strategy file of a built-in strategy."""
    return Path(__file__).with_name("strategy_files") / f"{name}.yaml"


def declared_builtins(scenario: Scenario, network: Network) -> list[DeclaredStrategy]:
    """The four built-in strategies, compiled from their shipped files."""
    return [
        compile_strategy(load_strategy_file(builtin_spec_path(n), scenario), scenario, network) for n in BUILTIN_FILES
    ]


def declared_set(strategies: Iterable[DeclaredStrategy], base: StrategySet | None = None) -> StrategySet:
    """A :class:`StrategySet` with the declared strategies added (each with its file's fallback chain).

    ``base`` (default: none) supplies the strategies the fallbacks may name; declared
    strategies replace built-ins of the same name.
    """
    out = base if base is not None else StrategySet()
    for s in strategies:
        out = out.with_strategy(s, s.fallback)
    return out
