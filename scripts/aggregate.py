"""Entry point of the Snakemake rule family 'aggregate': see `python scripts/aggregate.py --help`."""

from optimbench.aggregate import main

if __name__ == "__main__":
    main()
