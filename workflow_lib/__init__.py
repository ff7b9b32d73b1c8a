"""DARTS architecture search and baselines on scientific and standard datasets (Snakemake workflow logic)."""
