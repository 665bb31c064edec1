"""Partitioned Runge–Kutta pairs (ocgen.pair) and their order certificates (ocgen.pair_order).

Expected orders come from the literature (Jay 1996; Hairer, Lubich & Wanner; Ruth 1983;
Forest & Ruth 1990; MATH.md 4) or from an independent route: tree counts from the
enumeration recurrence, failing conditions worked out by hand, observed convergence orders on
the pendulum, and the conservation law that defines the costate scheme.
"""

import json
from fractions import Fraction as F

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.special import ellipj, ellipk

from ocgen.cli import main
from ocgen.errors import InputError
from ocgen.pair import PartitionedTableau, builtin_pair_names, builtin_pairs, load_method, load_pair
from ocgen.pair_order import (certificate, classical_order, control_order, format_certificate,
                              separable_order)
from ocgen.tableau import ButcherTableau, ZeroWeightError, builtin_tableaux, load_tableau
from ocgen.tableau import normalise_name as key
from ocgen.trees import A_COLOUR, SECOND_COLOUR, alternates, coloured_trees

R = sp.Rational
PAIR_COLOURS = (A_COLOUR, SECOND_COLOUR)


def pair(name, first, second):
    return PartitionedTableau(name=name, first=load_tableau(first) if isinstance(first, str)
                              else first, second=load_tableau(second)
                              if isinstance(second, str) else second)


def tableau(A, b):
    return ButcherTableau(name="part", A=sp.ImmutableMatrix(A), b=list(b))


# Störmer–Verlet with â_11 changed from 1/2 to 1/3: ĉ = (1/3, 1/2), so by hand
# Σ b_i ĉ_i = Σ b̂_i ĉ_i = 5/12 ≠ 1/2 while Σ b_i c_i = Σ b̂_i c_i = 1/2 (c = (0, 1)).
PERTURBED = pair("perturbed Verlet", "Lobatto IIIA 2",
                 tableau([[R(1, 3), 0], [R(1, 2), 0]], [R(1, 2), R(1, 2)]))


# -- trees -----------------------------------------------------------------------------------
def rooted_counts(kinds: int, n: int) -> list[int]:
    """Rooted trees with ``kinds`` kinds of vertex, by the classical recurrence
    a(m+1) = (1/m) Σ_{j=1..m} (Σ_{d|j} d a(d)) a(m+1−j), a(1) = kinds (OEIS A000081 for one
    kind, A038055 for two)."""
    a = [0, kinds]
    for m in range(1, n):
        total = sum(sum(d * a[d] for d in range(1, j + 1) if j % d == 0) * a[m + 1 - j]
                    for j in range(1, m + 1))
        a.append(total // m)
    return a[1:]


def test_p_tree_counts():
    # P-trees: every vertex one of two colours; separable ones alternate: two per rooted tree.
    two, one = rooted_counts(2, 6), rooted_counts(1, 6)
    assert two[:4] == [2, 4, 14, 52]
    for q in range(1, 7):
        trees = [(t, r) for r in PAIR_COLOURS for t in coloured_trees(q, PAIR_COLOURS)]
        assert len(trees) == two[q - 1]
        assert sum(alternates(t, r) for t, r in trees) == 2 * one[q - 1]
    # four edge colours (the pair with its partner pair), root uncoloured: a(q)/4
    four = rooted_counts(4, 5)
    assert [len(list(coloured_trees(q, 4))) for q in range(1, 6)] == [x // 4 for x in four]


# -- literature orders -----------------------------------------------------------------------
# (pair, order on general partitioned problems, order on separable problems, control order);
# None where the literature gives no value (the numerical tests below check those).
LITERATURE = [
    ("Störmer–Verlet", 2, 2, 2),                 # Jay 1996: Lobatto IIIA–IIIB s = 2: 2s − 2
    ("Störmer–Verlet (IIIB–IIIA)", 2, 2, 2),
    ("Lobatto IIIA–IIIB 3", 4, None, 4),          # 2s − 2; control: the pair again (MATH.md 4)
    ("Lobatto IIIA–IIIB 4", 6, None, 6),
    ("symplectic Euler (explicit–implicit)", 1, 1, 1),   # HLW I.1.2
    ("symplectic Euler (implicit–explicit)", 1, 1, 1),
    ("Ruth 3", None, 3, None),                    # Ruth 1983, for H = T(p) + V(q)
    ("Forest–Ruth 4", None, 4, None),             # Forest & Ruth 1990; Yoshida 1990
]


@pytest.mark.parametrize("name, order, sep, control", LITERATURE)
def test_literature_orders(name, order, sep, control):
    p = load_pair(name)
    if order is not None:
        result = classical_order(p)
        assert (result.order, result.at_least) == (order, False)
        assert all(c.order == order + 1 and c.residual != 0 for c in result.failed)
    if sep is not None:
        assert (separable_order(p).order, separable_order(p).at_least) == (sep, False)
    if control is not None:
        result = control_order(p, 7)
        assert (result.order, result.at_least) == (control, False)
    # the library records the same values
    assert (p.literature_order, p.literature_separable_order,
            p.literature_control_order) == (order, sep, control)


def test_every_builtin_is_listed_once():
    assert sorted(builtin_pair_names()) == sorted(n for n, *_ in LITERATURE)
    tableau_keys = {key(n) for t in builtin_tableaux() for n in (t.name, *t.aliases)}
    pair_keys = [{key(n) for n in (p.name, *p.aliases)} for p in builtin_pairs()]
    assert sum(map(len, pair_keys)) == len(set().union(*pair_keys))  # no name twice
    assert not tableau_keys & set().union(*pair_keys)


def test_splitting_pairs_have_no_control_order():
    for name in ("Ruth 3", "Forest–Ruth 4"):
        result = control_order(name)
        assert result.order is None and "b ≠ b̂" in result.reason


def test_perturbed_pair_fails_with_the_named_trees():
    result = classical_order(PERTURBED)
    assert result.order == 1
    failed = {(c.formula, c.tree.bracket(c.root), c.value) for c in result.failed}
    assert failed == {("Σ b_i ĉ_i", "[τ̂]", R(5, 12)), ("Σ b̂_i ĉ_i", "⟨τ̂⟩", R(5, 12))}
    assert all(c.expected == R(1, 2) for c in result.failed)


def test_conditions_rooted_in_the_second_weights_use_them():
    """Lobatto IIIA 2 (b = (1/2, 1/2), c = (0, 1)) with a second part of weights
    b̂ = (1/4, 3/4) and ĉ = (1/3, 1/2); by hand Σ b_i ĉ_i = 5/12, Σ b̂_i c_i = 3/4 and
    Σ b̂_i ĉ_i = 1/12 + 3/8 = 11/24, while Σ b_i c_i = 1/2 holds."""
    unequal = pair("unequal weights", "Lobatto IIIA 2",
                   tableau([[R(1, 3), 0], [R(1, 2), 0]], [R(1, 4), R(3, 4)]))
    result = classical_order(unequal)
    assert result.order == 1
    assert {(c.formula, c.value) for c in result.failed} == {
        ("Σ b_i ĉ_i", R(5, 12)), ("Σ b̂_i c_i", R(3, 4)), ("Σ b̂_i ĉ_i", R(11, 24))}


def test_verlet_fails_the_separable_conditions_of_order_three():
    # A = [[0, 0], [1/2, 1/2]], c = (0, 1); Â = [[1/2, 0], [1/2, 0]], ĉ = (1/2, 1/2); b = b̂.
    # By hand: Σ b ĉ² = 1/4, Σ b_i â_ij c_j = 0, Σ b̂ c² = 1/2, Σ b̂_i a_ij ĉ_j = 1/4.
    result = separable_order("Störmer–Verlet")
    assert result.order == 2
    assert {(c.formula, c.value, c.expected) for c in result.failed} == {
        ("Σ b_i ĉ_i²", R(1, 4), R(1, 3)), ("Σ b_i â_ij c_j", 0, R(1, 6)),
        ("Σ b̂_i c_i²", R(1, 2), R(1, 3)), ("Σ b̂_i a_ij ĉ_j", R(1, 4), R(1, 6))}


@pytest.mark.parametrize("name, control", [
    # MATH.md 4 (Hager 2000): a tableau T as the pair (T, T) has the control order of T
    ("Forward Euler", 1), ("Heun 2", 2), ("Ralston 3", 2), ("Kutta 3", 3), ("RK4", 4),
])
def test_control_order_of_a_tableau_paired_with_itself(name, control):
    result = control_order(pair(name, name, name))
    assert (result.order, result.at_least) == (control, False)


@pytest.mark.parametrize("p", [PERTURBED, pair("IIIA–IIIC", "Lobatto IIIA 3", "Lobatto IIIC 3")])
def test_control_order_by_classes_equals_all_trees(p):
    # not symplectic, b = b̂: four edge colours; one tree per symplectic class suffices
    assert not p.is_symplectic and p.same_weights
    by_class, every = control_order(p, 5), control_order(p, 5, all_trees=True)
    assert (by_class.order, by_class.at_least) == (every.order, every.at_least)
    assert every.checked > by_class.checked


def test_symplectic_pair_control_order_is_its_order():
    # Ã = Â and Ã̂ = A: the optimality system is the pair itself on (y, p_z) and (z, p_y)
    for name in ("Störmer–Verlet", "Lobatto IIIA–IIIB 3", "symplectic Euler"):
        assert control_order(name).order == classical_order(name).order


def test_rounded_entries_are_judged_with_a_tolerance():
    # Forest–Ruth to 17 digits: θ = 1/(2 − ∛2)
    theta = 1 / (2 - 2 ** (1 / 3))
    drifts = [theta / 2, (1 - theta) / 2, (1 - theta) / 2, theta / 2]
    kicks = [theta, 1 - 2 * theta, theta, 0.0]
    data = {"name": "Forest–Ruth rounded", "symplectic": "separable",
            "first": {"A": [[repr(drifts[j]) if j <= i else 0 for j in range(4)]
                            for i in range(4)], "b": [repr(x) for x in drifts]},
            "second": {"A": [[repr(kicks[j]) if j < i else 0 for j in range(4)]
                             for i in range(4)], "b": [repr(x) for x in kicks]}}
    p = PartitionedTableau.from_dict(data, "fr.json")
    assert not p.is_exact and p.tolerance > 0 and p.is_symplectic_separable
    assert separable_order(p).order == 4 and separable_order(p).tolerance == p.tolerance


# -- partner and symplecticity ---------------------------------------------------------------
def same(p, q) -> bool:
    return all(sp.simplify(x - y) == 0 for u, v in zip(p.parts, q.parts)
               for M, N in ((u.A, v.A), (u.b, v.b)) for x, y in zip(M, N))


@pytest.mark.parametrize("s", [2, 3, 4])
def test_partner_of_iiia_iiib_is_iiib_iiia(s):
    p = pair("IIIA–IIIB", f"Lobatto IIIA {s}", f"Lobatto IIIB {s}")
    assert same(p.partner(), pair("IIIB–IIIA", f"Lobatto IIIB {s}", f"Lobatto IIIA {s}"))
    assert same(load_pair("Störmer–Verlet").partner(), load_pair("Störmer–Verlet (IIIB–IIIA)"))


INVOLUTION_CASES = {p.name: p for p in (*builtin_pairs(), PERTURBED) if p.name != "Forest–Ruth 4"}


# names as ids: stable when pytest runs twice in one process
@pytest.mark.parametrize("name", INVOLUTION_CASES)
def test_partner_is_an_involution_and_the_swap_for_symplectic_pairs(name):
    p = INVOLUTION_CASES[name]
    assert same(p.partner().partner(), p)
    assert same(p.partner(), p.swapped()) == p.is_symplectic_separable


def test_symplecticity_is_decided_exactly():
    general = {"Störmer–Verlet", "Störmer–Verlet (IIIB–IIIA)", "Lobatto IIIA–IIIB 3",
               "Lobatto IIIA–IIIB 4", "symplectic Euler (explicit–implicit)",
               "symplectic Euler (implicit–explicit)"}
    for p in builtin_pairs():
        assert p.is_symplectic == (p.name in general)
        assert p.is_symplectic_separable  # Ruth and Forest–Ruth: compositions of flows
    assert not PERTURBED.is_symplectic_separable and PERTURBED.symplecticity_defect == (0, 0)
    with pytest.raises(ZeroWeightError, match="b̂_4 = 0"):
        load_pair("Forest–Ruth 4").partner()


def step_matrix(p, K, h=0.1):
    """One step of the pair on the linear system (y, z)' = K (y, z), as a matrix (numpy)."""
    A, Ah = (np.array(part.A.tolist(), dtype=float) for part in p.parts)
    b, bh = (np.array([float(x) for x in part.b]) for part in p.parts)
    d = K.shape[0] // 2
    K11, K12, K21, K22 = K[:d, :d], K[:d, d:], K[d:, :d], K[d:, d:]
    s, I = len(b), np.eye(d)
    stages = np.eye(2 * s * d) - h * np.block([[np.kron(A, K11), np.kron(A, K12)],
                                               [np.kron(Ah, K21), np.kron(Ah, K22)]])
    ones = np.kron(np.ones((s, 1)), I)
    start = np.block([[ones, np.zeros_like(ones)], [np.zeros_like(ones), ones]])
    X = np.linalg.solve(stages, start)  # stage values from (y_n, z_n)
    weights = np.block([[np.kron(b, K11), np.kron(b, K12)], [np.kron(bh, K21), np.kron(bh, K22)]])
    return np.eye(2 * d) + h * weights @ X


@pytest.mark.parametrize("name, separable", [
    ("Ruth 3", True), ("Störmer–Verlet", False), ("Lobatto IIIA–IIIB 3", False),
    ("perturbed", False), ("Lobatto IIIA 3 with IIIC 3", False), ("Ruth 3 swapped", True)])
def test_partner_pair_conserves_the_costate_pairing(name, separable):
    # The costate scheme is defined by p_{n+1}ᵀ δx_{n+1} = p_nᵀ δx_n (MATH.md 3.2): with S the
    # step of the pair on x' = Kx and S̃ that of the partner pair on p' = −Kᵀp, S̃ᵀ S = I.
    p = {"perturbed": PERTURBED,
         "Lobatto IIIA 3 with IIIC 3": pair("IIIA–IIIC", "Lobatto IIIA 3", "Lobatto IIIC 3"),
         "Ruth 3 swapped": load_pair("Ruth 3").swapped()}.get(name) or load_pair(name)
    rng = np.random.default_rng(7)
    K = rng.normal(size=(4, 4))
    if separable:  # y' = K12 z, z' = K21 y: the only case where b ≠ b̂ is allowed
        K[:2, :2] = K[2:, 2:] = 0
    S, St = step_matrix(p, K), step_matrix(p.partner(), -K.T)
    assert np.abs(St.T @ S - np.eye(4)).max() < 1e-12
    if not p.same_weights:
        # each part's own partner with its own weights is not the costate scheme when b ≠ b̂
        own = PartitionedTableau(name="own", first=p.first.partner(), second=p.second.partner())
        assert np.abs(step_matrix(own, -K.T).T @ S - np.eye(4)).max() > 1e-3


# -- convergence: an independent check of the certified orders --------------------------------
def integrate(p, f, g, y, z, T, steps):
    """The pair on y' = f(y, z), z' = g(y, z) (scalars); implicit stages by fixed point."""
    A, Ah = (np.array(part.A.tolist(), dtype=float) for part in p.parts)
    b, bh = (np.array([float(x) for x in part.b]) for part in p.parts)
    h = T / steps
    for _ in range(steps):
        Y, Z = np.full(len(b), y), np.full(len(b), z)
        for _ in range(200):
            Yn, Zn = y + h * A @ f(Y, Z), z + h * Ah @ g(Y, Z)
            done = max(abs(Yn - Y).max(), abs(Zn - Z).max()) < 1e-16
            Y, Z = Yn, Zn
            if done:
                break
        y, z = y + h * b @ f(Y, Z), z + h * bh @ g(Y, Z)
    return np.array([y, z])


def pendulum(t, q0=1.0):
    """q' = p, p' = −sin q with q(0) = q0, p(0) = 0: sin(q/2) = k sn(K − t | k²), k = sin(q0/2)."""
    k = np.sin(q0 / 2)
    sn, cn, _, _ = ellipj(ellipk(k * k) - t, k * k)
    return np.array([2 * np.arcsin(k * sn), -2 * k * cn])


NONSEPARABLE = (lambda y, z: np.sin(z) + y * z / 2, lambda y, z: -y - 0.4 * z ** 2)


@pytest.fixture(scope="module")
def nonseparable_reference():
    f, g = NONSEPARABLE
    return solve_ivp(lambda t, u: [f(*u), g(*u)], (0, 1), [0.5, 0.3], method="DOP853",
                     rtol=3e-14, atol=1e-14).y[:, -1]


@pytest.mark.parametrize("name, steps", [
    ("Störmer–Verlet", 20), ("Störmer–Verlet (IIIB–IIIA)", 20), ("Lobatto IIIA–IIIB 3", 8),
    ("Lobatto IIIA–IIIB 4", 4), ("symplectic Euler (explicit–implicit)", 40),
    ("symplectic Euler (implicit–explicit)", 40), ("Ruth 3", 20), ("Forest–Ruth 4", 10),
])
def test_observed_orders_match_the_certificates(name, steps, nonseparable_reference):
    p = load_pair(name)
    exact = pendulum(2.0)
    errors = [np.abs(integrate(p, lambda y, z: z, lambda y, z: -np.sin(y), 1.0, 0.0, 2.0, n)
                     - exact).max() for n in (steps, 2 * steps)]
    assert abs(np.log2(errors[0] / errors[1]) - separable_order(p).order) < 0.25
    # a non-separable problem: Ruth 3 and Forest–Ruth 4 drop to order 1 there
    errors = [np.abs(integrate(p, *NONSEPARABLE, 0.5, 0.3, 1.0, n)
                     - nonseparable_reference).max() for n in (steps, 2 * steps)]
    assert abs(np.log2(errors[0] / errors[1]) - classical_order(p).order) < 0.25


# -- files -----------------------------------------------------------------------------------
def test_round_trip_through_toml_and_json(tmp_path):
    for p in builtin_pairs():
        for suffix, text in ((".toml", p.to_toml()), (".json", p.to_json())):
            path = tmp_path / f"copy{suffix}"
            path.write_text(text, encoding="utf-8")
            copy = load_pair(path)
            assert same(copy, p) and copy.to_dict() == p.to_dict()


def test_load_method_tells_tableaux_from_pairs(tmp_path):
    assert isinstance(load_method("rk4"), ButcherTableau)
    assert isinstance(load_method("velocity verlet"), PartitionedTableau)
    assert load_pair("STORMER-VERLET") is load_pair("Lobatto IIIA-IIIB 2")
    with pytest.raises(InputError, match="unknown tableau or pair 'verlett'; did you mean"):
        load_method("verlett")
    with pytest.raises(InputError, match="unknown pair"):
        load_pair("rk4")


BAD = [
    ({"first": "Lobatto IIIA 3", "second": "Lobatto IIIB 2"}, "second", "2 stages and the first 3"),
    ({"symplectic": True, "first": {"A": [[0, 0], ["2/3", 0]], "b": ["1/4", "3/4"]},
      "second": {"A": [["1/4", 0], ["1/4", "3/4"]], "b": ["1/4", "3/4"]}},
     "symplectic", "b_i â_ij + b̂_j a_ji − b_i b̂_j"),
    ({"symplectic": True, "first": "Forward Euler",
      "second": {"A": [["1/2"]], "b": [2]}}, "symplectic", "b ≠ b̂"),
    ({"symplectic": False, "first": "Lobatto IIIB 2", "second": "Lobatto IIIA 2"},
     "symplectic", "the pair is symplectic"),
    ({"symplectic": "yes", "first": "euler", "second": "euler"}, "symplectic", "expected true"),
    ({"first": {"A": [["x"]], "b": [1]}, "second": "euler"}, "first.A[0][0]", "unknown name"),
    ({"first": {"A": [[0]], "b": [1], "d": [1]}, "second": "euler"}, "first.d", "unknown key"),
    ({"first": {"A": [[0]]}, "second": "euler"}, "first", "missing required key 'b'"),
    ({"first": "euler", "second": "nosuch"}, "second", "unknown tableau 'nosuch'"),
    ({"first": "euler", "second": "other.toml"}, "second", "cannot be read from another file"),
    ({"A": [[0]], "b": [1], "first": "euler", "second": "euler"}, "A", "a pair has tables"),
    ({"first": "euler", "order": -1, "second": "euler"}, "order", "non-negative integer"),
]


@pytest.mark.parametrize("data, where, message", BAD)
def test_bad_pair_files_name_file_and_key(tmp_path, capsys, data, where, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["order", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert f"bad.json: {where}: " in err and message in err


def test_missing_part(tmp_path):
    path = tmp_path / "half.toml"
    path.write_text('first = "euler"\n', encoding="utf-8")
    with pytest.raises(InputError, match="missing required key 'second'"):
        load_pair(path)


# -- command line ----------------------------------------------------------------------------
def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_order_text(capsys):
    code, out, err = run(capsys, "order", "velocity verlet")
    assert code == 0 and err == ""
    for line in ("Symplectic: yes", "Partner pair (costates): the swapped pair", "Order: 2",
                 "Order on separable problems: 2", "Optimal-control order: 2",
                 "Σ b_i ĉ_i² = 1/4, needs 1/3   tree [τ̂²]"):
        assert line in out
    assert out == format_certificate("Störmer–Verlet") + "\n"


def test_order_json_schema(capsys):
    code, out, _ = run(capsys, "order", "rk4", "ruth3", "--json")
    tableau_cert, pair_cert = json.loads(out)
    assert code == 0 and "type" not in tableau_cert and pair_cert["type"] == "pair"
    assert pair_cert == json.loads(json.dumps(certificate("Ruth 3")))
    shared = {"name", "aliases", "stages", "explicit", "exact", "tolerance", "order",
              "order_at_least", "max_order", "control_order", "control_order_at_least",
              "control_order_reason", "max_control_order", "literature_order",
              "literature_control_order", "symplectic", "partner", "failed_conditions"}
    assert shared <= set(tableau_cert) and shared <= set(pair_cert)
    assert {"first", "second", "separable_order", "symplectic_separable",
            "partner_is_swapped", "explicit_for_separable"} <= set(pair_cert)
    assert (pair_cert["order"], pair_cert["separable_order"], pair_cert["control_order"]) \
        == (1, 3, None)
    assert pair_cert["partner"]["first"]["b"] == ["7/24", "3/4", "-1/24"]  # the swap
    kinds = {c["kind"] for c in pair_cert["failed_conditions"]}
    assert kinds == {"classical", "separable"}


def test_tableau_list_and_show(capsys):
    code, out, _ = run(capsys, "tableau", "list")
    assert code == 0 and "Partitioned pairs" in out
    assert all(name in out for name in builtin_pair_names())
    code, out, _ = run(capsys, "tableau", "list", "--json")
    assert [r["name"] for r in json.loads(out)] == [t.name for t in builtin_tableaux()]
    code, out, _ = run(capsys, "tableau", "list", "--pairs", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == builtin_pair_names()
    assert {r["name"]: r["symplectic"] for r in rows}["Ruth 3"] == "separable"
    code, out, _ = run(capsys, "tableau", "show", "ruth3", "--json")
    assert code == 0 and PartitionedTableau.from_dict(json.loads(out)) == load_pair("ruth3")
    code, out, _ = run(capsys, "tableau", "show", "IIIA-IIIB 3")
    assert code == 0 and "first part (A, b, c), for y:" in out and "5/24" in out
    code, out, _ = run(capsys, "tableau", "show", "verlet", "--latex")
    assert code == 0 and out.count("\\begin{array}") == 2


def test_fraction_weights_of_a_p_tree():
    # the engine's weights for a tree rooted in the second part use b̂ (by hand: Σ b̂_i ĉ_i)
    from ocgen.trees import LEAF, ElementaryWeights, RootedTree
    A, Ah = [[0, 0], [F(1, 2), F(1, 2)]], [[F(1, 3), 0], [F(1, 2), 0]]
    b, bh = [F(1, 2), F(1, 2)], [F(1, 4), F(3, 4)]
    engine = ElementaryWeights([A, None, Ah], b)
    tree = RootedTree([(SECOND_COLOUR, LEAF)])
    assert engine.weight(tree, bh) == F(1, 4) * F(1, 3) + F(3, 4) * F(1, 2)
    assert engine.weight(tree) == F(1, 2) * F(1, 3) + F(1, 2) * F(1, 2)
    with pytest.raises(ValueError, match="colour 1"):
        engine.phi(RootedTree([(1, LEAF)]))


def test_rounded_second_weights_judged_on_their_own_size():
    """A b̂-rooted condition of a rounded pair is judged against W̄(t) with |b̂| (ocgen.order's
    module docstring): for b̂ = (3, −2 + δ), Σ b̂ − 1 = δ and W̄ = Σ|b̂| ≈ 5, not Σ|b| = 1,
    so δ = 3e-13 holds (tolerance 5e-13) and δ = 5e-12 fails with the rounding note of
    |δ|/W̄ = 1e-12: 12 digits. Order 2 fails in both: Σ b̂_i c_i = −2 + δ ≠ ½."""
    F = lambda x: sp.Float(x, 15)  # noqa: E731
    first = tableau([[F("0.0"), F("0.0")], [F("1.0"), F("0.0")]], [F("0.5"), F("0.5")])

    def with_second_weights(last):
        return pair(f"b̂_2 = {last}", first,
                    tableau([[F("0.0"), F("0.0")], [F("1.0"), F("0.0")]], [F("3.0"), F(last)]))

    assert classical_order(with_second_weights("-1.9999999999997"), max_order=3).order == 1
    result = classical_order(with_second_weights("-1.999999999995"), max_order=3)
    assert result.order == 0
    [condition] = result.failed
    assert condition.root == SECOND_COLOUR
    assert condition.note == "the coefficients look rounded to 12 digits"
