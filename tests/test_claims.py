"""The article's claims judged on hand-made seeds built to agree with the article, to contradict it and to
be unable to tell, near each claim's thresholds, and only on the article's ResNet18 problems."""

import pandas as pd

from optimbench import claims
from optimbench.runs import StudyProblem

from helpers import plan_problem

CLS = "digits-resnet18"
NAMES = ["Adamax", "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "ASGD"]
ARTICLE = {  # final train acc, final test acc, final test loss, lowest test loss: as the article reports
    "Adamax": (0.99, 0.900, 0.50, 0.40), "SGD": (0.98, 0.895, 0.45, 0.35), "Adam": (0.97, 0.890, 0.30, 0.30),
    "AdamW": (0.96, 0.888, 0.31, 0.31), "Adagrad": (0.70, 0.600, 1.00, 1.00), "Adadelta": (0.60, 0.500, 1.20, 1.20),
    "ASGD": (0.90, 0.800, 0.60, 0.60)}


def article_seeds(noise=0.001, **changes):
    """Per-seed final values: each optimizer's article value ± noise over 3 seeds (changes: name → tuple)."""
    rows = []
    for name, values in {**ARTICLE, **changes}.items():
        for seed, offset in enumerate((-noise, 0.0, noise)):
            train, test, loss, lowest = values
            rows.append({"optimizer": name, "seed": seed, "final_train_acc": train + offset,
                         "final_test_acc": test + offset, "final_test_loss": loss + offset,
                         "best_test_loss": lowest + offset / 2})
    return pd.DataFrame(rows)


def verdicts(seeds, confidence=0.95):
    return claims.claims_table(seeds, confidence)["verdict"].tolist()


def test_every_claim_holds_on_seeds_built_to_match_the_article():
    table = claims.claims_table(article_seeds())
    assert table["verdict"].tolist() == ["holds"] * 5
    assert table["compared"][0] == "SGD, Adam, Adadelta, Adagrad, AdamW, Adamax, ASGD"


def test_claims_are_contradicted_when_the_seeds_clearly_disagree():
    seeds = article_seeds(Adamax=(0.5, 0.5, 0.5, 0.5), Adagrad=(0.7, 0.95, 1.0, 1.0))
    assert verdicts(seeds) == ["contradicted", "contradicted", "contradicted", "holds", "contradicted"]


def test_one_swapped_pair_in_the_order_contradicts_the_ordering_claim():
    seeds = article_seeds(SGD=(0.965, 0.895, 0.45, 0.35))  # SGD now trains below Adam: order broken
    assert verdicts(seeds)[0] == "contradicted"
    assert "SGD vs Adam: contradicted" in claims.claims_table(seeds)["measured"][0]


def test_claims_are_inconclusive_when_the_seeds_cannot_separate_the_optimizers():
    noisy = article_seeds(noise=0.2)  # seeds spread ±0.2: means in the article's order, tests not significant
    assert verdicts(noisy) == ["inconclusive"] * 5


def test_thresholds_decide_near_their_edges():
    # final/lowest = 1.1 for SGD and Adamax: rises by RISE = 1.05, would not by 1.2
    near = article_seeds(noise=0.0005, SGD=(0.98, 0.895, 0.44, 0.40), Adamax=(0.99, 0.900, 0.55, 0.50))
    table = claims.claims_table(near)
    assert table["verdict"][2] == "holds" and claims.RISE == 1.05
    assert "SGD mean final/lowest test loss 1.100" in table["measured"][2]
    # test accuracies 0.018 apart: similar within SIMILAR_ACC = 0.02, not within 0.015
    near = article_seeds(noise=0.0005, AdamW=(0.96, 0.882, 0.31, 0.31))
    assert verdicts(near)[1] == "holds" and claims.SIMILAR_ACC == 0.02
    apart = article_seeds(noise=0.0005, AdamW=(0.96, 0.875, 0.31, 0.31))  # 0.025 apart
    assert verdicts(apart)[1] == "contradicted"


def test_only_one_of_two_optimizers_meeting_a_claim_is_not_enough():
    seeds = article_seeds(SGD=(0.98, 0.895, 0.45, 0.44))  # SGD's loss no longer rises, Adamax's still does
    assert verdicts(seeds)[2] == "contradicted"
    seeds = article_seeds(AdamW=(0.96, 0.888, 0.55, 0.31))  # Adam still lowest, AdamW not
    assert verdicts(seeds)[3] == "contradicted"
    seeds = article_seeds(Adadelta=(0.6, 0.85, 1.2, 1.2))  # Adagrad still worst, Adadelta not
    assert verdicts(seeds)[4] == "contradicted"


def test_claims_about_the_article_compare_its_optimizers_among_themselves():
    seeds = pd.concat([article_seeds(), article_seeds(AMSGrad=(0.99, 0.95, 0.1, 0.1)).query("optimizer == 'AMSGrad'")])
    table = claims.claims_table(seeds)
    assert table["verdict"].tolist() == ["holds"] * 5  # AMSGrad (not the article's) lower loss changes nothing
    assert "AMSGrad" not in table["compared"][3]


def test_claims_with_missing_optimizers_say_so():
    table = claims.claims_table(article_seeds().query("optimizer != 'Adamax'"))
    assert table["verdict"].tolist() == ["not tested", "not tested", "not tested", "holds", "holds"]
    assert "not tested: Adamax not in this study" in table["measured"][0]


def test_claims_are_judged_only_on_resnet18_classification_problems_each_on_its_own_seeds():
    contradicting = {"Adamax": (0.5, 0.5, 0.5, 0.5), "Adagrad": (0.7, 0.95, 1.0, 1.0)}
    seeds = pd.concat([article_seeds().assign(problem=CLS),
                       article_seeds(**contradicting).assign(problem="cifar10-resnet18"),
                       article_seeds().assign(problem="cifar100-vgg16"),  # classification, not a ResNet18
                       article_seeds().assign(problem="digits-capsnet")])  # a capsule network
    entries = {name: plan_problem(name) for name in ("cifar100-vgg16", CLS, "digits-capsnet", "cifar10-resnet18")}
    entries["cifar10-resnet18"]["model"] = "resnet18_article"  # the article's own ResNet18
    problems = {name: StudyProblem.from_summary(name, entry) for name, entry in entries.items()}
    assert claims.article_problems(problems) == [CLS, "cifar10-resnet18"]
    table = claims.article_claims(seeds, problems)
    assert list(table.columns) == ["problem", "claim", "compared", "measured", "verdict"]
    assert table["problem"].tolist() == [CLS] * 5 + ["cifar10-resnet18"] * 5
    assert table["verdict"].tolist()[:5] == ["holds"] * 5
    assert table["verdict"].tolist()[5:] == ["contradicted", "contradicted", "contradicted", "holds", "contradicted"]
