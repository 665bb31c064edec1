"""Hamiltonian networks y' = σ(Kz + β₁), z' = −σ(Kᵀy + β₂) under partitioned pairs (MATH.md 6):
the Verlet recursion written out, exact gradients (Taylor tests), both costate forms, the
reversible costate sweep, model files and the command line."""

import json

import numpy as np
import pytest

from ocgen.cli import main
from ocgen.errors import InputError
from ocgen.nets import load_network, train
from ocgen.nets.model import Architecture, Network, pack_controls
from ocgen.nets.training import Objective
from ocgen.pair import load_pair

from test_nets import assert_taylor, random_x, small_data


def objective_of(pair, reversible=False, **options):
    points, labels = small_data(size=8)
    arch = Architecture(**{"width": 4, "layers": 3, "dynamics": "hamiltonian", **options})
    return Objective(arch, load_pair(pair), points, labels, reversible=reversible)


def test_verlet_network_is_the_kick_drift_kick_recursion():
    """Störmer–Verlet (IIIA for y, IIIB for z), one (K, β₁, β₂) per layer:
    z½ = z − h/2 σ(Kᵀy + β₂), y' = y + h σ(Kz½ + β₁), z' = z½ − h/2 σ(Kᵀy' + β₂)."""
    rng = np.random.default_rng(6)
    L, h = 4, 0.3
    K, beta = rng.standard_normal((L, 1, 2, 2)), rng.standard_normal((L, 1, 4))
    arch = Architecture(width=4, layers=L, dynamics="hamiltonian")
    network = Network(arch, load_pair("verlet"), pack_controls(K, beta), np.ones(4), 0.1,
                      np.full(L, h))
    points = rng.uniform(-1, 1, size=(5, 2))
    y, z = points, np.zeros_like(points)  # the width pads the inputs with zeros
    for n in range(L):
        k, b1, b2 = K[n, 0], beta[n, 0, :2], beta[n, 0, 2:]
        z = z - h / 2 * np.tanh(y @ k + b2)
        y = y + h * np.tanh(z @ k.T + b1)
        z = z - h / 2 * np.tanh(y @ k + b2)
    assert np.allclose(network.flow(points)[-1], np.hstack([y, z]), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("controls", ["step", "stage"])
@pytest.mark.parametrize("pair", ["stormer_verlet", "lobatto_iiia_iiib3", "symplectic_euler"])
def test_taylor_tests_in_parameters_steps_and_inputs(pair, controls):
    """K, β, W, μ and h together, then the inputs y_0."""
    objective = objective_of(pair, depth="odenet", tikhonov=0.1, controls=controls)
    x = random_x(objective)
    assert_taylor(objective.value, x, objective.gradient(x))
    theta, free, h = objective.split(x)
    module, params = objective.module, objective.params
    co = module.costate(theta, module.forward(theta, h, objective.y0, params, free=free), h,
                        params, free=free)
    J = lambda y0: module.forward(theta, h, y0, params, free=free)["objective"]  # noqa: E731
    assert_taylor(J, objective.y0, co["gradient_y0"])


def test_multiplier_and_partner_forms_agree():
    objective = objective_of("stormer_verlet", depth="odenet", tikhonov=0.1)
    theta, free, h = objective.split(random_x(objective))
    module, params = objective.module, objective.params
    trajectory = module.forward(theta, h, objective.y0, params, free=free)
    forms = [module.costate(theta, trajectory, h, params, form, free=free)
             for form in ("multiplier", "partner")]
    for key in ("gradient", "gradient_free", "gradient_h", "p"):
        assert np.allclose(forms[0][key], forms[1][key], rtol=1e-12, atol=1e-13), key


def test_reversible_objective_equals_the_stored_one():
    stored = objective_of("stormer_verlet", layers=40, depth="odenet", tikhonov=0.1)
    reversible = objective_of("stormer_verlet", reversible=True, layers=40, depth="odenet",
                              tikhonov=0.1)
    x = random_x(stored)
    assert reversible.value(x) == pytest.approx(stored.value(x), rel=1e-14)
    difference = np.max(np.abs(reversible.gradient(x) - stored.gradient(x)))
    assert difference < 1e-10
    eta, loss = reversible.outputs(x)
    assert np.allclose(eta, stored.outputs(x)[0], rtol=1e-12) and loss == stored.outputs(x)[1]


def test_reversible_needs_an_explicit_inverse():
    with pytest.raises(InputError) as info:
        objective_of("lobatto_iiia_iiib3", reversible=True, tikhonov=0.1)
    assert info.value.key == "reversible"


@pytest.mark.parametrize("options, key", [(dict(width=3), "width"), (dict(depth="net"), "depth")])
def test_bad_hamiltonian_architectures(options, key):
    with pytest.raises(InputError) as info:
        Architecture(**{"width": 4, "layers": 2, "dynamics": "hamiltonian", **options})
    assert info.value.key == key


def test_a_pair_needs_hamiltonian_dynamics():
    with pytest.raises(InputError) as info:
        objective_of("stormer_verlet", dynamics="tanh")
    assert info.value.key == "parts"


def test_model_file_round_trip_with_a_pair(tmp_path):
    result = train("donut2d", "stormer_verlet", layers=3, width=4, dynamics="hamiltonian",
                   iterations=5, train_size=30, validation_size=0, reversible=True)
    path = result.network.save(tmp_path / "model.json")
    data = json.loads(path.read_text())
    assert set(data["tableau"]) == {"name", "first", "second"}
    assert np.shape(data["K"]) == (3, 2, 2) and np.shape(data["beta"]) == (3, 4)
    loaded = load_network(path)
    points = result.training.points
    assert np.array_equal(loaded.predict(points), result.network.predict(points))


def test_train_command_with_a_reversible_verlet_network(capsys):
    code = main(["train", "--dataset", "donut2d", "--tableau", "verlet", "--layers", "8",
                 "--width", "4", "--dynamics", "hamiltonian", "--reversible", "--optimizer",
                 "lbfgs", "--iterations", "30", "--train-size", "100", "--validation-size",
                 "100", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["config"]["tableau"] == "Störmer–Verlet" and data["config"]["reversible"]
    assert data["train_accuracy"] >= 0.8
