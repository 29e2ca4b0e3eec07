"""ReLU activation as a class without parameters, A = max(0, Z) (template: write forward and backward).

Check it:  layerkit gradcheck my_relu.py:ReLU --shape Z=4,6
"""

import numpy as np


class ReLU:
    def forward(self, Z):
        """A = max(0, Z) elementwise. Keep A (or the mask Z > 0) for backward."""
        raise NotImplementedError("forward: A = np.maximum(Z, 0)")

    def backward(self, dLdA):
        """dLdZ = dLdA · 1[Z > 0]; return it."""
        raise NotImplementedError("backward: dLdZ = dLdA * (A > 0)")
