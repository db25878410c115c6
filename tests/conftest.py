"""Shared fixtures live in tests/fixtures/, one module per real dependency the suites start."""

pytest_plugins = [
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_cluster",
    "tests.fixtures.openai_stub",
    "tests.fixtures.converse_stub",
    "tests.fixtures.opensearch_node",
    "tests.fixtures.app",
    "tests.fixtures.moto_sqs",
    "tests.fixtures.moto_dynamodb",
    "tests.fixtures.moto_secrets",
    "tests.fixtures.localstack",
    "tests.fixtures.chromium",
]
