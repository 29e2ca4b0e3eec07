import os

from hypothesis import settings

# The first example of a test pays numba's JIT compile: no per-example deadline.
settings.register_profile("layerkit", deadline=None, max_examples=40)
settings.register_profile("ci", deadline=None, max_examples=25)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "layerkit"))
