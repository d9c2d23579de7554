"""The HTML report of a Round: one self-contained file, plots as inline SVG."""
