"""Models: providers behind one protocol, and their accounting. Importing registers built-ins.

The HTTP providers import their SDKs only when a model is built, so importing this package
works without the openai/anthropic extras installed.
"""

from ptebench.models import (  # noqa: F401  (registration)
    anthropic,
    openai,
    replay,
    scripted,
    sim,
    vllm,
)
