"""bimix-bayes: Bayesian BiMix data-mixing laws for LLM pretraining.

The data flow one way: corpus -> trainer -> observations -> model -> posterior -> optimizer and
planner -> next mixtures -> trainer.
"""

from importlib.metadata import PackageNotFoundError, version

from bimix_bayes.errors import BimixInputError
from bimix_bayes.observations import Observations

try:
    __version__ = version("bimix-bayes")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["BimixInputError", "Observations", "__version__"]
