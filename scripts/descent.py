"""Entry point of the Snakemake rule family 'descent': see `python scripts/descent.py --help`."""

from optimbench.descent import main

if __name__ == "__main__":
    main()
