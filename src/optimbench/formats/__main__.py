"""`python -m optimbench.formats --dataset NAME --spec JSON --out X.npz --summary X.json`."""

from optimbench.formats import main

main()
