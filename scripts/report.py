"""Entry point of the Snakemake rule family 'report': see `python scripts/report.py --help`."""

from optimbench.render import main

if __name__ == "__main__":
    main()
