"""Training in the full space: the network's discrete problem as an NLP for IPOPT.

The generated CasADi module of the network problem supplies the NLP (controls, stage values,
states, W and μ, and h where learned, as variables; stage and step equations as constraints);
odenet-simplex adds Σ h_n = T. IPOPT solves it with exact derivatives. The costates read from
its multipliers are compared with the derived costate sweep of the NumPy module at the same
point: the check reported as ``costate_difference``. Both modules come from the scalar
derivation of the network problem (entry by entry, so for small widths), which also supplies
the starting trajectory: IPOPT's path depends on its start down to rounding.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import OcgenError
from ..limits import check_memory
from ..solve import generated_module
from .model import network_problem
from .optimizers import Outcome


def train_ipopt(objective, x0, iterations: int, tolerance: float, callback) -> Outcome:
    import casadi

    arch, tableau = objective.arch, objective.tableau
    members = objective.labels.size
    template = network_problem(arch)
    problem = dataclasses.replace(  # K members, with their data passed as NLP parameters
        template, initial_states=((0.0,) * arch.width,) * members,
        member_parameters=tuple((sym, (0.0,) * members) for sym, _ in
                                template.member_parameters))
    check_memory(tableau, problem, arch.layers, "casadi")
    module = generated_module(tableau, problem, arch.controls, "casadi")[0]
    n, learn = arch.layers, arch.learns_steps
    nlp = module.transcription(n, "MX", learn)
    bounds = module.bounds(n, learn_steps=learn)
    constraints = nlp["g"].shape[0]
    if arch.depth == "odenet-simplex":
        nlp["g"] = casadi.vertcat(nlp["g"], casadi.sum1(nlp["x"][-n:]))
        for key in ("lbg", "ubg"):
            bounds[key] = np.append(bounds[key], arch.horizon)
    options = module.ipopt_options(tolerance, iterations, 0, {"mu_strategy": "adaptive"})
    solver = casadi.nlpsol("ocgen_network", "ipopt", nlp, options)

    theta, free, h = objective.split(x0)
    y0, params = objective.y0, objective.params
    derived_module = generated_module(tableau, template, arch.controls)[0]
    start = derived_module.forward(theta, h, y0, params, free=free)
    guess = module.initial_point(n, theta, start["y"], start["Y"], y0, free,
                                 h if learn else None)
    try:
        result = solver(x0=guess, p=module.parameters(None if learn else h, y0, params),
                        **bounds)
    except RuntimeError as err:
        raise OcgenError(f"IPOPT failed: {err}") from None
    stats = solver.stats()
    x = result["x"].full().ravel()
    parts = module.unpack(x, n, y0)
    h = parts["h"] if learn else h
    co = module.costates(x, result["lam_g"].full().ravel()[:constraints], h, y0, params)
    point = objective.join(parts["theta"], parts["free"], h)
    trajectory = derived_module.forward(parts["theta"], h, y0, params, free=parts["free"])
    derived = derived_module.costate(parts["theta"], trajectory, h, params,
                                     free=parts["free"])
    difference = float(np.max(np.abs(co["p"] - derived["p"])))
    iterations_done = int(stats.get("iter_count", 0))
    callback(iterations_done, point, float(result["f"]), None, None)
    status = str(stats.get("return_status", "unknown"))
    return Outcome(point, iterations_done, bool(stats.get("success")), f"IPOPT: {status}",
                   extra={"ipopt": {"status": status,
                                    "costate_difference": difference,
                                    "multiplier_residual": float(co["multiplier_residual"]),
                                    "constraint_violation": float(
                                        module.constraint_violation(x, h, y0, params))}})
