"""serverless-agent-memory: working and long-term memory for LLM agents (AMS REST API v1)."""

__version__ = "0.1.0"
