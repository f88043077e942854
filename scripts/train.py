"""Entry point of the Snakemake rule family 'train': see `python scripts/train.py --help`."""

from optimbench.train import main

if __name__ == "__main__":
    main()
