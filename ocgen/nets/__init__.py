"""Deep learning as optimal control (MATH.md 6): a network is an ensemble problem.

Data points are ensemble members, layers are steps with step controls (K_n, β_n), and the
output weights W, μ are free parameters of the terminal cost. Gradients come from
:mod:`ocgen.derive` and the generated module like every other problem's.
"""
