"""Model backends: transformers in process (`hf`), OpenAI-compatible HTTP (`openai`), and a scripted one for tests."""

from .base import Backend, ChatInput

__all__ = ["Backend", "ChatInput"]
