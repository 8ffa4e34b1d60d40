"""Compiled inference for a fitted :class:`~router.risk.model.DelayRiskModel` (numba).

The router scores every lane of every order (about a hundred rows per decision)
with the delay-risk model. scikit-learn's ``predict_proba`` spends most of its
time on input validation, the column transformer for categorical columns, one
Cython call per tree and the calibrator's own checks. :class:`CompiledRisk`
keeps only the arithmetic: all trees are flattened into a few contiguous arrays
evaluated by one compiled loop, which also applies the calibrator.

It reproduces scikit-learn (1.4 and later) exactly, as read from
``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``:

* numeric split: ``x <= threshold`` goes left; NaN follows the node's
  ``missing_go_to_left``;
* categorical split: the booster sees categorical columns through an
  ``OrdinalEncoder`` (code = rank of the value among the categories seen in
  training; unseen values and NaN become NaN) placed *first* in its column
  order; a code in the node's left bitset goes left, any other known code goes
  right, and NaN / unseen categories follow ``missing_go_to_left``;
* margin = baseline + the trees' leaf values, summed in iteration order (the
  same floating-point sum as ``_raw_predict``, so margins agree to the bit);
* isotonic calibration as ``IsotonicRegression.predict`` with
  ``out_of_bounds="clip"`` (linear interpolation between the fitted
  thresholds, constant beyond them); sigmoid as ``1 / (1 + exp(-(a m + b)))``
  with the logistic regression's two coefficients.

How the trees are evaluated. Walking a tree node by node is bound by branch
mispredictions (which child, is this a leaf) -- about 13 ns a node on the
reference machine, 0.6 ms for 100 rows x 150 trees. Instead each tree is
evaluated the QuickScorer way (Lucchese et al., "QuickScorer: a fast algorithm
to rank documents with additive ensembles of regression trees", SIGIR 2015):
the leaves are numbered left to right and every internal node carries a bit mask
that clears the leaves of its left subtree. A row starts with all bits set; each
node whose test sends the row right ANDs its mask in; the exit leaf is then the
lowest set bit (a leaf left of the exit leaf is cleared by the node where the two
paths part, the exit leaf is never cleared). Every node is tested for every row,
but the tests are independent and branch-free, so the loop over rows runs on
SIMD lanes. Trees may have at most 64 leaves (one uint64 mask).

Measured (``benchmarks/risk_scoring.py``, 2-core shared VM, 100 rows, 150 trees of
15 leaves): about 0.1 ms a call against 8 ms for ``predict_proba``. About a
quarter is per-node overhead paid whatever the row count (2,100 internal nodes),
the rest is about 1 ns per node per 100 rows -- the node tests, then a
trailing-zero count and one load per tree and row for the leaf.

numba compiles on first use and caches the machine code next to this file, so a
process pays the compile (a few seconds) once per installation.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit
from numba.extending import intrinsic

__all__ = ["CompiledRisk"]

# Internal node kinds: which test the node applies.
_NUM_NAN_RIGHT = 0  # x <= threshold goes left, NaN goes right
_NUM_NAN_LEFT = 1  # x <= threshold goes left, NaN goes left
_CAT_SMALL = 2  # categorical column with < 64 categories: one 64-bit word tests code + 1
_CAT_LARGE = 3  # up to 255 categories: four 64-bit words

_ISOTONIC = 0
_SIGMOID = 1

_MAX_LEAVES = 64
_MAX_CATEGORIES = 256  # codes + 1 fit one byte: the booster allows at most 255 categories
_BLOCK_ROWS = 128  # rows evaluated together: their masks and columns stay in L1

# Layout of the packed arrays. Few arrays, because numba's dispatcher pays
# about 0.1 us per array argument, a noticeable share of a 100-row call.
#   ints   int32:  header[16] | kind[n_int] | col[n_int] | bitset[n_int] | tree_start[n_trees + 1]
#                  | leaf_start[n_trees + 1] | cat_cols[n_cat] | cat_counts[n_cat]
#                  | path_start[n_leaves + 1] | path_cols[n_path]
#   floats f64:    baseline, expected margin | threshold[n_int] | leaf_value[n_leaves]
#                  | cat_values[n_cat, 256] | cal_x[n_cal] | cal_y[n_cal or 0] | path_delta[n_path]
#   words  uint64: mask[n_int] | cat_bitsets[n_cat_nodes, 4]
# Internal nodes are grouped by tree; ``col`` is the model's column for a numeric
# node and the categorical slot (index into cat_cols) for a categorical one.
# A leaf's path (column, change of expected margin) pairs serve contributions().
_HEADER = 16
(_H_INT, _H_TREES, _H_LEAVES, _H_CAT, _H_CAL, _H_CAL_KIND, _H_FEATURES, _H_PATH, _H_CAT_NODES) = range(9)


class CompiledRisk:
    """A fitted delay-risk model as flat arrays, evaluated by compiled code.

    Build it with :meth:`DelayRiskModel.compile` (or :meth:`from_model`). It holds
    only numpy arrays and plain values, so it pickles small and can be shipped
    to worker processes without scikit-learn. Calls release the GIL and share
    no state, so threads may score concurrently.

    Attributes
    ----------
    feature_names : tuple of str
    n_features, n_trees, n_nodes : int
        ``n_nodes`` counts internal nodes and leaves.
    calibration : {"isotonic", "sigmoid"}
    """

    __slots__ = (
        "_ints", "_floats", "_words", "feature_names", "n_features", "n_trees", "n_nodes", "calibration", "lane_history",
    )

    def __init__(
        self,
        ints: np.ndarray,
        floats: np.ndarray,
        words: np.ndarray,
        feature_names: tuple[str, ...],
        calibration: str,
    ) -> None:
        self._ints = np.ascontiguousarray(ints, dtype=np.int32)
        self._floats = np.ascontiguousarray(floats, dtype=np.float64)
        self._words = np.ascontiguousarray(words, dtype=np.uint64)
        self.feature_names = tuple(feature_names)
        self.n_features = int(self._ints[_H_FEATURES])
        self.n_trees = int(self._ints[_H_TREES])
        self.n_nodes = int(self._ints[_H_INT] + self._ints[_H_LEAVES])
        self.calibration = calibration
        # router.risk.model.LaneHistory: appends the lane_history column to X (plain arrays)
        self.lane_history = None
        if len(self.feature_names) != self.n_features:
            raise ValueError(f"{len(self.feature_names)} feature names for a model of {self.n_features} features")

    def __getstate__(self):
        names = ("_ints", "_floats", "_words", "feature_names", "calibration", "lane_history")
        return {name: getattr(self, name) for name in names}

    def __setstate__(self, state) -> None:
        CompiledRisk.__init__(
            self, state["_ints"], state["_floats"], state["_words"], state["feature_names"], state["calibration"]
        )
        self.lane_history = state.get("lane_history")

    def __repr__(self) -> str:
        return (
            f"CompiledRisk({self.n_features} features, {self.n_trees} trees, {self.n_nodes} nodes, "
            f"{self.calibration} calibration)"
        )

    # ---------------------------------------------------------------- scoring

    def predict(self, X) -> np.ndarray:
        """Calibrated P(late) per row, float64[n]."""
        return _predict(self._check(X), self._ints, self._floats, self._words, True)

    def margin(self, X) -> np.ndarray:
        """The booster's raw log-odds of late per row, float64[n] (before calibration)."""
        return _predict(self._check(X), self._ints, self._floats, self._words, False)

    def contributions(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature attribution of each row's P(late): ``(base float64[n], contrib float64[n, F])``.

        ``base + contrib.sum(axis=1) == predict(X)`` to rounding.

        In margin space each tree's path is attributed as Saabas does
        ("Interpreting random forests", 2014): every split on the path credits
        its feature with the change of the expected value from the node to the
        child taken, where a node's expected value is the training-count-weighted
        mean of the leaf values below it. Summed over trees, the credits add up
        to ``margin - expected_margin``, where ``expected_margin`` (the margin
        of "no information") is the baseline plus each tree's root expectation.

        The calibrator is not linear, so the margin credits are mapped to
        probability proportionally::

            base_p      = calibrate(expected_margin)          (the same for every row)
            contrib_p_i = contrib_margin_i * (p - base_p) / (margin - expected_margin)

        Each feature keeps its share of the margin's move, converted by the
        calibrator's secant slope between the two margins; a row whose margin
        equals the expected margin gets all zeros. A feature no tree splits on
        gets exactly 0. When credits of opposite signs nearly cancel, the
        individual values carry the rounding of ``p - base_p`` amplified by the
        small denominator; their sum stays exact.
        """
        return _contributions(self._check(X), self._ints, self._floats, self._words)

    @property
    def expected_margin(self) -> float:
        """Baseline plus each tree's training-weighted mean leaf value."""
        return float(self._floats[1])

    def _check(self, X) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.lane_history is not None and X.ndim == 2 and X.shape[1] == self.n_features - self.lane_history.n_columns:
            X = np.ascontiguousarray(np.column_stack([X, self.lane_history.transform(X)]))
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"X has shape {X.shape}; expected (n_rows, {self.n_features}) with columns "
                f"{', '.join(self.feature_names)}"
            )
        return X

    # ------------------------------------------------------------- building

    @classmethod
    def from_model(cls, model) -> CompiledRisk:
        """Flatten a fitted :class:`~router.risk.model.DelayRiskModel`."""
        booster = getattr(model, "booster_", None)
        if booster is None:
            raise ValueError("the model is not fitted: call fit() before compile()")
        if booster.n_trees_per_iteration_ != 1:
            raise ValueError(f"expected a binary booster (1 tree per iteration), got {booster.n_trees_per_iteration_}")
        # the booster's width: the model's features, plus lane_history when the model keeps one
        n_features = int(booster.n_features_in_)
        col_of, cat_cols, categories = _booster_columns(booster, n_features)
        slot_of_col = {c: k for k, c in enumerate(cat_cols)}

        kinds: list[int] = []
        cols: list[int] = []
        bitset_rows: list[int] = []
        thresholds: list[float] = []
        masks: list[int] = []
        bitsets: list[list[int]] = []
        tree_start, leaf_start, leaf_values = [0], [0], []
        path_start, path_cols, path_deltas = [0], [], []
        baseline = float(np.asarray(booster._baseline_prediction).ravel()[0])
        expected_margin = baseline
        for (pred,) in booster._predictors:
            nodes = pred.nodes
            expected = _expected_values(nodes)
            expected_margin += expected[0]
            leaves = _leaves_in_order(nodes)
            if len(leaves) > _MAX_LEAVES:
                raise ValueError(
                    f"a tree has {len(leaves)} leaves; compiled scoring supports at most {_MAX_LEAVES} "
                    "(set max_leaf_nodes <= 64)"
                )
            number = {leaf: k for k, leaf in enumerate(leaves)}
            span = _leaf_spans(nodes, number)
            # the masks commute, so a tree's nodes are tested grouped by kind and column:
            # the kernel's branch on the kind then changes a few times per tree, not at random
            internal = [i for i in range(len(nodes)) if not nodes[i]["is_leaf"]]
            internal.sort(key=lambda i: (not nodes[i]["is_categorical"], int(nodes[i]["missing_go_to_left"]), col_of[int(nodes[i]["feature_idx"])]))
            for i in internal:
                node = nodes[i]
                col = col_of[int(node["feature_idx"])]
                mgl = bool(node["missing_go_to_left"])
                first, stop = span[int(node["left"])]
                masks.append(((1 << 64) - 1) ^ ((1 << stop) - (1 << first)))
                if node["is_categorical"]:
                    n_cats = len(categories[col])
                    kinds.append(_CAT_SMALL if n_cats < 64 else _CAT_LARGE)
                    cols.append(slot_of_col[col])
                    bitset_rows.append(len(bitsets))
                    bitsets.append(_left_set(pred.raw_left_cat_bitsets[int(node["bitset_idx"])], n_cats, mgl))
                    thresholds.append(0.0)
                else:
                    kinds.append(_NUM_NAN_LEFT if mgl else _NUM_NAN_RIGHT)
                    cols.append(col)
                    bitset_rows.append(-1)
                    thresholds.append(float(node["num_threshold"]))
            for leaf in leaves:
                leaf_values.append(float(nodes[leaf]["value"]))
                for col, delta in _path_credits(nodes, leaf, expected, col_of):
                    path_cols.append(col)
                    path_deltas.append(delta)
                path_start.append(len(path_cols))
            tree_start.append(len(kinds))
            leaf_start.append(len(leaf_values))

        cal_kind, cal_x, cal_y = _calibration_arrays(model.calibrator_)
        n_cat = len(cat_cols)
        cat_values = np.full((n_cat, _MAX_CATEGORIES), np.inf)
        for k, c in enumerate(cat_cols):
            cat_values[k, : len(categories[c])] = categories[c]
        header = np.zeros(_HEADER, dtype=np.int32)
        header[[_H_INT, _H_TREES, _H_LEAVES, _H_CAT, _H_CAL, _H_CAL_KIND, _H_FEATURES, _H_PATH, _H_CAT_NODES]] = [
            len(kinds),
            len(tree_start) - 1,
            len(leaf_values),
            n_cat,
            cal_x.size,
            cal_kind,
            n_features,
            len(path_cols),
            len(bitsets),
        ]
        ints = np.concatenate(
            [
                header,
                np.asarray(kinds, dtype=np.int32),
                np.asarray(cols, dtype=np.int32),
                np.asarray(bitset_rows, dtype=np.int32),
                np.asarray(tree_start, dtype=np.int32),
                np.asarray(leaf_start, dtype=np.int32),
                np.asarray(cat_cols, dtype=np.int32),
                np.asarray([len(categories[c]) for c in cat_cols], dtype=np.int32),
                np.asarray(path_start, dtype=np.int32),
                np.asarray(path_cols, dtype=np.int32),
            ]
        )
        floats = np.concatenate(
            [
                [baseline, expected_margin],
                np.asarray(thresholds, dtype=np.float64),
                np.asarray(leaf_values, dtype=np.float64),
                cat_values.ravel(),
                cal_x,
                cal_y,
                np.asarray(path_deltas, dtype=np.float64),
            ]
        )
        words = np.concatenate(
            [
                np.asarray(masks, dtype=np.uint64),
                np.asarray(bitsets, dtype=np.uint64).reshape(-1),
            ]
        )
        names = tuple(
            getattr(model, "booster_feature_names_", None)
            or getattr(model, "feature_names_in_", None)
            or (f"x{i}" for i in range(n_features))
        )
        out = cls(ints, floats, words, names, "isotonic" if cal_kind == _ISOTONIC else "sigmoid")
        out.lane_history = getattr(model, "lane_history_", None)
        return out


# ----------------------------------------------------------------- building


def _booster_columns(booster, n_features: int):
    """(the model's column of each booster column, categorical columns, their known categories).

    With categorical columns the booster fits a ColumnTransformer whose output
    puts the ordinal-encoded categorical columns first and the numeric ones
    after, both in their original order; its trees index that output.
    """
    pre = getattr(booster, "_preprocessor", None)
    if pre is None:
        return list(range(n_features)), [], {}
    col_of = [-1] * n_features
    encoder, enc_cols = None, []
    for name, transformer, columns in pre.transformers_:
        if name == "remainder":
            continue
        columns = np.asarray(columns)
        cols = np.flatnonzero(columns) if columns.dtype == bool else columns.astype(int)
        out = np.arange(n_features)[pre.output_indices_[name]]
        if len(out) != len(cols):
            raise ValueError(f"unexpected booster preprocessing: {name} maps {len(cols)} columns to {len(out)}")
        for o, c in zip(out, cols):
            col_of[int(o)] = int(c)
        if name == "encoder":
            encoder, enc_cols = transformer, [int(c) for c in cols]
    if encoder is None or -1 in col_of:
        raise ValueError("unexpected booster preprocessing: expected an 'encoder' and a 'numerical' transformer")
    categories = {}
    for c, cats in zip(enc_cols, encoder.categories_):
        cats = np.asarray(cats, dtype=np.float64)
        cats = cats[~np.isnan(cats)]  # NaN is the missing value, not a category
        if cats.size > _MAX_CATEGORIES - 1:
            raise ValueError(f"column {c} has {cats.size} categories; the booster allows at most 255")
        categories[c] = cats
    return col_of, enc_cols, categories


def _leaves_in_order(nodes) -> list[int]:
    out, stack = [], [0]
    while stack:
        i = stack.pop()
        if nodes[i]["is_leaf"]:
            out.append(i)
        else:
            stack.extend([int(nodes[i]["right"]), int(nodes[i]["left"])])
    return out


def _leaf_spans(nodes, number: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Each node's leaves as a range [first, stop) of the left-to-right leaf numbers."""
    span: dict[int, tuple[int, int]] = {}

    def visit(i: int) -> tuple[int, int]:
        if nodes[i]["is_leaf"]:
            span[i] = (number[i], number[i] + 1)
        else:
            first, _ = visit(int(nodes[i]["left"]))
            _, stop = visit(int(nodes[i]["right"]))
            span[i] = (first, stop)
        return span[i]

    visit(0)
    return span


def _expected_values(nodes) -> list[float]:
    """Each node's training-count-weighted mean of the leaf values below it (bottom-up)."""
    exp = [0.0] * len(nodes)
    weight = [0.0] * len(nodes)

    def visit(i: int) -> None:
        node = nodes[i]
        if node["is_leaf"]:
            exp[i] = float(node["value"])
            weight[i] = float(node["count"])
            return
        left, right = int(node["left"]), int(node["right"])
        visit(left)
        visit(right)
        w = weight[left] + weight[right]
        weight[i] = w
        # min_samples_leaf >= 1 keeps every branch non-empty; the guard only avoids 0/0
        exp[i] = (weight[left] * exp[left] + weight[right] * exp[right]) / w if w > 0 else 0.5 * (exp[left] + exp[right])

    visit(0)
    return exp


def _path_credits(nodes, leaf: int, expected: list[float], col_of: list[int]) -> list[tuple[int, float]]:
    """(model column, summed change of expected value) of the splits on the path to ``leaf``."""
    parent = {}
    for i in range(len(nodes)):
        if not nodes[i]["is_leaf"]:
            parent[int(nodes[i]["left"])] = i
            parent[int(nodes[i]["right"])] = i
    credit: dict[int, float] = {}
    j = leaf
    while j in parent:
        i = parent[j]
        col = col_of[int(nodes[i]["feature_idx"])]
        credit[col] = credit.get(col, 0.0) + (expected[j] - expected[i])
        j = i
    return sorted(credit.items())


def _left_set(raw_left_bitset: np.ndarray, n_categories: int, missing_go_to_left: bool) -> list[int]:
    """Four 64-bit words over (code + 1) of the categories that go left; bit 0 = NaN or unseen category."""
    words = [0, 0, 0, 0]
    if missing_go_to_left:
        words[0] |= 1
    for code in range(n_categories):
        if (int(raw_left_bitset[code // 32]) >> (code % 32)) & 1:
            b = code + 1
            words[b // 64] |= 1 << (b % 64)
    return words


def _calibration_arrays(calibrator) -> tuple[int, np.ndarray, np.ndarray]:
    if hasattr(calibrator, "X_thresholds_"):
        x = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
        y = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        return _ISOTONIC, x, y
    if hasattr(calibrator, "coef_"):
        coef = np.asarray(calibrator.coef_, dtype=np.float64).ravel()
        intercept = np.asarray(calibrator.intercept_, dtype=np.float64).ravel()
        return _SIGMOID, np.array([coef[0], intercept[0]]), np.zeros(0)
    raise ValueError(f"unsupported calibrator {type(calibrator).__name__}: expected isotonic or logistic")


# ---------------------------------------------------------------- kernels
# The helpers are inlined into the two entry points: an ordinary call between
# numba functions passes every array by struct and counts references.


@njit(cache=True, nogil=True, inline="always")
def _unpack(ints, floats, words):
    n_int, n_trees, n_leaves = np.int64(ints[_H_INT]), np.int64(ints[_H_TREES]), np.int64(ints[_H_LEAVES])
    n_cat, n_cal, n_path = np.int64(ints[_H_CAT]), np.int64(ints[_H_CAL]), np.int64(ints[_H_PATH])
    n_cat_nodes = np.int64(ints[_H_CAT_NODES])
    o = np.int64(_HEADER)
    kind = ints[o : o + n_int]
    o += n_int
    col = ints[o : o + n_int]
    o += n_int
    bitset = ints[o : o + n_int]
    o += n_int
    tree_start = ints[o : o + n_trees + 1]
    o += n_trees + 1
    leaf_start = ints[o : o + n_trees + 1]
    o += n_trees + 1
    cat_cols = ints[o : o + n_cat]
    o += n_cat
    cat_counts = ints[o : o + n_cat]
    o += n_cat
    path_start = ints[o : o + n_leaves + 1]
    o += n_leaves + 1
    path_cols = ints[o : o + n_path]
    f = np.int64(2)
    threshold = floats[f : f + n_int]
    f += n_int
    leaf_value = floats[f : f + n_leaves]
    f += n_leaves
    cat_values = floats[f : f + n_cat * _MAX_CATEGORIES].reshape((n_cat, np.int64(_MAX_CATEGORIES)))
    f += n_cat * _MAX_CATEGORIES
    cal_x = floats[f : f + n_cal]
    f += n_cal
    n_cal_y = n_cal if ints[_H_CAL_KIND] == _ISOTONIC else np.int64(0)
    cal_y = floats[f : f + n_cal_y]
    f += n_cal_y
    path_delta = floats[f : f + n_path]
    w = np.int64(0)
    mask = words[w : w + n_int]
    w += n_int
    cat_bits = words[w : w + 4 * n_cat_nodes].reshape((n_cat_nodes, np.int64(4)))
    return (
        kind,
        col,
        bitset,
        tree_start,
        leaf_start,
        cat_cols,
        cat_counts,
        path_start,
        path_cols,
        threshold,
        leaf_value,
        cat_values,
        cal_x,
        cal_y,
        path_delta,
        mask,
        cat_bits,
    )


@njit(cache=True, nogil=True, inline="always")
def _load_block(X, start, m, XT, CT, cat_cols, cat_counts, cat_values):
    """Rows [start, start + m) into column-major scratch; categorical columns as code + 1 (0 = NaN or unseen)."""
    for f in range(X.shape[1]):
        for r in range(m):
            XT[f, r] = X[start + r, f]
    for k in range(cat_cols.shape[0]):
        count = cat_counts[k]
        for r in range(m):
            v = X[start + r, cat_cols[k]]
            lo, hi = 0, count
            while lo < hi:  # first category >= v; NaN compares false and ends at `count`
                mid = (lo + hi) >> 1
                if cat_values[k, mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            CT[k, r] = np.uint64(lo + 1) if lo < count and cat_values[k, lo] == v else np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def _exit_masks(t, m, v, XT, CT, tree_start, kind, col, bitset, threshold, mask, cat_bits):
    """Leave in v[r] the leaves of tree t that row r can still reach: the lowest set bit is its exit leaf."""
    all_set = np.uint64(0xFFFFFFFFFFFFFFFF)
    one = np.uint64(1)
    for r in range(m):
        v[r] = all_set
    for j in range(tree_start[t], tree_start[t + 1]):
        k = kind[j]
        drop = mask[j]
        c = col[j]
        # index the scratch in 2-D: a row view would count references on every node
        if k == _NUM_NAN_RIGHT:
            thr = threshold[j]
            for r in range(m):
                v[r] &= all_set if XT[c, r] <= thr else drop
        elif k == _NUM_NAN_LEFT:
            thr = threshold[j]
            for r in range(m):
                x = XT[c, r]
                v[r] &= all_set if (x <= thr) | (x != x) else drop
        elif k == _CAT_SMALL:
            w0 = cat_bits[bitset[j], 0]
            for r in range(m):
                v[r] &= all_set if (w0 >> CT[c, r]) & one else drop
        else:
            b = bitset[j]
            w0, w1, w2, w3 = cat_bits[b, 0], cat_bits[b, 1], cat_bits[b, 2], cat_bits[b, 3]
            for r in range(m):
                code = CT[c, r]
                w = w0 if code < 64 else (w1 if code < 128 else (w2 if code < 192 else w3))
                v[r] &= all_set if (w >> (code & np.uint64(63))) & one else drop


@intrinsic
def _trailing_zeros(typingctx, x):
    """Index of the lowest set bit (LLVM's cttz: one instruction where the CPU has it)."""

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return x(x), codegen


@njit(cache=True, nogil=True, inline="always")
def _calibrate(m, kind, cal_x, cal_y):
    if kind == _SIGMOID:
        return 1.0 / (1.0 + np.exp(-(cal_x[0] * m + cal_x[1])))
    last = cal_x.shape[0] - 1
    if m <= cal_x[0]:
        return cal_y[0]
    if m >= cal_x[last]:
        return cal_y[last]
    lo, hi = 0, last  # cal_x[lo] <= m < cal_x[hi]
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if cal_x[mid] <= m:
            lo = mid
        else:
            hi = mid
    # the expression of scipy's interp1d, which IsotonicRegression.predict uses
    slope = (cal_y[hi] - cal_y[lo]) / (cal_x[hi] - cal_x[lo])
    return slope * (m - cal_x[lo]) + cal_y[lo]


@njit(cache=True, nogil=True)
def _predict(X, ints, floats, words, calibrated):
    (kind, col, bitset, tree_start, leaf_start, cat_cols, cat_counts, _, _, threshold, leaf_value, cat_values,
     cal_x, cal_y, _, mask, cat_bits) = _unpack(ints, floats, words)  # fmt: skip
    n = X.shape[0]
    n_trees = tree_start.shape[0] - 1
    out = np.empty(n)
    XT = np.empty((X.shape[1], _BLOCK_ROWS))
    CT = np.empty((max(cat_cols.shape[0], 1), _BLOCK_ROWS), dtype=np.uint64)
    v = np.empty(_BLOCK_ROWS, dtype=np.uint64)
    for start in range(0, n, _BLOCK_ROWS):
        m = min(_BLOCK_ROWS, n - start)
        _load_block(X, start, m, XT, CT, cat_cols, cat_counts, cat_values)
        for r in range(m):
            out[start + r] = floats[0]
        # tree after tree, as _raw_predict adds them: the same rounding
        for t in range(n_trees):
            _exit_masks(t, m, v, XT, CT, tree_start, kind, col, bitset, threshold, mask, cat_bits)
            first_leaf = leaf_start[t]
            for r in range(m):
                out[start + r] += leaf_value[first_leaf + np.int64(_trailing_zeros(v[r]))]
    if calibrated:
        cal_kind = ints[_H_CAL_KIND]
        for r in range(n):
            out[r] = _calibrate(out[r], cal_kind, cal_x, cal_y)
    return out


@njit(cache=True, nogil=True)
def _contributions(X, ints, floats, words):
    (kind, col, bitset, tree_start, leaf_start, cat_cols, cat_counts, path_start, path_cols, threshold, leaf_value,
     cat_values, cal_x, cal_y, path_delta, mask, cat_bits) = _unpack(ints, floats, words)  # fmt: skip
    n, n_features = X.shape
    n_trees = tree_start.shape[0] - 1
    margin = np.empty(n)
    contrib = np.zeros((n, n_features))
    XT = np.empty((n_features, _BLOCK_ROWS))
    CT = np.empty((max(cat_cols.shape[0], 1), _BLOCK_ROWS), dtype=np.uint64)
    v = np.empty(_BLOCK_ROWS, dtype=np.uint64)
    for start in range(0, n, _BLOCK_ROWS):
        m = min(_BLOCK_ROWS, n - start)
        _load_block(X, start, m, XT, CT, cat_cols, cat_counts, cat_values)
        for r in range(m):
            margin[start + r] = floats[0]
        for t in range(n_trees):
            _exit_masks(t, m, v, XT, CT, tree_start, kind, col, bitset, threshold, mask, cat_bits)
            for r in range(m):
                leaf = leaf_start[t] + np.int64(_trailing_zeros(v[r]))
                margin[start + r] += leaf_value[leaf]
                for p in range(path_start[leaf], path_start[leaf + 1]):
                    contrib[start + r, path_cols[p]] += path_delta[p]
    cal_kind = ints[_H_CAL_KIND]
    expected_margin = floats[1]
    base_p = _calibrate(expected_margin, cal_kind, cal_x, cal_y)
    for r in range(n):
        dm = margin[r] - expected_margin
        scale = 0.0 if dm == 0.0 else (_calibrate(margin[r], cal_kind, cal_x, cal_y) - base_p) / dm
        for f in range(n_features):
            contrib[r, f] *= scale
    return np.full(n, base_p), contrib
