"""Looking at what a model does: masks and overlays (predict), the HTML/Markdown report of parity
and bench runs (report), and several models side by side on the same images (compare)."""
