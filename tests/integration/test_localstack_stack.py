"""The stack's queue and secret part deployed to LocalStack by CloudFormation, from template.yaml's and
infra/backing-services.yaml's own resource definitions, then used through our adapters (SqsTaskQueue,
SecretReader) with the same boto3 code path as on AWS (endpoint_url, AWS_ENDPOINT_URL_SECRETS_MANAGER).

LocalStack's CloudFormation checks that the definitions deploy and that SQS honours them (visibility
timeout, the redrive to the dead-letter queue after five receives); it does not check IAM or encryption,
which tests/contract/test_template_stack.py asserts on the parsed templates.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent_memory.sam_template import load_template

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DEADLINE_SECONDS = 60.0

pytestmark = pytest.mark.usefixtures("aws_env")  # test credentials for the adapters' own clients


def _long_form(value: Any) -> Any:
    """The YAML loader keeps `!GetAtt A.B` as "A.B"; CloudFormation's JSON wants ["A", "B"]."""
    if isinstance(value, dict):
        return {k: (v.split(".", 1) if k == "Fn::GetAtt" and isinstance(v, str) else _long_form(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_long_form(v) for v in value]
    return value


def stack_body() -> str:
    """The queues exactly as template.yaml declares them, and the cache password as the Infra stack does."""
    resources = load_template(REPO / "template.yaml")["Resources"]
    infra = load_template(REPO / "infra" / "backing-services.yaml")["Resources"]
    body = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "ExtractionQueue": resources["ExtractionQueue"],
            "ExtractionDeadLetterQueue": resources["ExtractionDeadLetterQueue"],
            "CachePassword": infra["CachePassword"],
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "ExtractionQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "ExtractionDeadLetterQueue"}},
            "SecretArn": {"Value": {"Ref": "CachePassword"}},
        },
    }
    return json.dumps(_long_form(body))


def client(service: str, endpoint: str) -> Any:
    import boto3

    # Explicit test credentials: the module-scoped stack is built before a test's aws_env applies.
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint, aws_access_key_id="test",
                        aws_secret_access_key="test")


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {DEADLINE_SECONDS:.0f} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(localstack_endpoint: str) -> dict[str, str]:
    """The outputs of the deployed stack (CREATE_COMPLETE)."""
    cloudformation = client("cloudformation", localstack_endpoint)
    name = f"agent-memory-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=stack_body())

    def created() -> dict[str, Any] | None:
        [described] = cloudformation.describe_stacks(StackName=name)["Stacks"]
        status = described["StackStatus"]
        assert not status.endswith(("FAILED", "ROLLBACK_COMPLETE")), (status, described.get("StackStatusReason"))
        return described if status == "CREATE_COMPLETE" else None

    described = wait_for("stack creation", created)
    return {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def test_the_queues_deploy_as_declared_and_redrive_after_five_receives(
    stack: dict[str, str], localstack_endpoint: str
) -> None:
    sqs = client("sqs", localstack_endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=stack["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack["DeadLetterQueueUrl"],
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
    assert attributes["VisibilityTimeout"] == "720"
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}

    # Given a message that every consumer fails (it is received, never deleted)
    sqs.send_message(QueueUrl=stack["QueueUrl"], MessageBody="poison")
    for _ in range(5):
        received = wait_for("a delivery", lambda: sqs.receive_message(
            QueueUrl=stack["QueueUrl"], VisibilityTimeout=0, WaitTimeSeconds=1).get("Messages"))
        assert received[0]["Body"] == "poison"

    # Then the next receive finds it in the dead-letter queue, not in the queue
    moved = wait_for("the move to the dead-letter queue", lambda: (
        sqs.receive_message(QueueUrl=stack["QueueUrl"], WaitTimeSeconds=1).get("Messages") is None
        and sqs.receive_message(QueueUrl=stack["DeadLetterQueueUrl"], WaitTimeSeconds=1).get("Messages")))
    assert moved[0]["Body"] == "poison"


@pytest.mark.parametrize("kind", ["json", "boto3"])
def test_our_sqs_adapter_enqueues_a_task_on_the_deployed_queue(
    stack: dict[str, str], localstack_endpoint: str, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # Through both of the adapter's clients: the standard library's (credentials in the environment, as on
    # Lambda) and boto3's
    from agent_memory.adapters._aws_json import AwsJsonClient
    from agent_memory.adapters.sqs_task_queue import SqsTaskQueue
    from agent_memory.domain.tasks import SummaryViewRunTask, decode_task

    task = SummaryViewRunTask.for_view("acme", "view-1", f"task-{uuid.uuid4().hex[:8]}")
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    given = client("sqs", localstack_endpoint) if kind == "boto3" else None
    queue = SqsTaskQueue(stack["QueueUrl"], region=REGION, endpoint_url=localstack_endpoint, client=given)
    assert isinstance(queue._sqs.get(), AwsJsonClient) == (kind == "json")

    queue.enqueue(task)
    queue.ping()

    sqs = client("sqs", localstack_endpoint)
    messages = wait_for("the task", lambda: sqs.receive_message(
        QueueUrl=stack["QueueUrl"], MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages"))
    [message] = [m for m in messages if task.task_id in m["Body"]]
    assert decode_task(message["Body"]) == task
    assert message["MessageAttributes"]["type"]["StringValue"] == "summary_view_run"


def test_the_generated_password_is_read_and_rotated_through_our_secret_reader(
    stack: dict[str, str], localstack_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent_memory.adapters._aws_json import AwsJsonClient
    from agent_memory.adapters.secrets import SecretLocation, SecretReader

    # The reader builds its own client, as on Lambda (credentials in the environment: the standard library's
    # JSON client), and sends it to LocalStack by botocore's variable
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", localstack_endpoint)):  # fmt: skip
        monkeypatch.setenv(name, value)
    location = SecretLocation.parse("REDIS_AUTH_TOKEN_SECRET", stack["SecretArn"])
    reader = SecretReader(region=REGION, max_age_seconds=300, timeout_seconds=2.0)

    password = reader.read(location)
    assert isinstance(reader._clients["secretsmanager"], AwsJsonClient)

    # Then it is what GenerateSecretString was asked for: 40 characters, no punctuation (valid for ACLs)
    assert len(password) == 40 and password.isalnum()
    client("secretsmanager", localstack_endpoint).put_secret_value(SecretId=stack["SecretArn"],
                                                                   SecretString="rotated" * 4)  # fmt: skip
    assert reader.read(location) == password  # cached for max_age
    assert reader.read(location, force=True) == "rotated" * 4  # what a WRONGPASS triggers
