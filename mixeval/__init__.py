"""mixeval: the evaluation of Koo et al. (ICASSP 2023) — disentanglement metrics, Table 2, listening tests."""

from mixeval.errors import MixevalError

__all__ = ["MixevalError"]
