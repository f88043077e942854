"""Entry point of the Snakemake rule family 'prepare_data': see `python scripts/prepare_data.py --help`."""

from optimbench.data import main

if __name__ == "__main__":
    main()
