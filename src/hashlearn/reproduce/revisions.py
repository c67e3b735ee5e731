"""Changes of what an unchanged config text means, named in the config hash of the configs
they touch: a results folder written before such a change is refused (its hash differs)
instead of mixing cells measured the old and the new way."""

from __future__ import annotations

#: Changes of what a config's text means, each named in the hash of the configs it touches
#: (so a results folder written before is refused instead of mixing old and new cells).
REVISIONS = {
    "itq-uncentred": "the two-stage itq does not centre (the H2Q authors' baseline)",
    "cifar10-h2q-53000": "the cifar10 h2q database holds the training images out (53,000)",
    "h2q-sgd-authors": "H2Q's sgd: the authors' reflection order, the best validation epoch",
}


def _uses_h2q_sgd(config: dict) -> bool:
    for block in config["deep"]:
        if "h2q" in block["quantization"] and block["train"].get("h2q_solver") == "sgd":
            return True
    for block in config["shallow"]:
        params = block["params"]
        for method in block["methods"]:
            if (
                method.startswith("h2q")
                and dict(params, **params.get(method, {})).get("solver") == "sgd"
            ):
                return True
    return False


def revisions_of(config: dict) -> list[str]:
    """The :data:`REVISIONS` that apply to a checked config, in a fixed order."""
    out = []
    if any("itq" in block["quantization"] for block in config["deep"]):
        out.append("itq-uncentred")
    if _uses_h2q_sgd(config):
        out.append("h2q-sgd-authors")
    for block in [{"dataset": {}}, *config["shallow"], *config["deep"]]:
        spec = {**config["dataset"], **block["dataset"]}
        if spec.get("name") == "cifar10" and spec.get("protocol") in (None, "h2q"):
            out.append("cifar10-h2q-53000")
            break
    return out
