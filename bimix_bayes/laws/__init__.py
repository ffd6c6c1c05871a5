"""Data-mixing laws, one module each, behind one interface (:mod:`bimix_bayes.laws.base`).

``get(name)`` returns a registered law; every other module asks the law for its form, its
parameters, its derivatives and its paper coefficients instead of knowing them.

Examples
--------
>>> from bimix_bayes import laws
>>> laws.get("transfer").parameters["transfer"]
('domain', 'source')
"""

from bimix_bayes.laws.base import Law, get, names, register
from bimix_bayes.laws.bimix import BiMix
from bimix_bayes.laws.dml import DataMixingLaw
from bimix_bayes.laws.transfer import Transfer
from bimix_bayes.laws.transfer_linear import TransferLinear

register(BiMix())
register(Transfer())
register(DataMixingLaw())
register(TransferLinear())

__all__ = ["BiMix", "DataMixingLaw", "Law", "Transfer", "TransferLinear", "get", "names",
           "register"]
