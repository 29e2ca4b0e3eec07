"""Write one picture per notebook to notebooks/figures/<name>.png, for the top-level README.

Run after rendering: ``python notebooks/extract_figures.py``. The picture is the notebook's first
PNG output, or the one chosen in PICK (by position among its PNG outputs).
"""

import base64
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PICK = {"05_rnn_vanishing_gradients": 1,   # the ‖∂h_t/∂h_k‖ plot, not the unrolled RNN
        "03_cnn_on_mnist": 4}               # feature maps of one digit, layer by layer


def main():
    out = HERE / "figures"
    out.mkdir(exist_ok=True)
    for nb in sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        pngs = [o["data"]["image/png"] for c in cells if c["cell_type"] == "code"
                for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        if not pngs:
            print(f"{nb.name}: no picture")
            continue
        png = pngs[min(PICK.get(nb.stem, 0), len(pngs) - 1)]
        (out / f"{nb.stem}.png").write_bytes(base64.b64decode(png))
        print(f"{nb.name} -> figures/{nb.stem}.png")


if __name__ == "__main__":
    main()
