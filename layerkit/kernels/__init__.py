"""numba kernels: plain arrays in, arrays out, no classes (see DESIGN.md)."""
