"""Arshai memory managers over the serverless-agent-memory HTTP API (`managers.py`)."""

from agent_memory_arshai.managers import AgentMemoryManager, SyncAgentMemoryManager, WorkingMemoryText

__all__ = ["AgentMemoryManager", "SyncAgentMemoryManager", "WorkingMemoryText"]
__version__ = "0.1.0"
