"""Networks derived at matrix level (ocgen.nets.matrix): the formulas against the scalar
derivation at small widths, symbolically and numerically; Taylor tests where the scalar
derivation cannot go; the generated text."""

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import sympy as sp

from ocgen.derive import OutsideTheoryWarning, discretise
from ocgen.errors import InputError
from ocgen.nets.matrix import derive_network, entry, evaluate, proportion
from ocgen.nets.matrix_code import generate_network, network_module
from ocgen.nets.model import (MAX_SCALAR_WIDTH, SCALAR_REACH, Architecture,
                              network_problem, scalar_derivable)
from ocgen.nets.training import Objective
from ocgen.tableau import load_tableau
from ocgen.taylor import taylor_test

# (tableau, controls, dynamics, activation, loss, depth, Tikhonov, width)
CASES = [
    ("rk4", "step", "tanh", "tanh", "squares", "odenet", 0.1, 2),
    ("kutta3", "stage", "symmetric", "sigmoid", "cross-entropy", "odenet", 0.0, 2),
    ("heun2", "step", "antisymmetric", "softplus", "squares", "net", 0.2, 2),
    ("gauss2", "stage", "tanh", "sigmoid", "cross-entropy", "odenet", 0.1, 2),
    ("midpoint", "step", "symmetric", "tanh", "squares", "odenet", 0.1, 2),
    ("euler", "step", "antisymmetric", "tanh", "cross-entropy", "odenet", 0.1, 3),
    ("ralston2", "stage", "tanh", "softplus", "squares", "net", 0.0, 3),
]


def architecture(case):
    tableau, controls, dynamics, activation, loss, depth, tikhonov, width = case
    return load_tableau(tableau), Architecture(
        width=width, layers=3, controls=controls, dynamics=dynamics, activation=activation,
        loss=loss, depth=depth, tikhonov=tikhonov, gamma=0.1)


def scalar_discretisation(tableau, arch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideTheoryWarning)
        return discretise(network_problem(arch), tableau, arch.controls)


def canonical(expr):
    """sinh = tanh·cosh, so that the softplus slope sinh(z/2)/(2 cosh(z/2)) + 1/2 meets its
    matrix-level form tanh(z/2)/2 + 1/2; then expanded."""
    return sp.expand(sp.sympify(expr).replace(sp.sinh, lambda x: sp.tanh(x) * sp.cosh(x)))


def same(a, b) -> bool:
    return canonical(a) - canonical(b) == 0


def assert_same(computed, expected, what):
    computed, expected = list(computed), list(expected)
    assert len(computed) == len(expected), what
    for k, (a, b) in enumerate(zip(computed, expected)):
        assert same(a, b), f"{what}[{k}]: {a} != {b}"


def column(symbols):
    return sp.Matrix(list(symbols))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_matrix_formulas_expand_to_the_scalar_derivation(case):
    """At width d and one point, every assignment of the matrix-level step (stage values,
    slopes, next state, step cost, each stage multiplier or partner stage costate, p_n, ∂J/∂θ,
    the stage costates, ∂J/∂h) and of the terminal cost (Φ, p_N, ∂Φ/∂W, ∂Φ/∂μ) equals the
    scalar derivation's, with the same symbols on both sides."""
    tableau, arch = architecture(case)
    d = arch.width
    disc = scalar_discretisation(tableau, arch)
    derivation = derive_network(arch, tableau)
    sym = disc.symbols
    params = dict(zip((q.name for q, _ in disc.problem.member_parameters), sym.params))
    values = {"y": column(sym.y), "p": column(sym.p), "h": sym.h,
              "weight": sp.Matrix([[params["weight"]]]), "c": sp.Matrix([[params["c"]]]),
              "share_sum": params.get("share", 0), "W": column(sym.free[:d]),
              "mu": sp.Matrix([[sym.free[d]]])}
    for g, u in enumerate(sym.u):
        values[f"K_{g}"] = sp.Matrix(d, d, list(u[:d * d]))
        values[f"beta_{g}"] = column(u[d * d:])
    for i in range(tableau.stages):
        for name, rows in (("Y", sym.Y), ("lam", sym.lam), ("P", sym.P), ("F", sym.F)):
            values[f"{name}_{i}"] = column(rows[i])
    stages = frozenset(f"{n}_{i}" for n in ("Y", "F") for i in range(tableau.stages))

    # forward: each stage value and slope with the others held symbolic
    run = (*derivation.forward_start, *derivation.forward, *derivation.forward_post)
    env, computed = evaluate(run, values, d, 1, stages)
    slopes = dict(disc.slopes)
    for i in range(tableau.stages):
        assert_same(computed[f"F_{i}"], [slopes[F] for F in sym.F[i]], f"F_{i}")
        expected = ([dict(disc.stage_sequence)[Y] for Y in sym.Y[i]] if not disc.implicit else
                    [Y - R for Y, R in zip(sym.Y[i], disc.stage_residual[i * d:(i + 1) * d])])
        assert_same(computed[f"Y_{i}"].xreplace(slopes),
                    [e.xreplace(slopes) for e in expected], f"Y_{i}")
    assert_same(env["y_next"].xreplace(slopes), [e.xreplace(slopes) for e in disc.next_state],
                "y_next")
    assert_same([env["cost"]], [disc.step_cost], "step cost")

    # terminal cost
    env, _ = evaluate(derivation.terminal, {**values, "y_end": values["y"]}, d, 1)
    assert_same([env["terminal"]], [disc.terminal_cost], "terminal cost")
    assert_same(env["p_end"], disc.terminal_costate, "p_N")
    assert_same([*env["gW"], *env["gmu"]], disc.terminal_parameter_gradient, "dPhi/d(W, mu)")

    # the stage values' layer quantities (S, Z, F) in terms of the symbols Y_i
    layer_values = dict(values)
    for i in range(tableau.stages):
        layer_nodes = [n for n in derivation.forward if n.target.name.endswith(f"_{i}")
                       and not n.target.name.startswith("Y_")]
        layer_values.update(evaluate(layer_nodes, layer_values, d, 1)[0])
    for form, sweep in derivation.sweeps.items():
        step = disc.multiplier if form == "multiplier" else disc.partner
        held = frozenset(X.name for X in sweep.unknowns)
        start = {**layer_values, **{f"gK_{g}": sp.zeros(d, d) for g in range(len(sym.u))},
                 **{f"gbeta_{g}": sp.zeros(d, 1) for g in range(len(sym.u))}}
        env, computed = evaluate((*sweep.loop, *sweep.core, *sweep.extras), start, d, 1, held)
        unknowns = {x: v for x, v in step.stages.sequence} if step.stages.sequence else None
        if unknowns is None:  # implicit: the stationarity conditions r − M U = 0 as U = … + U
            flat = [x for row in step.stages.unknowns for x in row]
            E = step.stages.rhs - step.stages.matrix * sp.Matrix(flat)
            unknowns = {x: E[k] + x for k, x in enumerate(flat)}
        for X in sweep.unknowns:
            i = int(X.name.split("_")[1])
            rows = step.stages.unknowns[i]
            assert_same(computed[X.name], [unknowns[x] for x in rows], f"{form} {X.name}")
        assert_same(env[sweep.previous.name], step.previous_costate, f"{form} p_n")
        for g, row in enumerate(step.control_gradient):
            assert_same([*env[f"gK_{g}"], *env[f"gbeta_{g}"]], row, f"{form} dJ/dtheta_{g}")
        for i, X in enumerate(sweep.stage_costates):
            assert_same(env[X.name], step.stage_costates[i], f"{form} stage costate {i}")
        rho = step.step_gradient.xreplace({sym.rho: 0})
        assert_same([env[sweep.step_gradient.name]], [rho], f"{form} dJ/dh")


def random_inputs(module, width, points=9, layers=3, seed=0, depth="odenet"):
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((layers, module.N_GROUPS, width * width + width))
    h = np.ones(layers) if depth == "net" else rng.uniform(0.15, 0.35, layers)
    y0 = rng.uniform(-1, 1, (width, points))
    values = {"weight": np.full(points, 0.7), "c": rng.integers(0, 2, points) * 1.0,
              "share": np.full(points, 1 / points)}
    params = np.array([values[name] for name in module.PARAMETER_NAMES])
    return theta, h, y0, params, rng.standard_normal(width + 1)


def relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


WIDTH_4 = [("rk4", "stage", "tanh", "tanh", "squares", "odenet", 0.1, 4),
           ("kutta3", "step", "antisymmetric", "sigmoid", "cross-entropy", "resnet", 0.0, 4)]


def test_proportion_of_cotangents():
    """κ = numerator / denominator for combinations of arrays with surd and symbolic
    coefficients (Gauss-2's cotangents) or decimal ones (a rounded tableau), and None when they
    are not proportional."""
    p, lam0, lam1, h, b = sp.symbols("p lam_0 lam_1 h b")
    arrays = lambda e: e.free_symbols & {p, lam0, lam1}  # noqa: E731
    V = lam0 / 4 + sp.sqrt(3) * lam1 / 6 + lam1 / 4 + p / 2
    for kappa in (h, -h / 3, h * (1 + sp.sqrt(3)) / b, sp.Integer(2)):
        assert proportion(sp.expand(kappa * V), V, arrays) == sp.cancel(kappa)
    assert proportion(sp.expand(h * V) + h * lam0, V, arrays) is None  # one array off
    assert proportion(sp.expand(h * lam1 * V), V, arrays) is None  # κ holding an array
    assert proportion(h * (lam0 + p), 2 * h * lam0 + 2 * h * p, arrays) == sp.Rational(1, 2)
    rounded = sp.Float(0.4358665215) * (lam0 + p)
    assert float(proportion(sp.expand(h * rounded), rounded, arrays) / h) == 1
    assert proportion(3 * h, h, arrays) == 3  # no arrays at all


@pytest.mark.parametrize("case", CASES + WIDTH_4, ids=lambda c: "-".join(map(str, c)))
def test_matrix_module_agrees_with_the_scalar_module(case):
    """J, ∂J/∂θ, ∂J/∂(W, μ), ∂J/∂h, ∂J/∂y_0, the costates and the stage multipliers of the
    two generated modules agree to 1e-12 over 9 points, in both costate forms where they
    exist (d = 2, 3, 4)."""
    tableau, arch = architecture(case)
    matrix = network_module(arch, tableau, matrix=True)
    scalar = network_module(arch, tableau, matrix=False)
    theta, h, y0, params, free = random_inputs(matrix, arch.width, depth=arch.depth)
    ours = matrix.forward(theta, h, y0, params, free=free)
    theirs = scalar.forward(theta, h, y0, params, free=free)
    assert ours["objective"] == pytest.approx(theirs["objective"], rel=1e-12)
    assert ours["terminal_cost"] == pytest.approx(theirs["terminal_cost"], rel=1e-12)
    assert relative(ours["y"], theirs["y"]) <= 1e-12
    assert relative(ours["Y"], theirs["Y"]) <= 1e-12
    np.testing.assert_allclose(ours["t"], theirs["t"], rtol=1e-15, atol=1e-15)
    forms = ("multiplier", "partner") if not tableau.zero_weights else ("multiplier",)
    for form in forms:
        a = matrix.costate(theta, ours, h, params, form, free=free)
        b = scalar.costate(theta, theirs, h, params, form, free=free)
        for key in ("gradient", "gradient_free", "gradient_h", "gradient_y0", "p"):
            assert relative(a[key], b[key]) <= 1e-12, (form, key)
        assert relative(a["stage_costates"], b["stage_costates"]) <= 1e-11, form
        if form == "multiplier":
            assert a["stage_multipliers"].shape == b["stage_multipliers"].shape
            assert relative(a["stage_multipliers"], b["stage_multipliers"]) <= 1e-11


def test_matrix_module_inputs_are_checked():
    """The matrix-level module refuses arrays of the wrong shape, naming the shape it needs."""
    tableau, arch = architecture(CASES[0])
    module = network_module(arch, tableau, matrix=True)
    theta, h, y0, params, free = random_inputs(module, arch.width)
    assert np.isfinite(module.forward(theta, h, y0, params, free=free)["objective"])
    groups, columns = module.N_GROUPS, arch.width ** 2 + arch.width
    for bad in (theta[0], theta[:, :, :-1], np.concatenate([theta, theta], axis=1)):
        with pytest.raises(ValueError, match=rf"^theta must have shape \(N, {groups}, "
                                             rf"{columns}\), got "):
            module.forward(bad, h, y0, params, free=free)
    with pytest.raises(ValueError, match=r"^h must have shape \(3,\), got \(2,\)$"):
        module.forward(theta, h[:2], y0, params, free=free)
    with pytest.raises(ValueError, match=r"^y0 must have shape \(d, points\), got \(18,\)$"):
        module.forward(theta, h, y0.ravel(), params, free=free)
    with pytest.raises(ValueError, match=r"^free must have shape \(3,\), got \(2,\)$"):
        module.forward(theta, h, y0, params, free=free[:2])


def test_training_on_the_paper_spiral_is_the_same_with_either_module(monkeypatch):
    """The paper's set-up (spiral, RK4, 20 layers, ResNet, step controls, squares loss),
    trained with the Lipschitz line search from one start: the matrix-level module and the
    scalar derivation's reach the same network to 1e-10."""
    import ocgen.nets.training as training
    from ocgen.nets.datasets import training_and_validation
    data, _ = training_and_validation("spiral", 60, 0)
    arch = Architecture(width=2, layers=20)
    results, used = {}, []

    def module_of(matrix):
        def chosen(a, t, **options):
            module = network_module(a, t, matrix=matrix, **options)
            used.append(hasattr(module, "NETWORK"))
            return module
        return chosen

    for matrix in (True, False):
        monkeypatch.setattr(training, "network_module", module_of(matrix))
        results[matrix] = training.train_network(data, "rk4", arch, optimizer="lipschitz",
                                                 iterations=40, seed=3)
    assert used == [True, False]
    a, b = (np.concatenate([r.network.theta.ravel(), r.network.W, [r.network.mu]])
            for r in (results[True], results[False]))
    assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b))
    assert results[True].final["objective"] == pytest.approx(results[False].final["objective"],
                                                             rel=1e-10)
    assert results[True].history[-1]["objective"] < 0.9 * results[True].history[0]["objective"]


def assert_taylor(J, x, g, seed=2):
    direction = np.random.default_rng(seed).standard_normal(np.shape(x))
    result = taylor_test(J, x, g, direction, epsilon=1e-2)
    assert result.min_rate >= 1.95, result


@pytest.mark.parametrize("tableau, width, dynamics, controls", [
    ("rk4", 64, "tanh", "step"), ("gauss2", 32, "symmetric", "step"),
    ("heun3", 32, "antisymmetric", "step"), ("kutta3", 32, "tanh", "stage")])
def test_taylor_at_widths_the_scalar_derivation_cannot_reach(tableau, width, dynamics,
                                                              controls):
    """J in (K, β, W, μ, h) together at d = 32 and 64, through the training objective: RK4,
    implicit Gauss-2, Heun-3 (a zero weight) with step controls, Kutta-3 with stage controls."""
    rng = np.random.default_rng(4)
    points = rng.uniform(-1, 1, size=(30, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(int)
    arch = Architecture(width=width, layers=3, dynamics=dynamics, controls=controls,
                        depth="odenet", tikhonov=0.01, loss="cross-entropy")
    objective = Objective(arch, load_tableau(tableau), points, labels)
    theta, free, h = objective.split(np.zeros(objective.size))
    theta = rng.standard_normal(theta.shape) / np.sqrt(width)
    free = rng.standard_normal(free.shape)
    x = objective.join(theta, free, np.full(3, 1 / 3))
    assert_taylor(objective.value, x, objective.gradient(x))


@pytest.mark.parametrize("tableau, width, dynamics", [
    ("rk4", 64, "tanh"), ("gauss2", 32, "symmetric"), ("heun3", 32, "antisymmetric")])
def test_float32_sweeps_against_float64_and_their_taylor_test(tableau, width, dynamics):
    """precision="float32": every array of the sweeps is float32; J and ∇J agree with the
    float64 sweeps to single precision (1e-5 relative for J, 1e-4 of max|∇J| for ∇J), and J32
    against ∇J32 passes the Taylor test at rate 1.95 on ε = 2^-6 … 2^-9 (the float64 test
    takes 1e-2 … 1.25e-3). Below that the rounding of J32, about 1e-7 |J|, is no longer small
    against the remainder; above it the remainder is not yet quadratic."""
    rng = np.random.default_rng(5)
    points = rng.uniform(-1, 1, size=(40, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(int)
    arch = Architecture(width=width, layers=4, dynamics=dynamics, depth="odenet",
                        tikhonov=0.01, loss="cross-entropy")
    single, double = (Objective(arch, load_tableau(tableau), points, labels, precision=p)
                      for p in ("float32", "float64"))
    theta, free, h = double.split(np.zeros(double.size))
    x = double.join(rng.standard_normal(theta.shape) / np.sqrt(width),
                    rng.standard_normal(free.shape), np.full(4, 1 / 4))
    (J32, g32), (J64, g64) = single.value_and_gradient(x), double.value_and_gradient(x)
    assert single._last["trajectories"][0]["y"].dtype == np.float32 and g32.dtype == np.float64
    assert abs(J32 - J64) <= 1e-5 * abs(J64)
    assert np.max(np.abs(g32 - g64)) <= 1e-4 * np.max(np.abs(g64))
    direction = np.random.default_rng(2).standard_normal(x.shape)
    result = taylor_test(single.value, x, g32, direction, epsilon=2.0**-6)
    assert result.min_rate >= 1.95, result


def test_float32_needs_the_matrix_level_module():
    points, labels = np.zeros((3, 2)), np.array([0, 1, 1])
    with pytest.raises(Exception, match="matrix-level module"):
        Objective(Architecture(width=2, layers=2), load_tableau("gauss2"), points, labels,
                  precision="float32")
    with pytest.raises(Exception, match="unknown precision"):
        Objective(Architecture(width=2, layers=2), load_tableau("rk4"), points, labels,
                  precision="float16")


def test_generated_text_is_deterministic_independent_of_width_and_holds_no_data():
    """Two renders in processes with different hash seeds are byte-identical; the text does
    not change with the width, and no data reaches it."""
    tableau, arch = architecture(CASES[3])
    text = generate_network(arch, tableau)
    assert generate_network(Architecture(**{**arch.__dict__, "width": 40}), tableau) == text
    script = ("from ocgen.nets.matrix_code import generate_network; "
              "from ocgen.nets.model import Architecture; import sys; "
              f"sys.stdout.write(generate_network(Architecture(**{arch.to_json()!r}), "
              f"{'gauss2'!r}))")
    environment = {**os.environ, "PYTHONHASHSEED": "7"}
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=environment, check=True).stdout
    assert other == text
    assert "INITIAL_STATES" not in text and "Inputs:   " in text and "Tableau:  Gauss" in text


def test_which_module_a_network_trains_with_and_the_width_cap():
    """Matrix level for the built-in dynamics (width up to 1024), except implicit tableaux
    where the entry-by-entry derivation takes the network (the scalar module's Newton solves);
    problem files at width 16 at most."""
    def level(width, tableau):
        module = network_module(Architecture(width=width, layers=2), load_tableau(tableau))
        return "matrix" if hasattr(module, "NETWORK") else "scalar"

    assert [level(64, "euler"), level(2, "rk4"), level(2, "gauss2"), level(17, "gauss2")] \
        == ["matrix", "matrix", "scalar", "matrix"]
    # an implicit tableau beyond the entry-by-entry derivation's reach, at width ≤ 16
    symmetric = Architecture(width=7, layers=2, dynamics="symmetric")
    assert hasattr(network_module(symmetric, "gauss2"), "NETWORK")
    with pytest.raises(InputError, match="7 is too wide for the entry-by-entry derivation of "
                                         "symmetric dynamics") as info:
        network_module(symmetric, "gauss2", matrix=False)
    assert info.value.key == "width"
    for name in ("rk4", "Forward Euler", "gauss2"):  # a name is the method it names
        arch = Architecture(width=2, layers=2)  # (the repr names the generated text's hash)
        assert repr(network_module(arch, name)) == repr(network_module(arch, load_tableau(name)))
    points, labels = np.zeros((3, 2)), np.array([0, 1, 1])
    objective = Objective(Architecture(width=3, layers=2), load_tableau("rk4"), points, labels)
    assert objective.module.NETWORK == "tanh_tanh_squares"
    with pytest.raises(Exception, match="at most 1024"):
        Architecture(width=1025, layers=2)
    with pytest.raises(Exception, match="at most 16"):
        Architecture(width=17, layers=2, dynamics="problem", problem={"states": []})


def test_the_stated_reach_of_the_entry_by_entry_derivation():
    """SCALAR_REACH, quoted by the errors, is what scalar_derivable finds: each width it
    names is derivable and the next one is not (hamiltonian: up to the width cap)."""
    reach = {dynamics: int(width)
             for width, dynamics in re.findall(r"(\d+) for (\w+)", SCALAR_REACH)}
    assert set(reach) == {"tanh", "antisymmetric", "symmetric", "hamiltonian"}
    for dynamics, width in reach.items():
        step = 2 if dynamics == "hamiltonian" else 1
        assert scalar_derivable(Architecture(width=width, layers=1, dynamics=dynamics))
        if width + step <= MAX_SCALAR_WIDTH:
            assert not scalar_derivable(Architecture(width=width + step, layers=1,
                                                     dynamics=dynamics))
    assert reach["hamiltonian"] == MAX_SCALAR_WIDTH
    assert not scalar_derivable(Architecture(width=MAX_SCALAR_WIDTH + 1, layers=1))


@pytest.mark.parametrize("text", [
    "W*(1 - S**2)", "-S**2 + S", "(1/2)*h*F + y", "-X - Y + 2", "1 - X", "tanh(X/2)/2 + 1/2",
    "X*Y*(X + Y) - X", "Z/2 + log(2*cosh(Z/2))", "X**2*Y - h*X", "-X"])
@pytest.mark.parametrize("through", ["X", "X + Y"])
def test_pointwise_nodes_computed_in_place_equal_the_plain_expression(text, through):
    """The in-place code of a pointwise node (numpy ufuncs with out=) against the expression,
    reading X through a node T = X (an alias of an input, never written over) or T = X + Y
    (a buffer of the block that nothing later reads, so it may be); the inputs keep their
    values."""
    from ocgen.nets.matrix import Assign, array
    from ocgen.nets.matrix_code import NodePrinter
    names = ("W", "S", "F", "X", "Y", "Z", "y")
    arrays = {n: array(n) for n in names}
    symbols = {n: entry(arrays[n]) for n in names}
    h = sp.Symbol("h")
    expr = sp.sympify(text, locals={**symbols, "h": h})
    rng = np.random.default_rng(0)
    values = {n: rng.uniform(0.2, 0.9, (3, 5)) for n in names}
    T = entry(array("T"))
    X = T if through == "X" else T - symbols["Y"]
    nodes = (Assign(array("T"), sp.sympify(through, locals=symbols), "pointwise"),
             Assign(array("R"), expr.xreplace({symbols["X"]: X}), "pointwise"))
    code = "\n".join(NodePrinter().lines(nodes, {**arrays, "T": array("T")}, exported={"R"}))
    scope = {"numpy": np, "h": 0.3, **{n: v.copy() for n, v in values.items()}}
    exec(code, scope)
    expected = sp.lambdify([*symbols.values(), h], expr, "numpy")(*values.values(), 0.3)
    assert np.allclose(scope["R"], expected, rtol=1e-14, atol=0)
    assert all(np.array_equal(scope[n], values[n]) for n in names)
