"""couchmate: an AI companion that watches your screen and talks with you."""

__version__ = "0.1.0"
