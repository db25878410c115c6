"""template.yaml and infra/backing-services.yaml as a deployable stack: what issue 11 asks of them, checked on
the parsed templates (not only that they parse): arm64 and Python 3.12 everywhere, the queue's visibility
timeout and redrive, encryption, log retention, no wildcard action, the alarms, retained state, the gateway's
authorizer per AuthMode, the nested stack's parameters and outputs, and the tools' verdict on infra/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_memory.sam_template import function_spec, functions, load_template
from tests.contract.test_template import find_tool, run

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra" / "backing-services.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


@pytest.fixture(scope="module")
def infra() -> dict[str, Any]:
    return load_template(INFRA)


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def walk(value: Any) -> Any:
    """Every dict inside `value`, depth first (statements hide inside Fn::If branches)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- functions ---------------------------------------------------------------------------------------


def test_every_function_is_python_312_on_arm64_traced_with_powertools_settings(template: dict[str, Any]) -> None:
    defaults = template["Globals"]["Function"]
    assert (defaults["Runtime"], defaults["Architectures"], defaults["Tracing"]) == ("python3.12", ["arm64"], "Active")
    names = functions(template)
    assert {"ApiFunction", "ExtractionFunction", "ApiKeyAuthorizerFunction"} <= set(names)
    for name in names:
        properties = template["Resources"][name]["Properties"]
        for setting, value in (("Runtime", "python3.12"), ("Architectures", ["arm64"]), ("Tracing", "Active")):
            assert properties.get(setting, value) == value, (name, setting)
        spec = function_spec(template, name)
        assert spec.environment["POWERTOOLS_SERVICE_NAME"] == "agent-memory"
        assert spec.environment["POWERTOOLS_METRICS_NAMESPACE"] == "AgentMemory"
        assert spec.skipped["POWERTOOLS_LOG_LEVEL"] == "!Ref LogLevel"
    # the one layer every function loads is built for the same architecture (layers/build.sh)
    assert defaults["Layers"] == [{"Ref": "CoreLayer"}]
    layer = template["Resources"]["CoreLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"] == [layer["Metadata"]["BuildArchitecture"]]


def test_every_function_logs_to_its_own_group_with_retention(template: dict[str, Any]) -> None:
    groups = of_type(template, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    used = set()
    for name in functions(template):
        group = template["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups, name
        used.add(group)
    assert len(used) == len(functions(template))
    stage = template["Resources"]["HttpApiStage"]["Properties"]
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": "HttpApiAccessLogGroup.Arn"}


def test_the_extraction_queue_outlasts_six_consumer_timeouts_and_dead_letters_encrypted(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    queue = resources["ExtractionQueue"]["Properties"]
    timeout = function_spec(template, "ExtractionFunction").timeout_seconds
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": "ExtractionDeadLetterQueue.Arn"}
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    for name in ("ExtractionQueue", "ExtractionDeadLetterQueue"):
        assert resources[name]["Properties"]["SqsManagedSseEnabled"] is True
    assert resources["ExtractionDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
    event = resources["ExtractionFunction"]["Properties"]["Events"]["Extraction"]
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("which", ["template", "infra"])
def test_no_policy_grants_a_wildcard_action(which: str, template: dict[str, Any], infra: dict[str, Any]) -> None:
    document = template if which == "template" else infra
    actions: list[str] = []
    for node in walk(document["Resources"]):
        if "Action" in node and "Effect" in node:
            listed = node["Action"] if isinstance(node["Action"], list) else [node["Action"]]
            actions.extend(listed)
    assert actions
    assert not [a for a in actions if "*" in a], actions


def test_each_function_gets_only_what_it_uses(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    authorizer = resources["ApiKeyAuthorizerFunction"]["Properties"]["Policies"]
    assert authorizer == [{"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                                          "Resource": {"Fn::GetAtt": "ApiKeysTable.Arn"}}]}]  # fmt: skip
    assert "VpcConfig" not in resources["ApiKeyAuthorizerFunction"]["Properties"]  # DynamoDB only, no ENI
    for name in ("ApiFunction", "ExtractionFunction"):
        assert {"Ref": "StoreAccessPolicy"} in resources[name]["Properties"]["Policies"]
        vpc = resources[name]["Properties"]["VpcConfig"]["Fn::If"]
        assert vpc[0] == "CreateInfra"
        assert vpc[1]["SecurityGroupIds"] == [{"Fn::GetAtt": "Infra.Outputs.FunctionSecurityGroupId"}]
    statements = resources["StoreAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statements[0] == {"Sid": "EnqueueTasks", "Effect": "Allow",
                             "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"],
                             "Resource": {"Fn::GetAtt": "ExtractionQueue.Arn"}}  # fmt: skip
    conditional = {s["Fn::If"][0]: s["Fn::If"][1]["Sid"] for s in statements[1:]}
    assert conditional == {"UseBedrock": "BedrockEmbeddings", "UseBedrockLlm": "BedrockLlm",
                           "GrantAoss": "OpenSearchServerless", "GrantEs": "OpenSearchDomain",
                           "HasOpenAIKey": "ReadLlmKey", "HasEmbeddingKey": "ReadEmbeddingKey",
                           "CreateInfra": "ReadRedisPassword"}  # fmt: skip


# --- alarms --------------------------------------------------------------------------------------------


def alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in of_type(template, "AWS::CloudWatch::Alarm").values()]


def dimension(alarm: dict[str, Any]) -> Any:
    [only] = alarm["Dimensions"]
    return only["Value"]


@pytest.mark.parametrize("metric", ["Errors", "Throttles", "Duration"])
def test_every_function_has_error_throttle_and_near_timeout_alarms(template: dict[str, Any], metric: str) -> None:
    watched = {}
    for alarm in alarms(template):
        if alarm["Namespace"] == "AWS/Lambda" and alarm["MetricName"] == metric:
            watched[dimension(alarm)["Ref"]] = alarm
    expected = set(functions(template))
    if metric == "Throttles":
        # CleanupFunction has reserved concurrency 1: a start that overlaps a running sweep is throttled
        # by design (Lambda retries the scheduled event later), so a throttle there is not an incident.
        expected.discard("CleanupFunction")
    assert set(watched) == expected
    if metric == "Duration":
        for name, alarm in watched.items():
            timeout_ms = function_spec(template, name).timeout_seconds * 1000
            assert (alarm["Statistic"], alarm["Threshold"]) == ("Maximum", 0.9 * timeout_ms), name


def test_the_api_5xx_and_both_queues_are_watched(template: dict[str, Any]) -> None:
    seen = {(a["Namespace"], a["MetricName"], str(dimension(a))) for a in alarms(template)}
    assert ("AWS/ApiGateway", "5xx", str({"Ref": "HttpApi"})) in seen
    dlq = str({"Fn::GetAtt": "ExtractionDeadLetterQueue.QueueName"})
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq) in seen
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", dlq) in seen
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", str({"Fn::GetAtt": "ExtractionQueue.QueueName"})) in seen
    for alarm in alarms(template):
        assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}],
                                                    {"Ref": "AWS::NoValue"}]}  # fmt: skip
        assert alarm["TreatMissingData"] == "notBreaching"


def test_the_runbook_explains_every_alarm(template: dict[str, Any]) -> None:
    runbook = (REPO / "docs" / "runbook.md").read_text()
    missing = [name for name in of_type(template, "AWS::CloudWatch::Alarm") if name not in runbook]
    assert not missing, f"alarms docs/runbook.md does not explain: {missing}"


# --- state that must survive the stack -----------------------------------------------------------------

STATEFUL = {
    "AWS::DynamoDB::Table", "AWS::ElastiCache::ServerlessCache", "AWS::ElastiCache::User",
    "AWS::ElastiCache::UserGroup", "AWS::OpenSearchService::Domain", "AWS::OpenSearchServerless::Collection",
    "AWS::SecretsManager::Secret",
}  # fmt: skip


@pytest.mark.parametrize("which", ["template", "infra"])
def test_stateful_resources_are_kept_on_delete_and_on_replacement(
    which: str, template: dict[str, Any], infra: dict[str, Any]
) -> None:
    document = template if which == "template" else infra
    stateful = {n: r for n, r in document["Resources"].items() if r["Type"] in STATEFUL}
    assert stateful
    for name, resource in stateful.items():
        assert resource.get("DeletionPolicy") in ("Retain", "Snapshot"), name
        assert resource.get("UpdateReplacePolicy") in ("Retain", "Snapshot"), name


def test_the_cache_is_valkey_behind_an_rbac_user_whose_password_is_a_generated_secret(infra: dict[str, Any]) -> None:
    resources = infra["Resources"]
    cache = resources["Cache"]["Properties"]
    assert (cache["Engine"], cache["UserGroupId"]) == ("valkey", {"Ref": "CacheUserGroup"})
    assert cache["SecurityGroupIds"] == [{"Ref": "CacheSecurityGroup"}]
    users = resources["CacheUserGroup"]["Properties"]["UserIds"]
    assert users == [{"Ref": "CacheDefaultUser"}, {"Ref": "CacheAppUser"}]
    assert resources["CacheDefaultUser"]["Properties"]["AccessString"].startswith("off ")
    app = resources["CacheAppUser"]["Properties"]
    resolve = "{{resolve:secretsmanager:${CachePassword}:SecretString}}"
    assert app["AuthenticationMode"]["Passwords"] == [{"Fn::Sub": resolve}]
    assert "-@dangerous" in app["AccessString"]
    secret = resources["CachePassword"]["Properties"]["GenerateSecretString"]
    assert secret["ExcludePunctuation"] is True and 16 <= secret["PasswordLength"] <= 128
    url = infra["Outputs"]["RedisUrl"]["Value"]["Fn::Sub"]
    assert url.startswith(f"rediss://{app['UserName']}@")  # TLS, the app user, never a password


def test_opensearch_is_encrypted_https_only_and_private(infra: dict[str, Any]) -> None:
    resources = infra["Resources"]
    domain = resources["SearchDomain"]["Properties"]
    assert domain["EncryptionAtRestOptions"] == {"Enabled": True}
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert "VPCOptions" in domain
    network = resources["CollectionNetworkPolicy"]["Properties"]
    assert network["Type"] == "network" and '"AllowFromPublic":false' in network["Policy"]["Fn::Sub"]
    assert resources["CollectionEncryptionPolicy"]["Properties"]["Type"] == "encryption"
    assert resources["Collection"]["Properties"]["Type"] == "VECTORSEARCH"
    assert set(resources["Collection"]["DependsOn"]) == {"CollectionEncryptionPolicy", "CollectionNetworkPolicy"}


def test_the_vpc_has_the_endpoints_the_functions_call_and_a_nat_only_on_request(infra: dict[str, Any]) -> None:
    endpoints = {r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: r
                 for r in of_type(infra, "AWS::EC2::VPCEndpoint").values()}  # fmt: skip
    assert set(endpoints) == {"dynamodb", "secretsmanager", "sqs", "bedrock-runtime"}
    assert endpoints["dynamodb"]["Properties"]["VpcEndpointType"] == "Gateway"
    assert endpoints["bedrock-runtime"]["Condition"] == "UseBedrockEndpoint"
    subnets = of_type(infra, "AWS::EC2::Subnet")
    private = [r for r in subnets.values() if "Condition" not in r]
    azs = {str(r["Properties"]["AvailabilityZone"]) for r in private}
    assert len(private) == 2 and len(azs) == 2
    for kind in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::EIP"):
        assert [r.get("Condition") for r in of_type(infra, kind).values()] == ["UseNat"], kind


# --- gateway auth --------------------------------------------------------------------------------------


def test_the_gateway_authorizer_follows_auth_mode(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    route = resources["DefaultRoute"]["Properties"]
    assert route["RouteKey"] == "$default"
    assert route["AuthorizationType"] == {"Fn::If": ["UseJwt", "JWT", "CUSTOM"]}
    assert route["AuthorizerId"] == {"Fn::If": ["UseJwt", {"Ref": "JwtAuthorizer"}, {"Ref": "ApiKeyAuthorizer"}]}
    jwt = resources["JwtAuthorizer"]
    assert jwt["Condition"] == "UseJwt" and jwt["Properties"]["AuthorizerType"] == "JWT"
    assert jwt["Properties"]["JwtConfiguration"]["Issuer"] == {"Ref": "JwtIssuer"}
    keys = resources["ApiKeyAuthorizer"]
    assert keys["Condition"] == "UseApiKey"
    properties = keys["Properties"]
    assert (properties["AuthorizerType"], properties["AuthorizerPayloadFormatVersion"]) == ("REQUEST", "2.0")
    assert properties["EnableSimpleResponses"] is True
    assert properties["AuthorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheSeconds"}
    assert properties["IdentitySource"] == {"Fn::If": ["CacheAuthorizer", ["$request.header.Authorization"],
                                                       {"Ref": "AWS::NoValue"}]}  # fmt: skip
    assert "ApiKeyAuthorizerFunction.Arn" in properties["AuthorizerUri"]["Fn::Sub"]
    for name in ("ApiKeyAuthorizerFunction", "ApiKeyAuthorizerInvokePermission"):
        assert resources[name]["Condition"] == "UseApiKey", name
    no_cache = {"Fn::Equals": [{"Ref": "AuthorizerCacheSeconds"}, 0]}
    assert template["Conditions"]["CacheAuthorizer"] == {"Fn::Not": [no_cache]}
    assert template["Parameters"]["AuthorizerCacheSeconds"]["Default"] == 300


def test_the_routes_open_at_the_gateway_are_exactly_the_apps_open_routes(
    template: dict[str, Any], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from agent_memory.bootstrap import Container
    from agent_memory.http.app import create_app
    from tests.fixtures.app import make_settings

    routes = of_type(template, "AWS::ApiGatewayV2::Route")
    open_routes = {r["Properties"]["RouteKey"] for r in routes.values()
                   if r["Properties"]["AuthorizationType"] == "NONE"}  # fmt: skip
    assert open_routes == {"GET /", "GET /docs", "GET /openapi.json", "GET /v1/health", "GET /ui", "GET /ui/{asset}"}
    for route in routes.values():
        assert route["Properties"]["Target"] == {"Fn::Sub": "integrations/${ApiIntegration}"}
    # Each is open in the app as well (served without a credential under api_key), so a renamed or newly
    # protected route cannot leave the gateway open on nothing; a protected one answers 401 there.
    client = TestClient(create_app(Container(make_settings(tmp_path, auth_mode="api_key"))))
    for key in sorted(open_routes):
        path = key.split(" ", 1)[1].replace("{asset}", "no-such-asset.js")
        status = client.get(path).status_code
        assert status == (404 if "no-such-asset" in path else 200), (key, status)
    assert client.get("/v1/working-memory/").status_code == 401


# --- the nested stack and the outputs ------------------------------------------------------------------


def test_the_nested_infra_stack_gets_parameters_it_declares_and_gives_outputs_it_has(
    template: dict[str, Any], infra: dict[str, Any]
) -> None:
    application = template["Resources"]["Infra"]
    assert application["Condition"] == "CreateInfra"
    assert (REPO / application["Properties"]["Location"]).resolve() == INFRA
    assert set(application["Properties"]["Parameters"]) <= set(infra["Parameters"])
    referenced = {node["Fn::GetAtt"].split(".", 2)[2] for node in walk(template)
                  if isinstance(node.get("Fn::GetAtt"), str) and node["Fn::GetAtt"].startswith("Infra.Outputs.")}
    referenced |= {"CollectionName"}  # inside the data access policy's !Sub
    assert referenced <= set(infra["Outputs"]), referenced - set(infra["Outputs"])


def test_existing_infrastructure_needs_a_redis_url(template: dict[str, Any]) -> None:
    rule = template["Rules"]["ExistingInfrastructureNeedsRedis"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Infrastructure"}, "existing"]}
    assert template["Parameters"]["Infrastructure"]["AllowedValues"] == ["create", "existing"]


def test_the_outputs_name_what_operators_and_clients_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {"ApiUrl", "ApiId", "ApiFunctionName", "ExtractionFunctionName", "ExtractionQueueUrl",
            "ExtractionDeadLetterQueueUrl", "ExtractionDeadLetterQueueArn", "ApiKeysTableName", "RedisUrl",
            "OpenSearchUrl"} <= set(outputs)  # fmt: skip
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"}


def test_samconfig_has_dev_and_prod_profiles() -> None:
    import tomllib

    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    for profile in ("default", "dev", "prod"):
        assert config[profile]["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM CAPABILITY_AUTO_EXPAND"
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert config["dev"]["global"]["parameters"]["stack_name"] != config["prod"]["global"]["parameters"]["stack_name"]


# --- the tools, on the nested template --------------------------------------------------------------


def test_sam_validate_lint_infra() -> None:
    sam = find_tool("sam", "SAM_CLI")

    result = run([sam, "validate", "--lint", "--template-file", str(INFRA)])

    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_infra() -> None:
    cfn_lint = find_tool("cfn-lint", "CFN_LINT")

    result = run([cfn_lint, str(INFRA)])

    assert result.returncode == 0, result.stdout + result.stderr
