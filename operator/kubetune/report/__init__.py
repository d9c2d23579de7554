"""The HTML report of a Round: one self-contained file, plots drawn by plotly.js, inlined."""
