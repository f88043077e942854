"""Settings of the tiny study the workflow tests run: real data (digits) that a width-8 model learns in two
epochs (Adam reaches ≈ 0.55 test accuracy, chance is 0.1), four of the article's optimizers, so the claim
about Adagrad and Adadelta gets a verdict."""

# Two problems: the article's kind (a width-8 CIFAR ResNet18 on digits) and a lower-is-better one (a small
# VAE on digits, negative ELBO in nats), so the tables and report hold a performance profile.
PROBLEM = "digits-resnet18"
VAE = "digits-vae"
PROBLEMS = [PROBLEM, VAE]
VAE_WIDTH = 16
VAE_TARGET = 600.0
OPTIMIZERS = ["SGD", "Adam", "Adagrad", "Adadelta"]
SEEDS = [0, 1]
EPOCHS = 2
TARGET = 0.4
# Descent: the article's runs (one method name holds a dot) and every optimizer on Ackley.
ARTICLE_METHODS = ["article-vanilla", "article-momentum-0.1"]
GRADIENTS = ["as-printed", "central"]
DESCENT_RUNS = len(ARTICLE_METHODS) * len(GRADIENTS) + len(OPTIMIZERS)
DESCENT_JOBS = 2  # one job per group and function: article and optimizers, each on Ackley
# Tuning: Adam alone, three Sobol trials of one epoch on a 200-image validation split, then its seeds.
TUNED = ["Adam"]
TRIALS = 3
