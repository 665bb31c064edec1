"""Experiments: grids of training runs and the studies that compare networks."""
