"""The choices of a network's options, without the modules that implement them (the command
line lists them before anything heavy is imported)."""

DYNAMICS = ("tanh", "symmetric", "antisymmetric", "hamiltonian")
"""Layer dynamics f(y, θ): σ(Ky + β); −Kᵀσ(Ky + β) (Haber–Ruthotto); σ((K − Kᵀ − γI)y + β);
for (y, z): (σ(Kz + β₁), −σ(Kᵀy + β₂)) (Haber–Ruthotto, Chang et al.)."""
DEPTHS = ("net", "resnet", "odenet", "odenet-simplex")
"""Net: y_{n+1} = σ(K_n y_n + β_n) (forward Euler, h = 1, on σ(Ky + β) − y); ResNet: h = T/L;
ODENet: h_n ≥ 0 learned; ODENet+simplex: h learned on {h ≥ 0, Σ h = T}."""
ACTIVATION_NAMES = ("tanh", "sigmoid", "softplus")
LOSSES = ("squares", "cross-entropy")
CONTROL_MODES = ("step", "stage")
OPTIMIZERS = ("armijo", "lipschitz", "lbfgs", "adam", "ipopt")
PRECISIONS = ("float64", "float32")
"""The precision of the sweeps; float32 for the matrix-level module only."""
KERNELS = ("numpy", "numba")
"""How the matrix-level module runs: NumPy calls, or compiled Numba loops for its affine and
polynomial nodes (the optional ``numba`` extra; fastest at small widths)."""
