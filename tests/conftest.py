import os

from hypothesis import settings

# The first example of a test pays numba's JIT compile: no per-example deadline.
settings.register_profile("layerkit", deadline=None, max_examples=40)
# CI draws the same examples on every run, so a submission cannot land or fail by luck.
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "layerkit"))
