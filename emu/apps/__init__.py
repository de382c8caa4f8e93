"""Application endpoints. Learned apps live in sub-packages and import torch lazily, inside themselves."""
