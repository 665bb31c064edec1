"""The numba kernels of the matrix-level module (ocgen.nets.numba_code): the same numbers as
the NumPy module, whose formulas test_network_matrix.py expands against the scalar
derivation; Taylor tests of their gradient; a node program run against its exact evaluation;
and the errors of asking for them where they do not apply."""

import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from ocgen.cli import main
from ocgen.errors import InputError
from ocgen.nets import numba_code
from ocgen.nets.matrix import POINTS, WIDTH, Assign, array, entry, evaluate
from ocgen.nets.matrix_code import NodePrinter, generate_network, network_module
from ocgen.nets.model import Architecture
from ocgen.nets.training import Objective
from ocgen.tableau import load_tableau
from ocgen.taylor import taylor_test

from test_network_matrix import CASES, architecture, random_inputs, relative

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="the numba extra is not installed")

# beyond test_network_matrix.CASES: a zero weight (Heun-3), an implicit tableau at d = 4
NUMBA_CASES = [*CASES,
               ("heun3", "step", "antisymmetric", "tanh", "squares", "odenet", 0.1, 3),
               ("gauss2", "step", "symmetric", "tanh", "cross-entropy", "odenet", 0.1, 4)]
WIDE = {"rk4": NUMBA_CASES[0], "heun3": NUMBA_CASES[-2], "gauss2": NUMBA_CASES[-1]}
"""The Taylor tests' networks: those of the cases at d = 32 (the module, and so its compiled
kernels, is the same at every width)."""


@needs_numba
@pytest.mark.parametrize("case", NUMBA_CASES, ids=lambda c: "-".join(map(str, c)))
def test_numba_kernels_agree_with_the_numpy_module(case):
    """J, the trajectory, ∂J/∂θ, ∂J/∂(W, μ), ∂J/∂h, ∂J/∂y_0, the costates, stage costates and
    stage multipliers of the two modules agree to 1e-12 over 50 points, in both costate forms
    where they exist: every dynamics, activation, loss, the plain Net, Tikhonov, step and stage
    controls, explicit, zero-weight and implicit tableaux."""
    tableau, arch = architecture(case)
    numpy_module = network_module(arch, tableau, matrix=True)
    numba_module = network_module(arch, tableau, kernels="numba")
    for sweep in (numba_module.forward, numba_module._sweep_multiplier):  # kernels in use
        assert "_kernel_" in inspect.getsource(sweep)
    theta, h, y0, params, free = random_inputs(numpy_module, arch.width, points=50,
                                               depth=arch.depth)
    ours = numba_module.forward(theta, h, y0, params, free=free)
    theirs = numpy_module.forward(theta, h, y0, params, free=free)
    assert ours["objective"] == pytest.approx(theirs["objective"], rel=1e-12)
    for key in ("y", "Y", "F"):
        assert relative(ours[key], theirs[key]) <= 1e-12, key
    forms = ("multiplier", "partner") if not tableau.zero_weights else ("multiplier",)
    for form in forms:
        a = numba_module.costate(theta, ours, h, params, form, free=free)
        b = numpy_module.costate(theta, theirs, h, params, form, free=free)
        assert a.keys() == b.keys()
        for key in b:
            assert relative(a[key], b[key]) <= 1e-12, (form, key)
    J, g = numba_module.objective_and_gradient(theta, h, y0, params, free=free)
    assert J == pytest.approx(theirs["objective"], rel=1e-12)
    assert relative(g, numpy_module.costate(theta, theirs, h, params, free=free)["gradient"]) \
        <= 1e-12


def objective_at(arch, tableau, kernels, precision="float64", seed=4, points=30):
    """The training objective on random points, and a random x (θ scaled by 1/√d)."""
    rng = np.random.default_rng(seed)
    data = rng.uniform(-1, 1, size=(points, 2))
    labels = (data[:, 0] * data[:, 1] > 0).astype(int)
    objective = Objective(arch, load_tableau(tableau), data, labels, kernels=kernels,
                          precision=precision)
    theta, free, h = objective.split(np.zeros(objective.size))
    x = objective.join(rng.standard_normal(theta.shape) / np.sqrt(arch.width),
                       rng.standard_normal(free.shape), np.full(arch.layers, 1 / arch.layers))
    return objective, x


@needs_numba
@pytest.mark.parametrize("tableau", sorted(WIDE))
def test_taylor_of_the_numba_kernels_at_width_32(tableau):
    """J in (K, β, W, μ, h) together at d = 32 through the training objective with the numba
    kernels, step controls: RK4, implicit Gauss-2 (fixed-point stages), Heun-3 (a zero
    weight); observed rate ≥ 1.95 on ε = 1e-2 … 1.25e-3."""
    _, arch = architecture((*WIDE[tableau][:-1], 32))
    objective, x = objective_at(arch, tableau, "numba")
    direction = np.random.default_rng(2).standard_normal(x.shape)
    result = taylor_test(objective.value, x, objective.gradient(x), direction, epsilon=1e-2)
    assert result.min_rate >= 1.95, result


@needs_numba
@pytest.mark.parametrize("case", [NUMBA_CASES[0], NUMBA_CASES[-1]],
                         ids=lambda c: "-".join(map(str, c)))
def test_numba_kernels_in_float32(case):
    """float32 sweeps with the numba kernels, explicit (RK4) and implicit (Gauss-2, whose
    multiplier sweep starts its fixed-point iteration from zeros): every array the sweeps
    return is float32, as the NumPy module's are, and the fixed-point iterations stop at
    float32's tolerance; J and ∇J agree with the float64 NumPy module to single precision
    (1e-5 relative, 1e-4 of max|∇J|)."""
    tableau, arch = architecture((*case[:-1], 8))
    modules = [network_module(arch, tableau, kernels=k) for k in ("numba", "numpy")]
    theta, h, y0, params, free = random_inputs(modules[1], 8, points=30, depth=arch.depth)
    theta, y0 = theta / 8, y0.astype(np.float32)  # h‖K‖ within the fixed point's reach
    for module in modules:
        trajectory = module.forward(theta, h, y0, params, free=free)
        assert trajectory["y"].dtype == trajectory["Y"].dtype == np.float32
        for form in ("multiplier", "partner"):
            result = module.costate(theta, trajectory, h, params, form, True, free)
            for key in ("gradient", "gradient_y0", "p", "stage_costates", "stage_multipliers"):
                if key in result:
                    assert result[key].dtype == np.float32, (form, key)
    single, x = objective_at(arch, tableau, "numba", precision="float32")
    double, _ = objective_at(arch, tableau, "numpy")
    (J32, g32), (J64, g64) = single.value_and_gradient(x), double.value_and_gradient(x)
    assert abs(J32 - J64) <= 1e-5 * abs(J64)
    assert np.max(np.abs(g32 - g64)) <= 1e-4 * np.max(np.abs(g64))


@needs_numba
def test_training_is_the_same_with_either_kernels():
    """The paper's set-up (spiral, RK4, 20 layers, step controls), 30 iterations of the
    Lipschitz line search from one start: the same network to 1e-10 with either kernels."""
    from ocgen.nets.datasets import training_and_validation
    from ocgen.nets.training import train_network
    data, _ = training_and_validation("spiral", 80, 0)
    arch = Architecture(width=2, layers=20)
    a, b = (train_network(data, "rk4", arch, optimizer="lipschitz", iterations=30, seed=3,
                          kernels=kernels) for kernels in ("numba", "numpy"))
    assert a.config["kernels"] == "numba" and b.config["kernels"] == "numpy"
    x, y = (np.concatenate([r.network.theta.ravel(), r.network.W, [r.network.mu]])
            for r in (a, b))
    assert np.max(np.abs(x - y)) <= 1e-10 * np.max(np.abs(y))
    assert a.history[-1]["objective"] < 0.9 * a.history[0]["objective"]


@needs_numba
def test_a_node_program_with_kernels_against_its_exact_evaluation(tmp_path):
    """Loopable runs (affine, products with the points inner or summed, a broadcast β, a
    transposed factor, the identity, a polynomial node, an accumulation) become kernels; σ and
    a three-factor product stay NumPy. The printed code gives the exact SymPy evaluation
    (:func:`ocgen.nets.matrix.evaluate`) to 1e-13."""
    import numba  # noqa: F401 (the kernels' module global)
    Y, K, beta, V = array("Y"), array("K", WIDTH, WIDTH), array("beta", WIDTH, 1), array("V")
    Z, S, F, dZ, G = (array(n) for n in ("Z", "S", "F", "dZ", "G"))
    A, gK, gb = array("A", WIDTH, WIDTH), array("gK", WIDTH, WIDTH), array("gb", WIDTH, 1)
    h = sp.Symbol("h")
    one = sp.OneMatrix(1, POINTS)
    nodes = [
        Assign(A, K - K.T - sp.Rational(1, 10) * sp.Identity(WIDTH), "matrix"),
        Assign(Z, A * Y + beta * one, "matrix"),
        Assign(S, sp.tanh(entry(Z)), "pointwise"),
        Assign(F, -K.T * S + Y, "matrix"),
        Assign(dZ, entry(V) * (1 - entry(S) ** 2) + h * entry(F) / 3, "pointwise"),
        Assign(gK, h * dZ * Y.T, "matrix", accumulate=True),
        Assign(gb, dZ * sp.OneMatrix(POINTS, 1), "matrix", accumulate=True),
        Assign(G, K * K.T * dZ, "matrix"),
    ]
    arrays = {X.name: X for X in (Y, K, beta, V, Z, S, F, dZ, A, G, gK, gb)}
    assert [numba_code.loopable(n, arrays) for n in nodes] == [True, True, False, True, True,
                                                                True, True, False]
    printer = numba_code.KernelPrinter(NodePrinter())
    lines = printer.lines(nodes, arrays, exported={"F", "dZ", "G"})
    assert sum(line.count("_kernel_") for line in lines) == 2  # two runs of loopable nodes
    d, points = 3, 7
    rng = np.random.default_rng(1)
    given = {"Y": rng.standard_normal((d, points)), "K": rng.standard_normal((d, d)),
             "beta": rng.standard_normal((d, 1)), "V": rng.standard_normal((d, points)),
             "gK": rng.standard_normal((d, d)), "gb": rng.standard_normal((d, 1))}
    source = "\n\n".join(["import numba\nimport numpy\n", *printer.definitions(),
                          "def run(Y, K, beta, V, gK, gb, h, d, points, ones):\n"
                          + "\n".join(f"    {line}" for line in lines)
                          + "\n    return F, dZ, G, gK, gb\n"])
    path = tmp_path / "kernels.py"  # Numba caches beside a real file
    path.write_text(source)
    namespace = {}
    exec(compile(source, str(path), "exec"), namespace)
    ours = namespace["run"](*(given[k].copy() for k in ("Y", "K", "beta", "V", "gK", "gb")),
                            0.3, d, points, np.ones((points, 1)))
    exact, _ = evaluate(nodes, {**{k: sp.Matrix(v) for k, v in given.items()},
                                "h": sp.Float(0.3)}, d, points)
    for name, value in zip(("F", "dZ", "G", "gK", "gb"), ours):
        expected = np.array(exact[name].evalf(), dtype=float)
        assert relative(value, expected) <= 1e-13, name


def test_generated_numba_text_is_deterministic_and_the_numpy_text_does_not_import_numba():
    """The numba module's text is byte-identical across hash seeds, states its kernels and
    imports numba, and runs alike but for their arrays' names share a kernel (one compilation);
    the NumPy module's text never imports numba (that backend needs NumPy only)."""
    tableau, arch = architecture(CASES[0])
    text = generate_network(arch, tableau, "numba")
    assert "import numba\n" in text and "@numba.njit(cache=True" in text
    assert "Kernels: Numba." in text
    calls = re.findall(r" = (_kernel_\d+)\(", text)
    assert text.count("def _kernel_") == len(set(calls)) < len(calls)  # RK4's stages 2, 3
    assert "numba" not in generate_network(arch, tableau)
    script = ("from ocgen.nets.matrix_code import generate_network; "
              "from ocgen.nets.model import Architecture; import sys; "
              f"sys.stdout.write(generate_network(Architecture(**{arch.to_json()!r}), "
              f"{'rk4'!r}, 'numba'))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": "11"}, check=True).stdout
    assert other == text


def test_numba_kernels_where_they_do_not_apply(monkeypatch):
    """Unknown kernels, a pair or a problem file's network (no matrix-level module), and a
    missing Numba are each one InputError naming the key; nothing is generated."""
    points, labels = np.zeros((3, 2)), np.array([0, 1, 1])
    with pytest.raises(InputError, match="unknown kernels 'cuda'") as err:
        Objective(Architecture(width=2, layers=2), load_tableau("rk4"), points, labels,
                  kernels="cuda")
    assert err.value.key == "kernels"
    with pytest.raises(InputError, match="matrix-level module: tanh, symmetric or "
                                         "antisymmetric dynamics") as err:
        network_module(Architecture(width=2, layers=2, dynamics="hamiltonian"),
                       "stormer_verlet", kernels="numba")
    assert err.value.key == "kernels"
    with pytest.raises(InputError, match="matrix-level module"):
        network_module(Architecture(width=2, layers=2), "rk4", matrix=False, kernels="numba")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba" else real(name, *a))
    with pytest.raises(InputError, match=r"need Numba, which is not installed: "
                                         r"pip install 'ocgen\[numba\]'"):
        network_module(Architecture(width=2, layers=2), "rk4", kernels="numba")


@needs_numba
def test_train_command_with_numba_kernels(capsys, tmp_path):
    """``ocgen train --kernels numba`` trains and records the kernels; with hamiltonian
    dynamics it is a one-line error and exit status 2, and writes nothing."""
    common = ["train", "--dataset", "spiral", "--layers", "4", "--iterations", "5",
              "--train-size", "40", "--validation-size", "0"]
    assert main([*common, "--tableau", "rk4", "--kernels", "numba", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["kernels"] == "numba" and result["iterations"] == 5
    model = tmp_path / "model.json"
    code = main([*common, "--tableau", "stormer_verlet", "--dynamics", "hamiltonian",
                 "--kernels", "numba", "-o", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().startswith("ocgen: error: kernels: the numba kernels run")
    assert len(err.strip().splitlines()) == 1 and not model.exists()
