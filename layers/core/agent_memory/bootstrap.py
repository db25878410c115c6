"""The only place that picks concrete adapters from Settings.

Everything is built lazily on first use and cached on the Container, and one Container is cached per
process (`get_container`), so a Lambda execution environment builds its clients once and a cold start
imports no SDK it does not use. Tests build their own Container with explicit adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agent_memory.config import Settings, get_settings

if TYPE_CHECKING:
    from agent_memory.adapters.openai_client import AzureOpenAITarget
    from agent_memory.adapters.secrets import RotatingSecret, SecretReader
    from agent_memory.domain.models import WorkingMemory
    from agent_memory.domain.tasks import AnyTask
    from agent_memory.ports import (
        ApiKeyStore,
        DocumentStore,
        Embedder,
        LanguageModel,
        LongTermStore,
        RateLimiter,
        SessionReader,
        TaskQueue,
        WorkingMemoryStore,
    )
    from agent_memory.services.auth import Authenticator
    from agent_memory.services.cleanup import CleanupService
    from agent_memory.services.extraction import ExtractionService
    from agent_memory.services.extraction_scheduler import ExtractionScheduler
    from agent_memory.services.long_term import LongTermService
    from agent_memory.services.sessions import SessionService
    from agent_memory.services.summary_views import SummaryViewService
    from agent_memory.services.task_worker import TaskWorker
    from agent_memory.services.user_data import UserDataService
    from agent_memory.services.working_memory import Promotion, WorkingMemoryService

_UNSET: Any = object()


class Container:
    """Adapters and services for one process. Pass adapters to override what Settings would pick."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        working_memory_store: WorkingMemoryStore | None = None,
        long_term_store: LongTermStore | None = None,
        embedder: Embedder | None = None,
        language_model: LanguageModel | None = _UNSET,
        task_queue: TaskQueue | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        overrides = {
            "working_memory_store": working_memory_store,
            "long_term_store": long_term_store,
            "embedder": embedder,
            "task_queue": task_queue,
            "rate_limiter": rate_limiter,
        }
        for name, value in overrides.items():
            if value is not None:
                self.__dict__[name] = value  # pre-fills the cached_property
        if language_model is not _UNSET:
            self.__dict__["language_model"] = language_model

    # --- adapters ---------------------------------------------------------------------------------
    @cached_property
    def _redis_client(self) -> Any:
        """One client (one connection pool) for every Redis-backed adapter of the process."""
        from redis.exceptions import RedisError

        from agent_memory.adapters._redis import redis_client
        from agent_memory.domain.errors import DependencyUnavailableError

        s = self.settings
        assert s.redis_url
        token = self._secret("REDIS_AUTH_TOKEN_SECRET", s.redis_auth_token_secret)
        cluster = {"auto": None, "true": True, "false": False}[s.redis_cluster]
        try:
            return redis_client(s.redis_url, timeout_seconds=s.redis_timeout_seconds, auth_token=token, cluster=cluster)
        except RedisError as exc:  # REDIS_CLUSTER=auto could not ask the server: a 503, retried next call
            raise DependencyUnavailableError("redis", f"connect failed: {type(exc).__name__}: {exc}"[:300]) from exc

    # --- secrets ----------------------------------------------------------------------------------
    @cached_property
    def secret_reader(self) -> SecretReader:
        """Secrets Manager / SSM, cached SECRETS_MAX_AGE_SECONDS (adapters/secrets.py)."""
        from agent_memory.adapters.secrets import SecretReader

        s = self.settings
        return SecretReader(
            region=s.aws_region, max_age_seconds=s.secrets_max_age_seconds, timeout_seconds=s.secrets_timeout_seconds
        )

    def _secret(self, setting: str, reference: str | None) -> RotatingSecret | None:
        """The secret a setting names (one object per setting, shared by the adapters that use it)."""
        if not reference:
            return None
        secrets: dict[str, RotatingSecret] = self.__dict__.setdefault("_secrets", {})
        if setting not in secrets:
            from agent_memory.adapters.secrets import RotatingSecret, SecretLocation

            secrets[setting] = RotatingSecret(self.secret_reader, SecretLocation.parse(setting, reference))
        return secrets[setting]

    def _llm_api_key(self) -> str | RotatingSecret:
        s = self.settings
        return self._secret("OPENAI_API_KEY_SECRET", s.openai_api_key_secret) or s.openai_api_key or ""

    def _embedding_api_key(self) -> str | RotatingSecret:
        s = self.settings
        if s.embedding_api_key_secret:
            return self._secret("EMBEDDING_API_KEY_SECRET", s.embedding_api_key_secret) or ""
        return s.embedding_api_key or self._llm_api_key()

    def check_secrets(self) -> None:
        """Read every configured secret once. Raises ConfigurationError naming the first that fails."""
        s = self.settings
        configured = [("REDIS_AUTH_TOKEN_SECRET", s.redis_auth_token_secret if s.redis_url else None)]
        if s.llm_enabled and s.llm_provider != "bedrock":
            configured.append(("OPENAI_API_KEY_SECRET", s.openai_api_key_secret))
        if s.embedding_provider in ("openai", "azure"):
            configured.append(("EMBEDDING_API_KEY_SECRET", s.embedding_api_key_secret))
            if not (s.embedding_api_key or s.embedding_api_key_secret):
                configured.append(("OPENAI_API_KEY_SECRET", s.openai_api_key_secret))
        for setting, reference in configured:
            secret = self._secret(setting, reference)
            if secret is not None:
                secret.get()

    @cached_property
    def working_memory_store(self) -> WorkingMemoryStore:
        s = self.settings
        if s.redis_url:
            from agent_memory.adapters.redis_working_memory import RedisWorkingMemoryStore

            return RedisWorkingMemoryStore(self._redis_client, key_prefix=s.redis_key_prefix)
        from agent_memory.adapters.sqlite_working_memory import SqliteWorkingMemoryStore

        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteWorkingMemoryStore(s.data_dir / "working_memory.sqlite3")

    def session_reader(self) -> SessionReader | None:
        """A new event-loop reader of working memory for the caller's loop (a server's lifespan opens one
        and closes it), or None where reads stay on the blocking store: SQLite, a store passed in, or a
        Redis AUTH token from a secret (the async client takes credentials from the URL only)."""
        s = self.settings
        if not s.redis_url or s.redis_auth_token_secret:
            return None
        from agent_memory.adapters._redis import async_redis_client, is_cluster_client
        from agent_memory.adapters.redis_working_memory import RedisSessionReader, RedisWorkingMemoryStore

        if type(self.working_memory_store) is not RedisWorkingMemoryStore:  # a store passed in: read through it
            return None

        cluster = is_cluster_client(self._redis_client)  # what REDIS_CLUSTER resolved to
        client = async_redis_client(s.redis_url, timeout_seconds=s.redis_timeout_seconds, cluster=cluster)
        return RedisSessionReader(client, key_prefix=s.redis_key_prefix)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        if s.embedding_provider in ("openai", "azure"):
            from agent_memory.adapters.openai_embedder import OpenAIEmbedder

            return OpenAIEmbedder(
                api_key=self._embedding_api_key(),
                base_url=s.embedding_base_url or s.openai_base_url,
                model=s.embedding_model or "text-embedding-3-small",
                dimensions=s.embedding_dimensions,
                timeout_seconds=s.embedding_timeout_seconds,
                azure=self._azure_target() if s.embedding_provider == "azure" else None,
            )
        if s.embedding_provider == "bedrock":
            from agent_memory.adapters.bedrock_embedder import BedrockEmbedder

            return BedrockEmbedder(
                model=s.embedding_model or "amazon.titan-embed-text-v2:0",
                dimensions=s.embedding_dimensions or 1024,
                region=s.aws_region,
                timeout_seconds=s.embedding_timeout_seconds,
                endpoint_url=s.bedrock_endpoint_url,
            )
        if s.embedding_provider == "fake":
            from agent_memory.adapters.fake_embedder import FakeEmbedder

            return FakeEmbedder(dimensions=s.embedding_dimensions or 64)
        from agent_memory.adapters.local_embedder import LocalEmbedder

        return LocalEmbedder()

    @cached_property
    def long_term_store(self) -> LongTermStore:
        s = self.settings
        if s.opensearch_url:
            from agent_memory.adapters.opensearch_long_term import OpenSearchLongTermStore

            return OpenSearchLongTermStore.from_settings_values(
                url=s.opensearch_url,
                index=s.opensearch_index,
                auth=s.opensearch_auth,
                service=s.opensearch_service,
                engine=s.opensearch_engine,
                tenancy=s.opensearch_tenancy,
                region=s.aws_region,
                username=s.opensearch_username,
                password=s.opensearch_password,
                timeout_seconds=s.opensearch_timeout_seconds,
            )
        from agent_memory.adapters.sqlite_long_term import SqliteLongTermStore

        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteLongTermStore(s.data_dir / "long_term.sqlite3")

    @cached_property
    def language_model(self) -> LanguageModel | None:
        s = self.settings
        if not s.llm_enabled:
            return None
        if s.llm_provider == "bedrock":
            from agent_memory.adapters.bedrock_llm import BedrockLanguageModel

            return BedrockLanguageModel(
                model=s.generation_model,
                region=s.aws_region,
                timeout_seconds=s.llm_timeout_seconds,
                endpoint_url=s.bedrock_endpoint_url,
            )
        from agent_memory.adapters.openai_llm import OpenAILanguageModel

        return OpenAILanguageModel(
            api_key=self._llm_api_key(),
            base_url=s.openai_base_url,
            model=s.generation_model,
            timeout_seconds=s.llm_timeout_seconds,
            azure=self._azure_target() if s.llm_provider == "azure" else None,
        )

    def _azure_target(self) -> AzureOpenAITarget:
        from agent_memory.adapters.openai_client import AzureOpenAITarget

        s = self.settings
        return AzureOpenAITarget(endpoint=s.azure_openai_endpoint or "", api_version=s.openai_api_version)

    @cached_property
    def document_store(self) -> DocumentStore:
        """Summary views, their results and task records: beside working memory (Redis or SQLite)."""
        s = self.settings
        if s.redis_url:
            from agent_memory.adapters.redis_documents import RedisDocumentStore

            return RedisDocumentStore(self._redis_client, key_prefix=s.redis_key_prefix)
        from agent_memory.adapters.sqlite_documents import SqliteDocumentStore

        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteDocumentStore(s.data_dir / "documents.sqlite3")

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        """Per-principal token buckets: in Redis when REDIS_URL is set (shared by every instance), else
        in this process (`agent-memory serve --workers N` then allows N times the rate)."""
        if self.settings.redis_url:
            from agent_memory.adapters.redis_rate_limiter import RedisRateLimiter

            return RedisRateLimiter(self._redis_client, key_prefix=self.settings.redis_key_prefix)
        from agent_memory.adapters.memory_rate_limiter import InProcessRateLimiter

        return InProcessRateLimiter()

    @cached_property
    def task_queue(self) -> TaskQueue:
        s = self.settings
        if s.sqs_queue_url:
            from agent_memory.adapters.sqs_task_queue import SqsTaskQueue

            return SqsTaskQueue(
                s.sqs_queue_url,
                region=s.aws_region,
                endpoint_url=s.sqs_endpoint_url,
                timeout_seconds=s.sqs_timeout_seconds,
            )
        from agent_memory.adapters.sqlite_task_queue import SqliteTaskQueue

        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteTaskQueue(s.data_dir / "tasks.sqlite3", max_receives=s.task_max_receives)

    @cached_property
    def api_key_store(self) -> ApiKeyStore:
        """API keys: the DynamoDB table API_KEYS_TABLE on AWS, else api_keys.sqlite3 beside the other files."""
        s = self.settings
        if s.api_keys_table:
            from agent_memory.adapters.dynamodb_api_keys import DynamoDbApiKeyStore

            return DynamoDbApiKeyStore(
                s.api_keys_table,
                region=s.aws_region,
                endpoint_url=s.dynamodb_endpoint_url,
                timeout_seconds=s.dynamodb_timeout_seconds,
            )
        from agent_memory.adapters.sqlite_api_keys import SqliteApiKeyStore

        s.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteApiKeyStore(s.data_dir / "api_keys.sqlite3")

    @cached_property
    def authenticator(self) -> Authenticator:
        """Who each request is, by AUTH_MODE; the key store or the JWKS client is built only for its mode."""
        from agent_memory.services.auth import ApiKeyService, Authenticator

        s = self.settings
        if s.auth_mode == "api_key":
            return Authenticator("api_key", default_tenant=s.default_tenant, api_keys=ApiKeyService(self.api_key_store))
        if s.auth_mode == "jwt":
            from agent_memory.adapters.jwt_verifier import JwtVerifier

            verifier = JwtVerifier.from_settings(s)
            return Authenticator("jwt", default_tenant=s.default_tenant, tokens=verifier)
        return Authenticator("disabled", default_tenant=s.default_tenant)

    # --- services ---------------------------------------------------------------------------------
    @cached_property
    def working_memory_service(self) -> WorkingMemoryService:
        from agent_memory.services.working_memory import WorkingMemoryLimits, WorkingMemoryService

        s = self.settings
        return WorkingMemoryService(
            self.working_memory_store,
            llm=self.language_model,
            summarization_enabled=s.enable_working_memory_summarization,
            summarization_threshold=s.summarization_threshold,
            default_window=s.default_context_window,
            limits=WorkingMemoryLimits(
                max_messages=s.max_messages_per_session,
                max_message_chars=s.max_message_chars,
                max_future_timestamp_seconds=s.max_future_timestamp_seconds,
            ),
            promoter=_LongTermOnFirstPromotion(self) if s.long_term_memory else None,
            extraction=self.extraction_scheduler,
        )

    @cached_property
    def session_service(self) -> SessionService:
        """The Memory Platform session API over the working-memory store (services/sessions.py)."""
        from agent_memory.services.sessions import SessionService

        return SessionService(
            self.working_memory_store,
            self.working_memory_service,
            long_term=self.long_term_service if self.settings.long_term_memory else None,
            extraction=self.extraction_scheduler,
        )

    @cached_property
    def extraction_scheduler(self) -> ExtractionScheduler | None:
        """The producer of extraction tasks; None (nothing enqueued) when extraction is off."""
        if not self.settings.extraction_enabled or self.language_model is None:
            return None
        from agent_memory.services.extraction_scheduler import ExtractionScheduler
        from agent_memory.services.task_records import TaskRecords

        return ExtractionScheduler(
            self.task_queue,
            delay_seconds=self.settings.extraction_debounce_seconds,
            records=TaskRecords(self.document_store),
        )

    @cached_property
    def extraction_service(self) -> ExtractionService:
        """The consumer of extraction tasks. FeatureDisabledError when there is no LLM."""
        from agent_memory.domain.errors import FeatureDisabledError
        from agent_memory.services.extraction import ExtractionService

        if self.language_model is None or not self.settings.long_term_memory:
            raise FeatureDisabledError(
                "extraction needs an LLM (OPENAI_API_KEY, or LLM_PROVIDER=azure|bedrock) and long-term memory"
            )
        updater = None
        if self.settings.knowledge_updates:
            from agent_memory.services.knowledge_updates import KnowledgeUpdater

            updater = KnowledgeUpdater(
                self.long_term_service, self.language_model, distance=self.settings.knowledge_update_distance
            )
        from agent_memory.services.task_records import TaskRecords
        from agent_memory.services.user_data import UserTombstones

        return ExtractionService(
            self.working_memory_store,
            self.long_term_service,
            self.language_model,
            updater=updater,
            records=TaskRecords(self.document_store),
            tombstones=UserTombstones(self.document_store),
        )

    @cached_property
    def user_data_service(self) -> UserDataService:
        """Export and deletion of one user's data, over every store Settings selects (API and CLI)."""
        from agent_memory.services.user_data import UserDataService

        return UserDataService(
            self.working_memory_store,
            self.document_store,
            long_term=self.long_term_store if self.settings.long_term_memory else None,
            queue=self.task_queue,
        )

    @cached_property
    def summary_view_service(self) -> SummaryViewService:
        from agent_memory.services.summary_views import SummaryViewService
        from agent_memory.services.user_data import UserTombstones

        return SummaryViewService(
            self.document_store,
            self.long_term_service,
            llm=self.language_model,
            queue=self.task_queue if self.settings.background_tasks_enabled else None,
            tombstones=UserTombstones(self.document_store),
        )

    @cached_property
    def cleanup_service(self) -> CleanupService:
        """The scheduled sweep (CleanupFunction, `agent-memory cleanup`) over the configured stores."""
        from agent_memory.ports import SessionSweeper, TenantDirectory
        from agent_memory.services.cleanup import CleanupService, policy_from_settings

        s = self.settings
        sessions = self.working_memory_store
        if not isinstance(sessions, SessionSweeper):
            raise TypeError(f"{type(sessions).__name__} cannot be swept (no SessionSweeper methods)")
        scheduler = None
        if self.extraction_scheduler is not None:
            from agent_memory.services.extraction_scheduler import ExtractionScheduler
            from agent_memory.services.task_records import TaskRecords

            # No debounce: the session may expire soon after this run.
            scheduler = ExtractionScheduler(self.task_queue, delay_seconds=0, records=TaskRecords(self.document_store))
        policy = policy_from_settings(s.forget_max_age_days, s.forget_max_inactive_days, s.forget_budget)
        long_term = self.long_term_service if s.long_term_memory and policy is not None else None
        directory = self.long_term_store if long_term is not None else None
        return CleanupService(
            sessions,
            self.document_store,
            interval_seconds=s.cleanup_interval_minutes * 60,
            scheduler=scheduler,
            long_term=long_term,
            long_term_tenants=directory if isinstance(directory, TenantDirectory) else None,
            policy=policy,
        )

    def run_task(self, task: AnyTask) -> Any:
        """Run one queue message with the service its type names (ExtractionFunction, the worker)."""
        from agent_memory.domain.tasks import SummaryViewRunTask

        if isinstance(task, SummaryViewRunTask):
            return self.summary_view_service.run(task)
        return self.extraction_service.run(task)

    def task_worker(self) -> TaskWorker | None:
        """A worker over the embedded queue, or None when background tasks are off (no LLM or no long-term
        memory) or the queue is SQS (there ExtractionFunction consumes it)."""
        s = self.settings
        if not s.background_tasks_enabled or self.language_model is None or s.sqs_queue_url:
            return None
        from agent_memory.services.task_worker import TaskWorker

        queue: Any = self.task_queue  # the SQLite queue: a TaskLeases too
        return TaskWorker(queue, self.run_task, lease_seconds=s.task_lease_seconds)

    @cached_property
    def long_term_service(self) -> LongTermService:
        from agent_memory.services.long_term import LongTermLimits, LongTermService

        s = self.settings
        return LongTermService(
            self.long_term_store,
            self.embedder,
            llm=self.language_model,
            dedup_distance=s.deduplication_distance_threshold,
            limits=LongTermLimits(
                max_text_chars=s.max_memory_text_chars, max_memories_per_request=s.max_memories_per_request
            ),
            enabled=s.long_term_memory,
            context_window=s.message_context_window,
            time_match=s.hybrid_time_match,
            second_pass=self.extraction_scheduler,
        )

    def check_startup(self) -> None:
        """Fail now, with the reason, on what would otherwise fail the first request that needs it:
        an unreachable long-term store or an embedder whose dimension does not match the index, and a
        secret that is missing or unreadable (named in the ConfigurationError)."""
        self.check_secrets()
        if self.settings.long_term_memory:
            self.long_term_service.ensure_ready()

    def backends(self) -> dict[str, str]:
        """Which adapter serves each port, from Settings alone (nothing is built or contacted)."""
        s = self.settings
        embedding_model = s.embedding_model or {"local": "multilingual-e5-small"}.get(s.embedding_provider)
        return {
            "working_memory": "redis" if s.redis_url else "sqlite",
            "long_term_memory": ("opensearch" if s.opensearch_url else "sqlite") if s.long_term_memory else "off",
            "embedder": f"{s.embedding_provider}:{embedding_model}" if embedding_model else s.embedding_provider,
            "llm": f"{s.llm_provider}:{s.generation_model}" if s.llm_enabled else "off",
            "task_queue": ("sqs" if s.sqs_queue_url else "sqlite") if s.background_tasks_enabled else "off",
        }

    def backend_probes(self) -> dict[str, Callable[[], object]]:
        """One cheap call per configured backend, for the deep health check. Each probe builds its adapter
        itself: building may already connect (REDIS_CLUSTER=auto asks the server), and a backend that cannot
        be built is that backend's failed check, not the whole check's 503."""
        probes: dict[str, Callable[[], object]] = {"working_memory": lambda: self.working_memory_store.ping()}
        if self.settings.long_term_memory:
            probes["long_term_memory"] = lambda: self.long_term_store.ensure_ready(self.embedder.dimensions)
            probes["embedder"] = lambda: self.embedder.embed_query("health check")
        if self.settings.background_tasks_enabled:
            probes["task_queue"] = lambda: self.task_queue.ping()
        return probes

    def built(self, name: str) -> Any:
        """The adapter or service `name` if it was built already, else None (never builds one)."""
        return self.__dict__.get(name)

    def close(self) -> None:
        """Release what the adapters hold (connections; SQLite checkpoints its WAL into the main file).

        For a clean shutdown of a server process; Lambda never calls it (the sandbox keeps its clients).
        """
        for name in ("working_memory_store", "long_term_store", "task_queue", "document_store", "api_key_store"):
            store = self.built(name)
            if store is not None and hasattr(store, "close"):
                store.close()

    def features(self) -> dict[str, bool]:
        llm = self.settings.llm_enabled
        return {
            "long_term_memory": self.settings.long_term_memory,
            "llm": llm,
            "summarization": llm and self.settings.enable_working_memory_summarization,
            "query_optimization": llm,
            "extraction": self.settings.extraction_enabled,
            "summary_views": self.settings.background_tasks_enabled,
        }


_container: Container | None = None
_container_lock = threading.Lock()



class _LongTermOnFirstPromotion:
    """The container's long-term service as the working-memory service's `Promoter`, built on the first
    promotion rather than with the working-memory service: a working-memory call that promotes nothing
    (every GET, and every PUT without new memories) then never builds the long-term store and the
    embedder, whose clients (opensearch-py, a Bedrock or OpenAI client) cost a cold start ~0.25 s."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def promote(self, tenant: str, memory: WorkingMemory) -> Promotion:
        return self._container.long_term_service.promote(tenant, memory)

    def retract(self, tenant: str, memory_ids: Sequence[str]) -> None:
        self._container.long_term_service.retract(tenant, memory_ids)

    def settle(self, tenant: str, memory_ids: Sequence[str]) -> None:
        self._container.long_term_service.settle(tenant, memory_ids)

def get_container() -> Container:
    """The process-wide Container (one per Lambda execution environment)."""
    global _container
    if _container is None:
        with _container_lock:
            if _container is None:
                _container = Container()
    return _container
