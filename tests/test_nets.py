"""Networks as optimal control problems (MATH.md 6): exact gradients for every tableau, the
architectures against their closed forms, training, model files."""

import json

import numpy as np
import pytest

from ocgen.errors import InputError, OcgenError
from ocgen.nets import load_network, train
from ocgen.nets.datasets import Dataset, generate
from ocgen.nets.model import Architecture, Network, output, pack_controls, unpack_controls
from ocgen.nets.training import Objective, initial_point, train_network
from ocgen.tableau import builtin_tableaux, load_tableau
from ocgen.taylor import taylor_test

ALL = [t.source[:-5] for t in builtin_tableaux()]


def small_data(dimension=2, size=12, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1, 1, size=(size, dimension))
    return points, (points[:, 0] * points[:, -1] > 0).astype(int)


def random_x(objective, seed=1):
    """A point with every entry O(1) and step sizes away from the uniform ones."""
    rng = np.random.default_rng(seed)
    x = initial_point(objective, seed)
    theta, free, h = objective.split(x)
    theta = theta + 0.5 * rng.standard_normal(theta.shape)
    free = free + 0.5 * rng.standard_normal(free.shape)
    h = h * (1 + 0.5 * rng.uniform(size=h.shape))
    return objective.join(theta, free, h)


def assert_taylor(J, x, g, seed=2, epsilon=1e-2):
    direction = np.random.default_rng(seed).standard_normal(np.shape(x))
    result = taylor_test(J, x, g, direction, epsilon=epsilon)
    assert result.min_rate >= 1.95, result


@pytest.mark.parametrize("tableau", ALL)
def test_taylor_every_tableau_with_step_controls(tableau):
    """K, β, W, μ and h together, then the inputs y_0, for every built-in tableau (zero-weight
    and negative-weight ones included: step controls keep them well posed)."""
    points, labels = small_data(dimension=1, size=5)
    arch = Architecture(width=1, layers=3, depth="odenet", tikhonov=0.1)
    objective = Objective(arch, load_tableau(tableau), points, labels)
    x = random_x(objective)
    assert_taylor(objective.value, x, objective.gradient(x))
    theta, free, h = objective.split(x)
    module = objective.module
    co = module.costate(theta, module.forward(theta, h, objective.y0, objective.params,
                                              free=free), h, objective.params, free=free)
    J = lambda y0: module.forward(theta, h, y0, objective.params, free=free)["objective"]  # noqa: E731
    assert_taylor(J, objective.y0, co["gradient_y0"])


def central_differences(f, x, step=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = step
        g[i] = (f(x + e) - f(x - e)) / (2 * step)
    return g


@pytest.mark.parametrize("dynamics", ["tanh", "symmetric", "antisymmetric"])
@pytest.mark.parametrize("loss_name", ["squares", "cross-entropy"])
def test_gradient_against_central_differences(dynamics, loss_name):
    points, labels = small_data()
    arch = Architecture(width=3, layers=3, dynamics=dynamics, loss=loss_name, depth="odenet",
                        tikhonov=0.05, mean_loss=True, gamma=0.1)
    objective = Objective(arch, load_tableau("kutta3"), points, labels)
    x = random_x(objective)
    assert np.allclose(objective.gradient(x), central_differences(objective.value, x),
                       rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
@pytest.mark.parametrize("controls, depth", [("stage", "resnet"), ("step", "net")])
def test_activations_controls_and_smoothness_against_central_differences(activation, controls,
                                                                         depth):
    points, labels = small_data()
    arch = Architecture(width=2, layers=4, activation=activation, controls=controls,
                        depth=depth, smoothness=0.3)
    objective = Objective(arch, load_tableau("heun2"), points, labels)
    x = random_x(objective)
    assert np.allclose(objective.gradient(x), central_differences(objective.value, x),
                       rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("tableau", ["rk4", "gauss2", "radau_iia2", "kutta3"])
def test_multiplier_and_partner_forms_agree(tableau):
    points, labels = small_data()
    arch = Architecture(width=2, layers=3, tikhonov=0.1, depth="odenet")
    objective = Objective(arch, load_tableau(tableau), points, labels)
    theta, free, h = objective.split(random_x(objective))
    module = objective.module
    trajectory = module.forward(theta, h, objective.y0, objective.params, free=free)
    forms = [module.costate(theta, trajectory, h, objective.params, form, free=free)
             for form in ("multiplier", "partner")]
    for key in ("gradient", "gradient_free", "gradient_h", "p"):
        assert np.allclose(forms[0][key], forms[1][key], rtol=1e-12, atol=1e-13), key


def test_net_and_resnet_are_the_plain_recursions():
    """Net: y_{n+1} = tanh(K_n y_n + β_n); ResNet with Euler: y_{n+1} = y_n + h tanh(...)."""
    rng = np.random.default_rng(5)
    points = rng.uniform(-1, 1, size=(7, 2))
    K, beta = rng.standard_normal((4, 1, 2, 2)), rng.standard_normal((4, 1, 2))
    euler = load_tableau("euler")
    for depth, update in (("net", lambda y, n: np.tanh(y @ K[n, 0].T + beta[n, 0])),
                          ("resnet", lambda y, n: y + 0.25 * np.tanh(y @ K[n, 0].T + beta[n, 0]))):
        arch = Architecture(width=2, layers=4, depth=depth)
        h = np.ones(4) if depth == "net" else np.full(4, 0.25)
        network = Network(arch, euler, pack_controls(K, beta), np.array([1.0, -2.0]), 0.3, h)
        y = points
        for n in range(4):
            y = update(y, n)
        assert np.allclose(network.flow(points)[-1], y, rtol=1e-14, atol=1e-15)
        assert np.allclose(network.predict(points), 1 / (1 + np.exp(-(y @ [1.0, -2.0] + 0.3))),
                           rtol=1e-14)


def test_reported_loss_is_the_paper_formula():
    """The loss reported (the derived terminal cost) is ½ Σ (η − c)², or the cross-entropy
    −Σ [c log η + (1 − c) log(1 − η)], computed here from η; divided by K for the mean."""
    points, labels = small_data()
    for name in ("squares", "cross-entropy"):
        for mean in (False, True):
            arch = Architecture(width=2, layers=3, loss=name, mean_loss=mean, tikhonov=0.3)
            objective = Objective(arch, load_tableau("rk4"), points, labels)
            eta, reported = objective.outputs(random_x(objective))
            terms = ((eta - labels) ** 2 / 2 if name == "squares" else
                     -(labels * np.log(eta) + (1 - labels) * np.log1p(-eta)))
            expected = terms.sum() / (len(labels) if mean else 1)
            assert reported == pytest.approx(expected, rel=1e-12)


def test_augmented_width_pads_with_zeros():
    points, labels = small_data()
    arch = Architecture(width=4, layers=2)
    objective = Objective(arch, load_tableau("rk4"), points, labels)
    assert np.all(objective.y0[2:] == 0) and np.array_equal(objective.y0[:2], points.T)


def test_spiral_reaches_97_percent_and_simplex_steps_stay_in_the_simplex():
    result = train("spiral", "rk4", layers=20, optimizer="lbfgs", iterations=400,
                   train_size=500, validation_size=500)
    assert result.final["validation_accuracy"] >= 0.97
    simplex = train("spiral", "rk4", layers=10, depth="odenet-simplex", optimizer="lipschitz",
                    iterations=60, train_size=200, validation_size=0)
    h = simplex.network.time_steps
    assert np.all(h >= 0) and abs(h.sum() - 1.0) <= 1e-12
    assert not np.allclose(h, 0.1)  # the steps were learned


@pytest.mark.parametrize("optimizer", ["armijo", "lipschitz", "lbfgs", "adam"])
def test_optimizers_decrease_the_objective_and_are_deterministic(optimizer):
    runs = [train("donut2d", "heun2", layers=4, optimizer=optimizer, iterations=30,
                  train_size=64, validation_size=16, seed=3) for _ in range(2)]
    history = runs[0].history
    assert history[-1]["objective"] < history[0]["objective"]
    assert runs[0].history == runs[1].history
    assert np.array_equal(runs[0].network.K, runs[1].network.K)


def test_lbfgs_reaches_a_discrete_stationary_point():
    result = train("donut1d", "rk4", layers=3, optimizer="lbfgs", iterations=500,
                   train_size=40, validation_size=0, tikhonov=1.0, tolerance=1e-7)
    assert result.converged and result.final["gradient_norm"] <= 1e-7


@pytest.mark.parametrize("depth", ["resnet", "odenet-simplex"])
def test_ipopt_solution_is_stationary_for_the_derived_gradient(depth):
    """IPOPT on the full-space NLP; at its answer the derived (reduced) gradient vanishes and
    the costates read from its multipliers are the derived ones."""
    points, labels = small_data(size=10)
    data = Dataset("small", points, labels, {"generator": "test"})
    arch = Architecture(width=2, layers=3, depth=depth, tikhonov=0.05)
    result = train_network(data, "rk4", arch, optimizer="ipopt", iterations=500)
    assert result.converged, result.message
    assert result.extra["ipopt"]["costate_difference"] <= 1e-8
    assert result.final["gradient_norm"] <= 1e-7
    if depth == "odenet-simplex":
        h = result.network.time_steps
        assert h.min() >= 0 and h.sum() == pytest.approx(1.0, abs=1e-9)


def test_model_file_round_trip(tmp_path):
    result = train("moons", "kutta3", layers=3, width=3, iterations=5, train_size=30,
                   validation_size=0, controls="stage", depth="odenet")
    path = result.network.save(tmp_path / "model.json")
    loaded = load_network(path)
    points = generate("moons", 20, seed=9).points
    assert np.array_equal(loaded.predict(points), result.network.predict(points))
    data = json.loads(path.read_text())
    assert data["tableau"]["b"] == ["1/6", "2/3", "1/6"]
    assert np.shape(data["K"]) == (3, 3, 3, 3) and np.shape(data["beta"]) == (3, 3, 3)
    assert data["time_steps"] == result.network.time_steps.tolist()


@pytest.mark.parametrize("change, key", [
    (lambda d: d.pop("W"), "missing key 'W'"),
    (lambda d: d.update(K=[[1.0]]), "K: expected shape"),
    (lambda d: d.update(layers=0), "layers: must be a positive integer"),
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(dynamics="relu"), "dynamics: unknown dynamics"),
    (lambda d: d.update(extra=1), "extra: unknown key"),
    (lambda d: d["tableau"].update(b=["1/2", "1/2"]), "tableau"),
    (lambda d: d.update(horizon="1"), "horizon: must be a positive number, found '1'"),
    (lambda d: d.update(tikhonov="0"), "tikhonov: must be a number ≥ 0"),
    (lambda d: d.update(gamma=None), "gamma: must be a number ≥ 0, found None"),
    (lambda d: d.update(layers=10**10), "layers: 10000000000 layers, more than the limit of "
                                        "100000"),
    (lambda d: d.update(mu=10**400), "mu: values must be finite"),
    (lambda d: d.update(W=[1.0, [2.0]]), "W: expected numbers"),
    (lambda d: d.update(depth="net", time_steps=[0.5, 0.5]), r"time_steps: a net has the "
                                                            r"steps 1 \(1\)"),
    (lambda d: d["K"][0][0].__setitem__(1, True), "K: expected numbers"),
    (lambda d: d.update(time_steps=[-0.5, 1.5]), "time_steps: a resnet has the steps 0.5"),
    (lambda d: d.update(depth="odenet", time_steps=[-0.5, 1.5]),
     "time_steps: steps must be ≥ 0"),
    (lambda d: d.update(depth="odenet-simplex", time_steps=[0.5, 0.6]),
     "time_steps: odenet-simplex steps sum to the horizon 1"),
])
def test_bad_model_files_name_the_key(tmp_path, change, key):
    network = Network(Architecture(width=2, layers=2), load_tableau("euler"),
                      np.zeros((2, 1, 6)), np.ones(2), 0.0, np.full(2, 0.5))
    data = network.to_json()
    assert load_network(network.save(tmp_path / "good.json")).time_steps.tolist() == [0.5, 0.5]
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=key) as info:
        load_network(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("options, key", [
    (dict(layers=0), "layers"), (dict(horizon=-1.0), "horizon"), (dict(width=1), "width"),
    (dict(dynamics="relu"), "dynamics"), (dict(depth="deep"), "depth"),
    (dict(smoothness=1.0, depth="odenet"), "smoothness"),
    (dict(tolerance=-1.0), "tolerance"), (dict(tolerance=float("nan")), "tolerance"),
    (dict(tolerance="1e-8"), "tolerance"), (dict(learning_rate=True), "learning_rate"),
    (dict(width=1024, layers=48), "layers"), (dict(layers=100_001), "layers"),
    (dict(optimizer="ipopt", width=13), "optimizer"),
])
def test_bad_architectures(options, key):
    with pytest.raises(InputError) as info:
        train("spiral", "euler", **{"layers": 2, "iterations": 1, "train_size": 8,
                                    "validation_size": 0, **options})
    assert info.value.key == key


def test_output_is_the_logistic_function_without_overflow():
    z = np.array([-800.0, -3.0, 0.0, 2.0, 800.0])
    assert np.allclose(output(z[1:4]), 1 / (1 + np.exp(-z[1:4])), rtol=1e-15)
    assert output(z)[0] == 0.0 and output(z)[-1] == 1.0


def test_controls_pack_and_unpack():
    theta = np.arange(2 * 3 * 6, dtype=float).reshape(2, 3, 6)
    K, beta = unpack_controls(theta, 2)
    assert K[1, 2].tolist() == [[30, 31], [32, 33]] and beta[1, 2].tolist() == [34, 35]


PROBLEM_NETWORK = "examples/network_problem.toml"


def test_a_problem_file_is_a_network(tmp_path):
    """The example's leaky layer: gradients exact (central differences), bounds kept by the
    projection, the model file round trip, and training that separates the moons."""
    from ocgen.files import read_data_file
    from ocgen.nets.model import file_network
    table = read_data_file(PROBLEM_NETWORK)
    arch = Architecture(width=2, layers=3, dynamics="problem", problem=table, horizon=2.0)
    points, labels = small_data()
    objective = Objective(arch, load_tableau("heun2"), points, labels)
    x = random_x(objective)
    assert np.allclose(objective.gradient(x), central_differences(objective.value, x),
                       rtol=1e-6, atol=1e-8)
    far = objective.project(10 * x)
    assert np.abs(objective.split(far)[0][..., :4]).max() == 4.0
    result = train("moons", "rk4", layers=6, problem=PROBLEM_NETWORK, optimizer="lbfgs",
                   iterations=150, train_size=200, validation_size=200)
    assert result.final["validation_accuracy"] >= 0.95
    loaded = load_network(result.network.save(tmp_path / "model.json"))
    assert np.array_equal(loaded.predict(points), result.network.predict(points))
    assert file_network(table).state_dim == 2


@pytest.mark.parametrize("change, key", [
    (lambda t: t.update(initial_state=[0, 0]), "initial_state"),
    (lambda t: t.update(member_parameters={"c": [1]}), "member_parameters"),
    (lambda t: t["free_parameters"].update(scale=1), "free_parameters"),
])
def test_problem_networks_name_what_is_wrong(change, key):
    from ocgen.files import read_data_file
    from ocgen.nets.model import file_network
    table = read_data_file(PROBLEM_NETWORK)
    change(table)
    with pytest.raises(InputError) as info:
        file_network(table, "net.toml")
    assert info.value.key == key and info.value.source == "net.toml"


def test_options_a_problem_file_defines_are_refused():
    with pytest.raises(InputError) as info:
        train("moons", "rk4", layers=2, problem=PROBLEM_NETWORK, loss="cross-entropy",
              iterations=1, train_size=8, validation_size=0)
    assert info.value.key == "loss"


@pytest.mark.parametrize("mean_loss, depth, tableau, dynamics", [
    (False, "odenet", "rk4", "tanh"), (True, "resnet", "gauss2", "symmetric"),
    (False, "odenet", "stormer_verlet", "hamiltonian")])
def test_all_points_swept_in_parts_equal_one_sweep(mean_loss, depth, tableau, dynamics):
    """With more points than a sweep takes, J, ∇J (θ, W, μ, h), the loss and the outputs
    are sums and joins over parts; they equal one sweep over all points to rounding, with
    the Tikhonov term, the smoothness term and the mean loss counted once. So does a batch."""
    points, labels = small_data(size=23)
    arch = Architecture(width=2, layers=3, depth=depth, mean_loss=mean_loss, tikhonov=0.05,
                        smoothness=0.0 if depth == "odenet" else 0.1, dynamics=dynamics,
                        loss="cross-entropy")
    whole = Objective(arch, tableau, points, labels)
    x = random_x(whole)
    J, g = whole.value_and_gradient(x)
    eta, loss = whole.outputs(x)
    parted = Objective(arch, tableau, points, labels)
    parted.part_size = 5
    assert len(parted._parts(None)) == 5
    value = parted.value(x)  # a value first: the gradient then sweeps the parts again
    J_parts, g_parts = parted.value_and_gradient(x)
    eta_parts, loss_parts = parted.outputs(x)
    assert value == J_parts
    assert J_parts == pytest.approx(J, rel=1e-13)
    assert np.max(np.abs(g_parts - g)) <= 1e-13 * np.max(np.abs(g))
    assert np.max(np.abs(eta_parts - eta)) <= 1e-15 and loss_parts == pytest.approx(loss,
                                                                                     rel=1e-13)
    batch = np.array([20, 3, 7, 8, 9, 0, 22, 15, 14, 1, 2, 5, 6, 11, 13, 17, 19])
    J_batch, g_batch = whole.value_and_gradient(x, batch)
    assert [part[1].shape[-1] for part in parted._parts(batch)] == [5, 4, 4, 4]
    J_batch_parts, g_batch_parts = parted.value_and_gradient(x, batch)
    assert J_batch_parts == pytest.approx(J_batch, rel=1e-13)
    assert np.max(np.abs(g_batch_parts - g_batch)) <= 1e-13 * np.max(np.abs(g_batch))


def test_a_batch_is_known_by_its_points_not_by_its_array():
    """The kept sweeps serve a batch whose array was changed in place only if its points
    are the same: the answer is that of a fresh objective. An empty batch is refused."""
    points, labels = small_data(size=12)
    arch = Architecture(width=2, layers=2)
    objective, fresh = Objective(arch, "rk4", points, labels), Objective(arch, "rk4", points,
                                                                         labels)
    x = random_x(objective)
    members = np.array([0, 1, 2, 3])
    objective.value_and_gradient(x, members)
    members[:] = [4, 5, 6, 7]
    J, g = objective.value_and_gradient(x, members)
    J_fresh, g_fresh = fresh.value_and_gradient(x, np.array([4, 5, 6, 7]))
    assert J == J_fresh and np.array_equal(g, g_fresh)
    kept = objective._last
    assert objective.value(x, np.array([4, 5, 6, 7])) == J and objective._last is kept
    with pytest.raises(InputError, match="at least one point") as info:
        objective.value(x, np.array([], dtype=int))
    assert info.value.key == "members"


def test_an_implicit_tableau_beyond_the_scalar_reach_trains_at_matrix_level():
    """Symmetric dynamics at width 8 are beyond the entry-by-entry derivation: Gauss-2 gets
    the matrix module, whose fixed-point stage solve needs a small h‖K‖: two
    layers fail with a message saying so, sixteen train."""
    options = dict(dynamics="symmetric", width=8, iterations=2, train_size=20,
                   validation_size=0)
    with pytest.raises(OcgenError, match=r"fixed-point iteration .* did not converge.*"
                                         r"more layers for the same horizon"):
        train("moons", "gauss2", layers=2, **options)
    result = train("moons", "gauss2", layers=16, **options)
    assert hasattr(result.network.module, "NETWORK") and np.isfinite(result.final["objective"])


def test_the_parameter_limit_counts_the_stage_groups():
    """48 layers of width 512 pass the architecture's check (one group: 1.26e7 parameters);
    with RK4's four stage groups they are 48·4·(512² + 512) = 50 429 952, over the limit."""
    arch = Architecture(width=512, layers=48, controls="stage")
    points, labels = small_data(size=4)
    with pytest.raises(InputError, match="50429952 parameters in 48 layers of 4 control "
                                         "groups, more than the limit of 50000000") as info:
        Objective(arch, "rk4", points, labels)
    assert info.value.key == "layers"
    assert Objective(Architecture(width=512, layers=48), "rk4", points, labels).n_theta \
        == 48 * (512**2 + 512)
