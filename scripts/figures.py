"""Entry point of the Snakemake rule family 'figures': see `python scripts/figures.py --help`."""

from optimbench.plots import main

if __name__ == "__main__":
    main()
