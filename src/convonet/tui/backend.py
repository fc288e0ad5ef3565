"""The Keras backend label for the app's header (see ``convonet.core.backend``)."""

from __future__ import annotations

from convonet.core.backend import describe_backend

__all__ = ["describe_backend"]
