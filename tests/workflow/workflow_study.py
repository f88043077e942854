"""Settings of the tiny study the workflow tests run: real data (digits) that a width-8 model learns in two
epochs (Adam reaches ≈ 0.55 test accuracy, chance is 0.1), four of the article's optimizers, so the claim
about Adagrad and Adadelta gets a verdict."""

OPTIMIZERS = ["SGD", "Adam", "Adagrad", "Adadelta"]
SEEDS = [0, 1]
EPOCHS = 2
TARGET = 0.4
# Descent: the article's runs (one method name holds a dot) and every optimizer on Ackley.
ARTICLE_METHODS = ["article-vanilla", "article-momentum-0.1"]
GRADIENTS = ["as-printed", "central"]
DESCENT_RUNS = len(ARTICLE_METHODS) * len(GRADIENTS) + len(OPTIMIZERS)
