"""One Settings class, read from the environment (and `.env`), validated at cold start.

Every setting is documented in README's configuration table; keep the two in step.
"""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent_memory.domain.rate_limit import RateLimit
from agent_memory.domain.validation import ScopeValue


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- where data lives -------------------------------------------------------------------------
    data_dir: Path = Field(default=Path(".agent-memory"), alias="AGENT_MEMORY_DATA_DIR")
    redis_url: str | None = None
    # The Redis AUTH token from Secrets Manager or SSM (adapters/secrets.py), not from REDIS_URL; required
    # on Lambda for a server with AUTH, where a password inside REDIS_URL is refused.
    redis_auth_token_secret: str | None = None
    redis_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    redis_key_prefix: str = "am"
    # Redis Cluster (ElastiCache Serverless, any cluster-mode-enabled cache): auto = ask the server
    # (`INFO cluster`) once, at the first connect; true/false skip the question (adapters/_redis.py).
    redis_cluster: Literal["auto", "true", "false"] = "auto"
    opensearch_url: str | None = None
    # Lowercase, [a-z0-9._-], not starting with . _ or -, short enough for the tenant indexes' names
    # (adapters/opensearch_long_term.py: tenant_index_name, MAX_BASE_NAME_BYTES).
    opensearch_index: str = Field(default="agent-memory", pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=195)
    # index-per-tenant: a tenant's records in their own index (BM25 statistics per tenant); shared: one
    # index for all (statistics cross tenants). See docs/architecture.md, Tenancy.
    opensearch_tenancy: Literal["index-per-tenant", "shared"] = "index-per-tenant"
    opensearch_auth: Literal["none", "basic", "sigv4"] = "none"
    opensearch_service: Literal["es", "aoss"] = "es"
    # k-NN engine of a new index: faiss (managed domains' default), lucene, or none (no `engine` in the
    # mapping: OpenSearch Serverless next-gen collections refuse one). Space is innerproduct on all.
    opensearch_engine: Literal["faiss", "lucene", "none"] = "faiss"
    opensearch_username: str | None = None
    opensearch_password: str | None = None
    opensearch_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    aws_region: str = Field(default="us-east-1", alias="AWS_REGION")

    # --- models -----------------------------------------------------------------------------------
    embedding_provider: Literal["local", "openai", "azure", "bedrock", "fake"] = "local"
    embedding_model: str | None = None  # provider default when unset
    embedding_dimensions: int | None = Field(default=None, gt=0)
    embedding_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    openai_api_key: str | None = None
    # Where the key lives instead (required on Lambda, where a plain key is refused): a Secrets Manager
    # secret ARN or name, or ssm:<parameter name> (adapters/secrets.py). The embedding key (for
    # EMBEDDING_PROVIDER=openai|azure) is the LLM's, unless EMBEDDING_API_KEY(_SECRET) names another.
    openai_api_key_secret: str | None = None
    embedding_api_key: str | None = None
    embedding_api_key_secret: str | None = None
    # A secret's value is cached this long per process, then read again (rotation); a dependency that
    # refuses it (OpenAI 401, Redis WRONGPASS) makes it read again at once. Each read's timeout.
    secrets_max_age_seconds: int = Field(default=300, ge=0, le=86_400)
    secrets_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    openai_base_url: str = "https://api.openai.com/v1"
    # Where EMBEDDING_PROVIDER=openai sends embeddings; OPENAI_BASE_URL when unset. Lets a local
    # OpenAI-compatible embedding server serve a stronger model while the LLM stays elsewhere.
    embedding_base_url: str | None = None
    # The LLM: openai = any OpenAI-compatible server at OPENAI_BASE_URL (on when OPENAI_API_KEY is set),
    # azure = Azure OpenAI (GENERATION_MODEL names the deployment), bedrock = the Converse API (IAM).
    llm_provider: Literal["openai", "azure", "bedrock"] = "openai"
    generation_model: str = "gpt-4o-mini"
    # The whole call, its one retry included (adapters/openai_client.py: RetryBudget).
    llm_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    # Azure OpenAI, for LLM_PROVIDER=azure and EMBEDDING_PROVIDER=azure (the key is OPENAI_API_KEY).
    azure_openai_endpoint: str | None = None
    openai_api_version: str = "2024-10-21"
    # bedrock-runtime elsewhere than the region's endpoint (LLM and embedder): a VPC endpoint, a test server.
    bedrock_endpoint_url: str | None = None

    # --- behaviour --------------------------------------------------------------------------------
    long_term_memory: bool = True
    enable_working_memory_summarization: bool = True
    summarization_threshold: float = Field(default=0.7, gt=0, le=1)
    default_context_window: int = Field(default=16000, gt=0)
    max_future_timestamp_seconds: int = Field(default=300, ge=0)
    deduplication_distance_threshold: float = Field(default=0.35, ge=0, le=2)
    # Messages before a session message that are indexed with it (0 = none); see services/conversation_context.py.
    message_context_window: int = Field(default=2, ge=0, le=10)
    # Hybrid search lifts results dated in a period the query names ("in July 2023").
    hybrid_time_match: bool = True
    # How often the Visualizer (/ui) re-reads what it shows while its tab is visible (each read is 1-43 requests).
    visualizer_poll_seconds: int = Field(default=5, ge=1, le=3600)

    # --- background extraction (services/extraction.py) -------------------------------------------
    # AMS's name: off = no task is enqueued after a working-memory write (also off without an LLM).
    enable_discrete_memory_extraction: bool = True
    # A write's task is delivered this long after it; a newer write to the session supersedes it.
    extraction_debounce_seconds: int = Field(default=5, ge=0, le=900)
    # SQS on AWS (ExtractionFunction consumes it); unset = the embedded queue under AGENT_MEMORY_DATA_DIR.
    sqs_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # moto, LocalStack or a VPC endpoint
    sqs_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # The embedded queue: how long a claimed task stays invisible, and receives before the dead letters.
    task_lease_seconds: float = Field(default=300.0, gt=0, le=43_200)
    task_max_receives: int = Field(default=5, ge=1, le=100)
    # `agent-memory serve` works the embedded queue in a background thread (`agent-memory worker` too).
    embedded_worker: bool = True
    # A new fact that changes a stored one of the same namespace/user updates or retires it (LLM decides);
    # stored facts within this cosine distance of a new one are shown to the LLM.
    knowledge_updates: bool = True
    knowledge_update_distance: float = Field(default=0.5, ge=0, le=2)

    # --- scheduled cleanup (services/cleanup.py: CleanupFunction, `agent-memory cleanup`) ----------
    # How often it runs (the template's schedule); sessions expiring within twice this get their final
    # extraction queued.
    cleanup_interval_minutes: int = Field(default=15, ge=1, le=1440)
    # Long-term forgetting per tenant (pinned records exempt); off while all three are unset.
    forget_max_age_days: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    forget_max_inactive_days: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    forget_budget: int | None = Field(default=None, ge=0)

    # --- limits (413/422 beyond them) -------------------------------------------------------------
    max_request_bytes: int = Field(default=1_048_576, gt=0)
    max_messages_per_session: int = Field(default=2000, gt=0)
    max_message_chars: int = Field(default=100_000, gt=0)
    max_memory_text_chars: int = Field(default=20_000, gt=0)
    max_memories_per_request: int = Field(default=200, gt=0)
    # Token bucket per principal (http/rate_limit.py): sustained requests per second and burst; 0 = off.
    # Unset, they are on with auth and off without it (local benches and fuzzing run unlimited).
    rate_limit_per_second: float = Field(default=20.0, ge=0, allow_inf_nan=False)
    rate_limit_burst: int = Field(default=40, ge=0)

    # --- tenancy ----------------------------------------------------------------------------------
    # disabled: every caller has every scope, in DEFAULT_TENANT (or the x-tenant-id it names); allowed
    # only on a loopback server, never on Lambda. api_key: `agent-memory keys create`. jwt: OIDC/Cognito.
    auth_mode: Literal["disabled", "api_key", "jwt"] = "disabled"
    default_tenant: str = "default"
    # MCP tools (agent_memory/mcp): the namespace and user a tool call gets when it names none, as AMS's
    # DEFAULT_MCP_NAMESPACE / DEFAULT_MCP_USER_ID (search, memory_prompt, set_working_memory, creates).
    default_mcp_namespace: ScopeValue | None = None
    default_mcp_user_id: ScopeValue | None = None
    # API keys on AWS: a DynamoDB table (unset = api_keys.sqlite3 under AGENT_MEMORY_DATA_DIR).
    api_keys_table: str | None = None
    dynamodb_endpoint_url: str | None = None  # moto, LocalStack or a VPC endpoint
    dynamodb_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    # JWT: the issuer's JWKS (default <JWT_ISSUER>/.well-known/jwks.json), checked iss and aud, and the
    # claim that names the caller's tenant.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None
    jwt_tenant_claim: str = "tenant_id"
    jwt_algorithms: list[Literal["RS256", "ES256"]] = Field(default=["RS256", "ES256"], min_length=1)
    jwks_cache_seconds: int = Field(default=3600, gt=0, le=86_400)
    jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=30)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self._check_secret_settings()
        embedding_key = self.embedding_api_key or self.embedding_api_key_secret or self._llm_key_configured
        if self.embedding_provider in ("openai", "azure") and not embedding_key:
            raise ValueError(
                f"EMBEDDING_PROVIDER={self.embedding_provider} needs OPENAI_API_KEY or OPENAI_API_KEY_SECRET "
                "(or EMBEDDING_API_KEY / EMBEDDING_API_KEY_SECRET)"
            )
        if self.llm_provider == "azure" and not self._llm_key_configured:
            raise ValueError("LLM_PROVIDER=azure needs OPENAI_API_KEY or OPENAI_API_KEY_SECRET (the Azure OpenAI key)")
        uses_azure = "azure" in (self.llm_provider, self.embedding_provider)
        if uses_azure and not self.azure_openai_endpoint:
            raise ValueError("Azure OpenAI needs AZURE_OPENAI_ENDPOINT (https://<resource>.openai.azure.com)")
        if self.llm_provider != "openai" and "generation_model" not in self.model_fields_set:
            # The OpenAI default names no Azure deployment and no Bedrock model: say so now, not at the
            # first extraction.
            raise ValueError(f"LLM_PROVIDER={self.llm_provider} needs GENERATION_MODEL")
        if self.auth_mode == "jwt" and not (self.jwt_issuer or self.jwt_jwks_url):
            raise ValueError("AUTH_MODE=jwt needs JWT_ISSUER (or JWT_JWKS_URL)")
        if self.auth_mode == "jwt" and urlsplit(self.jwks_url or "").scheme not in ("http", "https"):
            raise ValueError(f"the JWKS URL {self.jwks_url} (JWT_JWKS_URL, else from JWT_ISSUER) must be http(s)")
        return self

    @property
    def jwks_url(self) -> str | None:
        if self.jwt_jwks_url:
            return self.jwt_jwks_url
        return f"{self.jwt_issuer.rstrip('/')}/.well-known/jwks.json" if self.jwt_issuer else None

    @cached_property  # read on every authenticated request
    def rate_limit(self) -> RateLimit | None:
        """The per-principal limit, or None when off: either setting 0, or auth disabled and neither set."""
        explicit = {"rate_limit_per_second", "rate_limit_burst"} & self.model_fields_set
        if self.auth_mode == "disabled" and not explicit:
            return None
        if not self.rate_limit_per_second or not self.rate_limit_burst:
            return None
        return RateLimit(per_second=self.rate_limit_per_second, burst=self.rate_limit_burst)

    def _check_secret_settings(self) -> None:
        pairs = [("OPENAI_API_KEY", self.openai_api_key, self.openai_api_key_secret),
                 ("EMBEDDING_API_KEY", self.embedding_api_key, self.embedding_api_key_secret)]  # fmt: skip
        for name, plain, secret in pairs:
            if plain and secret:
                raise ValueError(f"set {name} or {name}_SECRET, not both")
        redis_password = bool(self.redis_url and urlsplit(self.redis_url).password)
        if redis_password and self.redis_auth_token_secret:
            raise ValueError("REDIS_URL carries a password and REDIS_AUTH_TOKEN_SECRET is set: keep only the secret")
        if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            return
        # On Lambda, environment variables are readable by anyone who may read the function's configuration.
        for name, plain, _ in pairs:
            if plain:
                raise ValueError(
                    f"{name} is refused on Lambda: store the key in Secrets Manager or SSM and set {name}_SECRET"
                )
        if redis_password:
            raise ValueError(
                "a password inside REDIS_URL is refused on Lambda: store the AUTH token in Secrets Manager or "
                "SSM and set REDIS_AUTH_TOKEN_SECRET"
            )

    @property
    def _llm_key_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_api_key_secret)

    @property
    def llm_enabled(self) -> bool:
        """OpenAI-compatible: on when a key (or its secret) is set. Azure (key checked above) and Bedrock
        (IAM): on."""
        return self.llm_provider != "openai" or self._llm_key_configured

    @property
    def background_tasks_enabled(self) -> bool:
        """Whether anything uses the task queue: extraction and summary-view runs both need an LLM and
        long-term memory."""
        return self.llm_enabled and self.long_term_memory

    @property
    def extraction_enabled(self) -> bool:
        return self.background_tasks_enabled and self.enable_discrete_memory_extraction


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
